//! Reading the query strings of `GET /ws` and `GET /sse`: lists are comma-joined and each item is
//! URL-encoded on its own (a `,` inside an item is `%2C`), so a value is split on its raw commas
//! before it is decoded.

use crate::broker::Scopes;
use crate::publish::check_scopes;
use live_protocol::frame::{excerpt, ErrorCode, FrameError};

/// The parameters of a query string, their names decoded and their values raw.
#[derive(Debug, Default)]
pub struct Params<'q> {
    pairs: Vec<(String, &'q str)>,
}

impl<'q> Params<'q> {
    /// Splits a raw query string (without the `?`) into its parameters. A name that cannot be
    /// decoded is kept as it is (it matches none of the relay's parameters).
    pub fn parse(query: Option<&'q str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(name).unwrap_or_else(|_| name.to_owned()), value)
            })
            .collect();
        Params { pairs }
    }

    /// The raw value of a parameter; a parameter given twice is an error.
    pub fn get(&self, name: &str) -> Result<Option<&'q str>, FrameError> {
        let mut found = self
            .pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v);
        let first = found.next();
        if found.next().is_some() {
            return Err(bad_query(format!("`{name}` is given more than once")));
        }
        Ok(first)
    }

    /// A comma-joined list parameter, each item decoded; `None` when absent, an empty list when
    /// given empty.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, FrameError> {
        let Some(raw) = self.get(name)? else {
            return Ok(None);
        };
        if raw.is_empty() {
            return Ok(Some(Vec::new()));
        }
        raw.split(',')
            .enumerate()
            .map(|(i, item)| decode(item).map_err(|e| bad_query(format!("`{name}`: item {i} {e}"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A parameter's decoded value.
    pub fn text(&self, name: &str) -> Result<Option<String>, FrameError> {
        self.get(name)?
            .map(|raw| decode(raw).map_err(|e| bad_query(format!("`{name}` {e}"))))
            .transpose()
    }

    /// The connection's scopes: the `scopes` parameter (none when absent or empty).
    pub fn scopes(&self) -> Result<Scopes, FrameError> {
        let scopes = self.list("scopes")?.unwrap_or_default();
        check_scopes(&scopes).map_err(|e| bad_query(format!("`scopes`: {e}")))?;
        Ok(crate::broker::scopes(scopes))
    }
}

/// A malformed query parameter (`bad_frame`: the request itself is malformed).
pub fn bad_query(message: impl Into<String>) -> FrameError {
    FrameError::new(ErrorCode::BadFrame, message)
}

/// Percent-decodes a query item (`+` is a space, as in forms); the error completes "… is …".
pub fn decode(raw: &str) -> Result<String, String> {
    if !raw.contains(['%', '+']) {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = hex else {
                    return Err(format!(
                        "is not correctly URL-encoded (\"{}\")",
                        excerpt(raw)
                    ));
                };
                out.push(byte);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| format!("is not UTF-8 once URL-decoded (\"{}\")", excerpt(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_split_on_raw_commas_then_decoded() {
        let q = Params::parse(Some("channels=a%2Cb,c%2Fd&x=1&scopes=user%3A1,team+7"));
        assert_eq!(
            q.list("channels").expect("ok"),
            Some(vec!["a,b".to_owned(), "c/d".to_owned()])
        );
        assert_eq!(q.list("none").expect("ok"), None);
        assert_eq!(
            &*q.scopes().expect("ok"),
            [Box::<str>::from("team 7"), Box::from("user:1")]
        );
        assert_eq!(q.text("x").expect("ok").as_deref(), Some("1"));
    }

    #[test]
    fn malformed_queries_are_refused() {
        let q = Params::parse(Some("scopes=a,,b"));
        assert!(q.scopes().unwrap_err().message.contains("scope 1 is empty"));
        let q = Params::parse(Some("scopes=a&scopes=b"));
        assert!(q.scopes().unwrap_err().message.contains("more than once"));
        let q = Params::parse(Some("scopes=%zz"));
        assert!(q.scopes().unwrap_err().message.contains("URL-encoded"));
        let q = Params::parse(Some("scopes=%ff"));
        assert!(q.scopes().unwrap_err().message.contains("UTF-8"));
        let many = format!("scopes={}", vec!["s"; 33].join(","));
        let q = Params::parse(Some(&many));
        assert!(q.scopes().unwrap_err().message.contains("33 scopes"));
        let q = Params::parse(Some("scopes="));
        assert!(q.scopes().expect("no scopes").is_empty());
        let q = Params::parse(Some("%zz=1&scopes=a"));
        assert_eq!(q.scopes().expect("other names do not matter").len(), 1);
        assert!(Params::parse(None).scopes().expect("ok").is_empty());
    }
}
