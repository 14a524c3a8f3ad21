//! The event model: what travels on a channel.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// A record id, normalised to its string form so that `1` and `"1"` compare equal
/// (Refine's Ably provider compares ids with `toString()`).
pub type RecordId = String;

/// One event delivered on a channel. The payload and meta stay raw JSON text: the engine only
/// reads what routing needs (`payload.ids`), and the browser shell turns the text into a JS
/// object once per event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub channel: String,
    /// Refine's `type` (Ginjou's `action`): "created", "updated", "deleted" or any string.
    pub kind: String,
    /// Per-channel sequence number given by the relay.
    pub seq: u64,
    /// Raw JSON text of the payload (an object for Refine events).
    pub payload: String,
    /// Milliseconds since the Unix epoch; NaN when the relay's was not a time JS can represent
    /// (the shell puts the receipt time instead).
    pub date: f64,
    /// Raw JSON text of `meta`, when present (always an object: any other meta is dropped).
    pub meta: Option<String>,
    /// `payload.ids` as strings; `None` when the payload carries no ids.
    pub ids: Option<Vec<RecordId>>,
}

/// Why `payload.ids` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdsError(pub String);

impl fmt::Display for IdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload.ids {}", self.0)
    }
}

impl std::error::Error for IdsError {}

/// Reads `payload.ids` from a raw JSON payload without building the rest of it.
///
/// A payload that is not an object, or an object without `ids` (or with `ids: null`), has no ids.
/// `ids` must otherwise be an array of strings and numbers.
pub fn payload_ids(payload: &RawValue) -> Result<Option<Vec<RecordId>>, IdsError> {
    if !payload.get().trim_start().starts_with('{') {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(payload.get());
    de::Deserializer::deserialize_map(&mut de, IdsOfPayload).map_err(|e| IdsError(e.to_string()))
}

struct IdsOfPayload;

impl<'de> Visitor<'de> for IdsOfPayload {
    type Value = Option<Vec<RecordId>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "ids" {
                ids = map.next_value::<Option<IdList>>()?.map(|l| l.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(ids)
    }
}

/// A list of record ids as found in JSON: strings and numbers, normalised to strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdList(pub Vec<RecordId>);

impl<'de> de::Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = IdList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings or numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(64));
                while let Some(id) = seq.next_element::<OneId>()? {
                    out.push(id.0);
                }
                Ok(IdList(out))
            }
        }
        d.deserialize_seq(ListVisitor)
    }
}

struct OneId(RecordId);

impl<'de> de::Deserialize<'de> for OneId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = OneId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneId, E> {
                Ok(OneId(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneId, E> {
                Ok(OneId(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneId, E> {
                Ok(OneId(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneId, E> {
                Ok(OneId(number_to_id(v)))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// Formats a JSON number the way JavaScript's `String(n)` does for the ids people use:
/// integral values without a fractional part.
pub fn number_to_id(v: f64) -> RecordId {
    if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        (v as i64).to_string()
    } else {
        // serde_json's shortest round-trip formatting (as JavaScript prints 2.5 or 0.1), which the
        // crate carries anyway; `f64`'s own `Display` would add 14 KB of wasm.
        serde_json::Number::from_f64(v).map_or_else(|| "NaN".to_owned(), |n| n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(json: &str) -> Result<Option<Vec<RecordId>>, IdsError> {
        let raw: Box<RawValue> = serde_json::from_str(json).expect("test payload is JSON");
        payload_ids(&raw)
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
