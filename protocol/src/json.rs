//! A small JSON reader and writer for the client's side of the wire protocol, in place of
//! serde/serde_json (which cost the wasm build more than the frames need).
//!
//! [`Reader`] is a pull scanner over borrowed text: strings come back borrowed unless they hold
//! escapes, and any value can be skipped or captured as the `&str` slice of its (validated) text,
//! which is how payloads and `meta` stay raw JSON. It accepts exactly what serde_json accepts
//! (RFC 8259; values skipped at any depth, without recursion; lone surrogates refused in strings
//! that are decoded and let through in values that are only skipped, as serde_json does). The writer escapes strings the way
//! serde_json does, so both sides of the protocol produce the same text.
//!
//! No `core::fmt` here: error reasons are static strings, integers are written digit by digit.

use crate::prelude::*;
use alloc::borrow::Cow;

/// Why some text is not the JSON expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error(pub &'static str);

/// The kind of the next value, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// A pull scanner over one JSON text.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes().get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                return Some(b);
            }
        }
        None
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), Error> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Error(reason))
        }
    }

    /// The kind of the next value; an error at the end of the text or before a character no value
    /// starts with.
    pub fn kind(&mut self) -> Result<Kind, Error> {
        match self.peek() {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b't' | b'f') => Ok(Kind::Bool),
            Some(b'n') => Ok(Kind::Null),
            Some(_) => Err(Error("expected a value")),
            None => Err(Error("unexpected end of the text")),
        }
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Result<(), Error> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Error("trailing characters after the value")),
        }
    }

    /// Reads an object, calling `member` with each key; it must read (or [`skip`](Self::skip))
    /// the value.
    pub fn object<E: From<Error>>(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.expect(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(Error("expected a key").into());
                }
                let key = self.string()?;
                self.expect(b':', "expected `:` after a key")?;
                member(self, key)?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Error("expected `,` or `}` after an object member").into()),
                }
            }
        }
        Ok(())
    }

    /// Reads an array, calling `element` for each element; it must read (or skip) it.
    pub fn array<E: From<Error>>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.expect(b'[', "expected an array")?;
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                element(self)?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Error("expected `,` or `]` after an array element").into()),
                }
            }
        }
        Ok(())
    }

    /// `null` is consumed and gives `None`; anything else is read by `read`.
    pub fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            Ok(None)
        } else {
            read(self).map(Some)
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), Error> {
        if at(self.text, self.pos, self.text.len()).starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Error("expected a value"))
        }
    }

    /// A string, borrowed from the text when it holds no escape.
    pub fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        if self.peek() != Some(b'"') {
            return Err(Error("expected a string"));
        }
        let (start, escaped) = self.scan_string()?;
        let inner = at(self.text, start + 1, self.pos - 1);
        if escaped {
            unescape(inner).map(Cow::Owned)
        } else {
            Ok(Cow::Borrowed(inner))
        }
    }

    /// Moves past a string (at its opening quote), checking its characters and escapes (not the
    /// surrogates of `\u` escapes). Returns where it started and whether it holds an escape.
    fn scan_string(&mut self) -> Result<(usize, bool), Error> {
        let start = self.pos;
        let bytes = self.bytes();
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            match bytes.get(i) {
                None => return Err(Error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            hex4(bytes, i + 2)?;
                            i += 6;
                        }
                        _ => return Err(Error("invalid escape in a string")),
                    }
                }
                Some(&b) if b < 0x20 => return Err(Error("control character in a string")),
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok((start, escaped))
    }

    /// The text of a number, checked against JSON's grammar.
    pub fn number(&mut self) -> Result<&'a str, Error> {
        self.peek();
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return Err(Error("expected a number")),
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return Err(Error("expected a digit after the decimal point"));
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return Err(Error("expected a digit in the exponent"));
            }
        }
        self.pos = i;
        Ok(at(self.text, start, i))
    }

    /// A whole number from 0 to `u64::MAX`.
    pub fn u64(&mut self) -> Result<u64, Error> {
        if self.peek() != Some(b'-') && self.kind() == Ok(Kind::Number) {
            let text = self.number()?;
            if text.bytes().all(|b| b.is_ascii_digit()) {
                return text
                    .bytes()
                    .try_fold(0u64, |n, d| {
                        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                    })
                    .ok_or(Error("number too large"));
            }
        }
        Err(Error("expected a whole number from 0"))
    }

    /// A number, as the nearest `f64`; an error when it is beyond `f64`'s range.
    pub fn f64(&mut self) -> Result<f64, Error> {
        let n = parse_f64(self.number()?);
        if n.is_finite() {
            Ok(n)
        } else {
            Err(Error("number out of range"))
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(Error("expected a boolean")),
        }
    }

    /// Moves past the next value, checking it. Without recursion, so at any depth (serde_json
    /// skips values the same way).
    pub fn skip(&mut self) -> Result<(), Error> {
        // The closing bracket of each container being skipped.
        let mut open: Vec<u8> = Vec::new();
        loop {
            match self.kind()? {
                Kind::Object => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open.push(b'}');
                        self.skip_key()?;
                        continue;
                    }
                }
                Kind::Array => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                Kind::String => {
                    self.scan_string()?;
                }
                Kind::Number => {
                    self.number()?;
                }
                Kind::Bool => {
                    self.bool()?;
                }
                Kind::Null => self.literal("null")?,
            }
            // A value ended: close what it ends, up to the next `,`.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if close == b'}' {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ if close == b'}' => {
                        return Err(Error("expected `,` or `}` after an object member"))
                    }
                    _ => return Err(Error("expected `,` or `]` after an array element")),
                }
            }
        }
    }

    fn skip_key(&mut self) -> Result<(), Error> {
        if self.peek() != Some(b'"') {
            return Err(Error("expected a key"));
        }
        self.scan_string()?;
        self.expect(b':', "expected `:` after a key")
    }

    /// The text of the next value (checked), without the whitespace around it.
    pub fn raw(&mut self) -> Result<&'a str, Error> {
        self.peek();
        let start = self.pos;
        self.skip()?;
        Ok(at(self.text, start, self.pos))
    }
}

/// The value `text` holds, without the whitespace around it, when it is one JSON value.
pub fn validate(text: &str) -> Result<&str, Error> {
    let mut r = Reader::new(text);
    let value = r.raw()?;
    r.end()?;
    Ok(value)
}

/// The `f64` nearest to `text`, a number JSON's grammar accepts (infinite beyond `f64`'s range).
///
/// Not `str::parse`: core's exact parser carries a 21 KB table. Exact for what the relay sends
/// (integers, and decimals of up to 15 digits: one correctly rounded operation); otherwise the
/// decimal (its first 37 digits) is scaled in 128-bit precision and rounded once, which gives the
/// nearest `f64` but for values within about 2^-120 of a halfway point between two (the tests
/// compare it with `str::parse` on 20,000 numbers of every shape).
pub fn parse_f64(text: &str) -> f64 {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let bytes = text.as_bytes();
    let negative = bytes.first() == Some(&b'-');
    // The value is `mantissa * 10^exp10`, plus something below the last digit kept when `dropped`.
    let (mut mantissa, mut exp10, mut dropped, mut fraction) = (0u128, 0i64, false, false);
    let mut i = usize::from(negative);
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            // 37 digits and more: what is dropped is below 2^-120 of the value.
            b'0'..=b'9' if mantissa < 10u128.pow(36) => {
                mantissa = mantissa * 10 + u128::from(b - b'0');
                exp10 -= i64::from(fraction);
            }
            b'0'..=b'9' => {
                exp10 += i64::from(!fraction);
                dropped |= b != b'0';
            }
            b'.' => fraction = true,
            _ => {
                // The exponent (the grammar was checked); huge ones saturate.
                let (sign, digits) = match bytes.get(i) {
                    Some(b'-') => (-1, &bytes[i + 1..]),
                    Some(b'+') => (1, &bytes[i + 1..]),
                    _ => (1, &bytes[i..]),
                };
                let e = digits
                    .iter()
                    .fold(0i64, |e, d| (e * 10 + i64::from(d - b'0')).min(100_000));
                exp10 += sign * e;
                break;
            }
        }
    }
    let sign = if negative { -1.0 } else { 1.0 };
    if mantissa == 0 {
        return sign * 0.0;
    }
    if mantissa < 1 << 53 && !dropped && exp10.abs() <= 22 {
        let m = mantissa as f64;
        let p = POW10[exp10.unsigned_abs() as usize];
        return sign * if exp10 < 0 { m / p } else { m * p };
    }
    if exp10 > 310 {
        return sign * f64::INFINITY;
    }
    if exp10 < -345 {
        return sign * 0.0;
    }
    // `w * 2^(e2 - 128)`, `w` normalised (top bit set), its lowest bit sticky for anything dropped.
    let mut w = mantissa | u128::from(dropped);
    let mut e2 = 128 - i64::from(w.leading_zeros());
    w <<= w.leading_zeros();
    while exp10 > 0 {
        w = ((w >> 4) * 10) | u128::from(w & 15 != 0);
        e2 += 4;
        exp10 -= 1;
        let z = w.leading_zeros();
        w <<= z;
        e2 -= i64::from(z);
    }
    while exp10 < 0 {
        let rest = w % 10 != 0;
        w = (w / 10) | u128::from(rest);
        exp10 += 1;
        let z = w.leading_zeros();
        w <<= z;
        e2 -= i64::from(z);
    }
    // The value is in [2^(e2-1), 2^e2): keep 53 bits (fewer below the normal range), round half to
    // even on the rest.
    let exponent = e2 - 1;
    let shift = 75 + (-1022 - exponent).max(0);
    let (mut m, rest, half) = match shift {
        0..=127 => (
            (w >> shift) as u64,
            w & ((1u128 << shift) - 1),
            1u128 << (shift - 1),
        ),
        // Below half the smallest subnormal at most.
        128 => (0, w, 1 << 127),
        _ => return sign * 0.0,
    };
    if rest > half || (rest == half && m & 1 == 1) {
        m += 1;
    }
    let bits = if exponent < -1022 {
        // Subnormal (a carry into bit 52 makes it the smallest normal, as the encoding wants).
        m
    } else {
        let (m, exponent) = if m == 1 << 53 {
            (m >> 1, exponent + 1)
        } else {
            (m, exponent)
        };
        if exponent > 1023 {
            return sign * f64::INFINITY;
        }
        ((exponent + 1023) as u64) << 52 | (m & ((1 << 52) - 1))
    };
    sign * f64::from_bits(bits)
}

fn hex4(bytes: &[u8], at: usize) -> Result<u16, Error> {
    let mut n = 0u16;
    for i in at..at + 4 {
        let d = match bytes.get(i) {
            Some(&b @ b'0'..=b'9') => b - b'0',
            Some(&b @ b'a'..=b'f') => b - b'a' + 10,
            Some(&b @ b'A'..=b'F') => b - b'A' + 10,
            _ => return Err(Error("invalid `\\u` escape in a string")),
        };
        n = n * 16 + u16::from(d);
    }
    Ok(n)
}

/// The inside of a string whose escapes [`Reader::scan_string`] checked, decoded.
fn unescape(inner: &str) -> Result<String, Error> {
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(at(inner, from, i));
        let c = match bytes[i + 1] {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex4(bytes, i + 2)?;
                i += 4;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if bytes.get(i + 2) != Some(&b'\\') || bytes.get(i + 3) != Some(&b'u') {
                            return Err(Error("lone leading surrogate in a `\\u` escape"));
                        }
                        let low = hex4(bytes, i + 4)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Error("lone leading surrogate in a `\\u` escape"));
                        }
                        i += 6;
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(Error("lone trailing surrogate in a `\\u` escape"))
                    }
                    _ => u32::from(unit),
                };
                char::from_u32(code).ok_or(Error("invalid `\\u` escape in a string"))?
            }
            // `"`, `\` and `/` stand for themselves.
            other => char::from(other),
        };
        out.push(c);
        i += 2;
        from = i;
    }
    out.push_str(at(inner, from, inner.len()));
    Ok(out)
}

/// Appends `s` as a JSON string: quoted, with `"`, `\` and control characters escaped as
/// serde_json escapes them.
pub fn push_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(at(s, from, i));
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        from = i + 1;
    }
    out.push_str(at(s, from, s.len()));
    out.push('"');
}

/// Appends the decimal digits of `n` (the writer's name for [`crate::text::push_decimal`]).
pub use crate::text::push_decimal as push_u64;

/// `text[from..to]`, for positions the reader found on character boundaries: `get`, not indexing,
/// so that no panic path (and the formatting it links) is compiled in; `""` if one ever was not.
fn at(text: &str, from: usize, to: usize) -> &str {
    text.get(from..to).unwrap_or_default()
}

/// Whether `n` is a whole number a JS number holds exactly (below 2^53 in magnitude). Not
/// `f64::fract`, which needs std.
pub fn is_whole(n: f64) -> bool {
    n.abs() < 9_007_199_254_740_992.0 && n == (n as i64) as f64
}

/// Appends `n` as a JSON number: whole numbers a JS number holds exactly as integers, others in
/// their shortest round-trip form; `null` for NaN and infinities (as serde_json writes them).
pub fn push_f64(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if is_whole(n) {
        if n.is_sign_negative() && n != 0.0 {
            out.push('-');
        }
        push_u64(out, n.abs() as u64);
    } else {
        out.push_str(ryu::Buffer::new().format_finite(n));
    }
}

/// Appends `"key":` (after a `,` unless `out` ends with `{`).
pub fn push_key(out: &mut String, key: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    push_str(out, key);
    out.push(':');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_those_a_js_number_holds_exactly() {
        for n in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            9_007_199_254_740_991.0,
            -9_007_199_254_740_991.0,
        ] {
            assert!(is_whole(n), "{n}");
        }
        for n in [
            2.5,
            -0.1,
            9_007_199_254_740_992.0,
            1e300,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert!(!is_whole(n), "{n}");
        }
    }

    #[test]
    fn at_is_a_slice_or_empty_never_a_panic() {
        assert_eq!(at("héllo", 0, 1), "h");
        assert_eq!(at("héllo", 1, 3), "é");
        assert_eq!(at("héllo", 1, 2), "", "inside a character");
        assert_eq!(at("héllo", 4, 99), "", "past the end");
    }
    use serde_json::value::RawValue;

    /// Texts serde_json and this reader must agree on (valid or not).
    const SAMPLES: &[&str] = &[
        "{}",
        "[]",
        " {\"a\" : [1, -2.5e+3, true, false, null, \"x\"]} ",
        "\"\\u00e9\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "\"\\ud800\"",
        "\"\\udc00x\"",
        "\"\\ud800\\u0041\"",
        "\"tab\there\"",
        "\"é 😀\"",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1E-7",
        "-0",
        "0.0e0",
        "1e400",
        "18446744073709551616",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "[1 2]",
        "tru",
        "nul",
        "true false",
        "\"\\x\"",
        "\"\\u12g4\"",
        "\"unterminated",
        "",
        "   ",
        "{\"a\":{\"b\":[{}]}}",
        "NaN",
        "Infinity",
        "+1",
        "[\"\u{7f}\u{80}\"]",
    ];

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in SAMPLES {
            let ours = validate(text).is_ok();
            let theirs = serde_json::from_str::<&RawValue>(text).is_ok();
            // serde_json's RawValue lets `1e400` through (it is only skipped); so does `validate`.
            assert_eq!(ours, theirs, "{text:?}: {:?}", validate(text));
        }
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        for n in [127, 128, 129, 100_000] {
            let text = deep(n);
            assert_eq!(
                validate(&text).is_ok(),
                serde_json::from_str::<&RawValue>(&text).is_ok(),
                "{n} deep"
            );
        }
    }

    #[test]
    fn strings_decode_as_serde_json_decodes_them() {
        for text in SAMPLES
            .iter()
            .copied()
            .filter(|t| t.trim_start().starts_with('"'))
        {
            let ours = Reader::new(text).string().map(Cow::into_owned).ok();
            let theirs = serde_json::from_str::<String>(text).ok();
            assert_eq!(ours, theirs, "{text:?}");
        }
        assert!(matches!(
            Reader::new("\"plain\"").string(),
            Ok(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn strings_encode_as_serde_json_encodes_them() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in ["", "plain", "é 😀 \u{2028}", "\"\\/", &all, "\u{7f}\u{1f}"] {
            let mut ours = String::new();
            push_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).expect("a string"), "{s:?}");
            assert_eq!(Reader::new(&ours).string().as_deref(), Ok(s));
        }
    }

    #[test]
    fn numbers() {
        for n in [0, 1, 9, 10, 12_345, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
            assert_eq!(Reader::new(&out).u64(), Ok(n));
        }
        for bad in ["-1", "1.0", "1e3", "18446744073709551616", "\"1\"", "null"] {
            assert!(Reader::new(bad).u64().is_err(), "{bad}");
        }
        for n in [
            0.0, -0.0, 2.5, -1.0, 0.1, 1.7e12, 1e300, -8.64e15, 9.1e15, 5e-324,
        ] {
            let mut out = String::new();
            push_f64(&mut out, n);
            let back: f64 = serde_json::from_str(&out).expect("a number");
            assert_eq!(back, n, "{out}");
            assert_eq!(Reader::new(&out).f64(), Ok(n), "{out}");
        }
        // The parser against core's exact one, on decimals of every shape and size.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "1",
            "0.1",
            "0.3",
            "2.5",
            "1e22",
            "1e23",
            "9007199254740993",
            "1763800000000520000000053471401400000000000053414410",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.8e308",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "4.9406564584124654e-324",
            "2.4703282292062328e-324",
            "2.4703282292062327e-324",
            "1e-400",
            "123456789012345678901234567890e-50",
            "0.000000000000000000000000000001",
            "1e400",
            "-1e400",
        ]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
        for _ in 0..20_000 {
            let r = next();
            let text = match r % 4 {
                // Round-trip forms of random doubles.
                0 => format!("{:e}", f64::from_bits(next() >> 1)),
                1 => format!("{}", f64::from_bits(next() >> 2)),
                // Random digits with a random exponent.
                2 => format!(
                    "{}e{}",
                    next() % 10_000_000_000_000_000,
                    (next() % 700) as i64 - 350
                ),
                _ => format!(
                    "{}.{:017}",
                    next() % 100_000,
                    next() % 100_000_000_000_000_000
                ),
            };
            if !text.contains("inf") && !text.contains("NaN") {
                texts.push(text);
            }
        }
        for text in &texts {
            let ours = Reader::new(text).number().map(parse_f64);
            let theirs: f64 = text.parse().expect("a number");
            assert_eq!(ours.map(f64::to_bits), Ok(theirs.to_bits()), "{text}");
        }
        let mut out = String::new();
        push_f64(&mut out, f64::NAN);
        assert_eq!(out, "null");
        assert!(Reader::new("1e400").f64().is_err());
    }

    #[test]
    fn raw_values_are_exact_slices() {
        let text = r#"{"a": {"b" : [1, "x"]} , "c":null}"#;
        let mut seen = Vec::new();
        Reader::new(text)
            .object(|r, key| {
                seen.push((key.into_owned(), r.raw()?));
                Ok::<_, Error>(())
            })
            .expect("an object");
        assert_eq!(
            seen,
            [
                ("a".to_owned(), r#"{"b" : [1, "x"]}"#),
                ("c".to_owned(), "null")
            ]
        );
    }
}
