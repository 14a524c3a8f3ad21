//! Record ids as the protocol carries them: `payload.ids`, read from an event's payload and
//! normalised to strings.

use crate::json::{self, Kind, Reader};
use crate::prelude::*;
use core::fmt;

/// A record id, normalised to its string form so that `1` and `"1"` compare equal
/// (Refine's Ably provider compares ids with `toString()`).
pub type RecordId = String;

/// Why `payload.ids` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdsError(pub String);

impl fmt::Display for IdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload.ids {}", self.0)
    }
}

impl core::error::Error for IdsError {}

/// Reads `payload.ids` from a raw JSON payload (checked JSON text) without building the rest of
/// it.
///
/// A payload that is not an object, or an object without `ids` (or with `ids: null`), has no ids.
/// `ids` must otherwise be an array of strings and numbers.
pub fn payload_ids(payload: &str) -> Result<Option<Vec<RecordId>>, IdsError> {
    let mut r = Reader::new(payload);
    if r.kind() != Ok(Kind::Object) {
        return Ok(None);
    }
    let mut ids = None;
    r.object(|r, key| {
        if key == "ids" {
            ids = r.nullable(id_list)?;
            Ok(())
        } else {
            r.skip()
        }
    })
    .map_err(|e| IdsError(e.0.to_owned()))?;
    Ok(ids)
}

/// A list of record ids as found in JSON: strings and numbers, normalised to strings.
fn id_list(r: &mut Reader<'_>) -> Result<Vec<RecordId>, json::Error> {
    if r.kind() != Ok(Kind::Array) {
        return Err(json::Error(
            "invalid type: expected an array of strings or numbers",
        ));
    }
    let mut out = Vec::new();
    r.array(|r| {
        let id = match r.kind()? {
            Kind::String => r.string()?.into_owned(),
            Kind::Number => number_id(r.number()?)?,
            _ => return Err(json::Error("invalid type: expected a string or a number")),
        };
        out.push(id);
        Ok(())
    })?;
    Ok(out)
}

/// A JSON number as an id: integers as written (within `u64` or `i64`), others through `f64`.
fn number_id(text: &str) -> Result<RecordId, json::Error> {
    let integral = text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    let fits = || {
        let digits = text.trim_start_matches('-');
        // Leading zeros are not JSON, so the length tells whether it fits a u64 or an i64.
        match (text.starts_with('-'), digits.len()) {
            (false, 0..=19) | (true, 0..=18) => true,
            (false, 20) => digits <= "18446744073709551615",
            (true, 19) => digits <= "9223372036854775808",
            _ => false,
        }
    };
    if integral && fits() {
        // `-0` is the number 0.
        return Ok(if text == "-0" {
            "0".into()
        } else {
            text.into()
        });
    }
    match json::parse_f64(text) {
        v if v.is_finite() => Ok(number_to_id(v)),
        _ => Err(json::Error("number out of range")),
    }
}

/// Formats a JSON number the way JavaScript's `String(n)` does for the ids people use:
/// integral values without a fractional part.
pub fn number_to_id(v: f64) -> RecordId {
    if crate::json::is_whole(v) {
        crate::cat!(v as i64)
    } else {
        // The shortest round-trip formatting (as JavaScript prints 2.5 or 0.1); `f64`'s own
        // `Display` would add 14 KB of wasm.
        if v.is_finite() {
            ryu::Buffer::new().format_finite(v).to_owned()
        } else {
            "NaN".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(json: &str) -> Result<Option<Vec<RecordId>>, IdsError> {
        json::validate(json).expect("test payload is JSON");
        payload_ids(json)
    }

    #[test]
    fn numbers_and_strings_normalise_to_strings() {
        assert_eq!(
            ids(r#"{"ids":[1,"2",3.0,-4,2.5]}"#),
            Ok(Some(vec![
                "1".into(),
                "2".into(),
                "3".into(),
                "-4".into(),
                "2.5".into()
            ]))
        );
    }

    #[test]
    fn missing_or_null_ids_are_none() {
        assert_eq!(ids(r#"{"title":"x","nested":{"ids":[1]}}"#), Ok(None));
        assert_eq!(ids(r#"{"ids":null}"#), Ok(None));
        assert_eq!(ids(r#"[1,2]"#), Ok(None));
        assert_eq!(ids(r#""text""#), Ok(None));
    }

    #[test]
    fn malformed_ids_are_an_error_naming_the_field() {
        let err = ids(r#"{"ids":"1"}"#).unwrap_err();
        assert!(err.to_string().starts_with("payload.ids"), "{err}");
        assert!(ids(r#"{"ids":[{"a":1}]}"#).is_err());
        assert!(ids(r#"{"ids":[true]}"#).is_err());
    }
}
