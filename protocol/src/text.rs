//! Messages without `core::fmt`.
//!
//! `format!` pulls the formatting machinery into the wasm (and `{}` of an `f64` alone costs 14 KB),
//! so the client builds its messages by appending pieces: `cat!("waited ", ms, " ms for `", channel,
//! "`")`. A piece is text or an integer; floats are not pieces (say what they mean as whole numbers).

use crate::prelude::*;
use alloc::borrow::Cow;

/// One piece of a message: text or a number.
#[derive(Clone, Copy)]
pub enum Part<'a> {
    Text(&'a str),
    Char(char),
    Unsigned(u64),
    Signed(i64),
}

/// Something [`cat!`](crate::cat) can append to a message. Each call site only builds a small
/// array of [`Part`]s; the appending is one function ([`join`]), so messages cost little code.
pub trait AsPart {
    fn part(&self) -> Part<'_>;
}

impl AsPart for str {
    fn part(&self) -> Part<'_> {
        Part::Text(self)
    }
}

impl AsPart for String {
    fn part(&self) -> Part<'_> {
        Part::Text(self)
    }
}

impl AsPart for Cow<'_, str> {
    fn part(&self) -> Part<'_> {
        Part::Text(self)
    }
}

impl AsPart for char {
    fn part(&self) -> Part<'_> {
        Part::Char(*self)
    }
}

impl<T: AsPart + ?Sized> AsPart for &T {
    fn part(&self) -> Part<'_> {
        (**self).part()
    }
}

macro_rules! unsigned_part {
    ($($t:ty),*) => {$(
        impl AsPart for $t {
            fn part(&self) -> Part<'_> {
                Part::Unsigned(*self as u64)
            }
        }
    )*};
}
unsigned_part!(u8, u16, u32, u64, usize);

impl AsPart for i64 {
    fn part(&self) -> Part<'_> {
        Part::Signed(*self)
    }
}

/// Joins the parts into one `String`.
pub fn join(parts: &[Part<'_>]) -> String {
    let mut out = String::new();
    for part in parts {
        match *part {
            Part::Text(t) => out.push_str(t),
            Part::Char(c) => out.push(c),
            Part::Unsigned(n) => push_decimal(&mut out, n),
            Part::Signed(n) => {
                if n < 0 {
                    out.push('-');
                }
                push_decimal(&mut out, n.unsigned_abs());
            }
        }
    }
    out
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// `n` in decimal.
pub fn decimal(n: u64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, n);
    out
}

/// Appends `n` as exactly `width` lowercase hex digits (the low ones).
pub fn push_hex(out: &mut String, n: u64, width: u32) {
    for i in (0..width).rev() {
        let nibble = (n >> (i * 4)) & 0xf;
        out.push(char::from(b"0123456789abcdef"[nibble as usize]));
    }
}

/// Joins pieces (text and integers) into a `String` without `core::fmt`.
#[macro_export]
macro_rules! cat {
    ($($piece:expr),* $(,)?) => {
        $crate::text::join(&[$( $crate::text::AsPart::part(&$piece) ),*])
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_display() {
        for n in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(decimal(n), n.to_string());
        }
        assert_eq!(cat!(-42i64, " ", i64::MIN), format!("-42 {}", i64::MIN));
    }

    #[test]
    fn pieces_join_in_order() {
        let name = String::from("posts");
        let cow: Cow<str> = Cow::Borrowed("x");
        assert_eq!(
            cat!("a `", name, "` ", 3u16, ' ', 7usize, cow),
            "a `posts` 3 7x"
        );
    }

    #[test]
    fn hex_is_zero_padded() {
        let mut out = String::new();
        push_hex(&mut out, 0xab, 4);
        push_hex(&mut out, u64::MAX, 16);
        assert_eq!(out, format!("{:04x}{:016x}", 0xab, u64::MAX));
    }
}
