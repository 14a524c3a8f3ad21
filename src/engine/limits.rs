//! Limits and defaults the JS entry (`pkg-template/`) shares with the wasm, in one place on each
//! side: `helpers.js` exports the same constants, and this module's test reads them there (and the
//! numbers `index.js`'s messages spell) and fails when the two sides differ.

pub use super::time::MAX_TIMER_MS;

/// `maxFrameBytes`'s default: a frame from the relay over 1 MiB of UTF-8 is dropped before it
/// enters wasm (and a `publish` over it throws).
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 1 << 20;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::path::Path;

    fn template(file: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("pkg-template")
            .join(file);
        std::fs::read_to_string(&path).expect("a file of pkg-template/")
    }

    /// The value of `export const NAME = <integer>;` in `text`.
    fn exported(text: &str, name: &str) -> u64 {
        let start = format!("export const {name} = ");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(start.as_str()))
            .unwrap_or_else(|| panic!("helpers.js exports no {name}"));
        let digits = line.strip_suffix(';').expect("one constant per line");
        digits.parse().expect("an integer")
    }

    #[test]
    fn the_js_entry_and_the_wasm_share_their_limits() {
        let helpers = template("helpers.js");
        assert_eq!(exported(&helpers, "MAX_TIMER_MS"), MAX_TIMER_MS);
        assert_eq!(
            exported(&helpers, "DEFAULT_MAX_FRAME_BYTES"),
            u64::from(DEFAULT_MAX_FRAME_BYTES)
        );
        // `index.js` compares with the constants; its messages spell the largest value (so that the
        // minified entry stays as small): each says the same number.
        let index = template("index.js");
        let spelled: Vec<&str> = index
            .match_indices("at most ")
            .map(|(at, m)| {
                let rest = &index[at + m.len()..];
                &rest[..rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len())]
            })
            .filter(|digits| !digits.is_empty() && *digits != "1")
            .collect();
        assert!(spelled.len() >= 3, "{spelled:?}");
        for digits in spelled {
            assert_eq!(digits, MAX_TIMER_MS.to_string(), "a message of index.js");
        }
        assert!(
            !index.contains("1048576"),
            "maxFrameBytes's default is helpers.js's"
        );
        assert!(index.contains("?? DEFAULT_MAX_FRAME_BYTES"));
    }
}
