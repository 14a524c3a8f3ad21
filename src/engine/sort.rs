//! One small in-place sort for the engine's few sorts (routing results, id lists, channel names):
//! a heapsort, O(n log n) at any size with no allocation, in a few hundred bytes of wasm per type
//! where the standard library's pattern-defeating quicksort costs 2–3.5 KB per type.

use crate::prelude::*;
/// Sorts `v` ascending (not stable: equal elements are interchangeable everywhere it is used).
pub fn sort<T: Ord>(v: &mut [T]) {
    let n = v.len();
    for start in (0..n / 2).rev() {
        sift_down(v, start, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

/// Moves `v[root]` down the max-heap `v[..end]` to where it belongs.
fn sift_down<T: Ord>(v: &mut [T], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && v[child] < v[child + 1] {
            child += 1;
        }
        if v[root] >= v[child] {
            return;
        }
        v.swap(root, child);
        root = child;
    }
}

/// Sorts `v` and removes repeated elements.
pub fn sort_dedup<T: Ord>(v: &mut Vec<T>) {
    sort(v);
    v.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::backoff::XorShift;

    #[test]
    fn sorts_like_the_standard_library_at_every_length() {
        let mut rng = XorShift::new(3);
        for len in (0..70).chain([1_000, 10_001]) {
            let v: Vec<u64> = (0..len).map(|_| rng.next_u64() % 50).collect();
            let (mut ours, mut std) = (v.clone(), v);
            sort(&mut ours);
            std.sort();
            assert_eq!(ours, std, "length {len}");
        }
        let mut names = vec!["b", "a", "c", "a"];
        sort_dedup(&mut names);
        assert_eq!(names, ["a", "b", "c"]);
    }
}
