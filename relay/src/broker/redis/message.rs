//! The live fan-out message (`<epoch>\n<seq>\n<scopes>\n<frame>`) and the pieces a publish
//! hands to the script.

/// One event as the fan-out carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub epoch: String,
    pub seq: u64,
    pub scopes: Option<Box<[Box<str>]>>,
    pub frame: String,
}

/// Reads a fan-out message.
pub fn parse(payload: Vec<u8>) -> Result<Live, String> {
    let text = String::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?;
    let mut parts = text.splitn(4, '\n');
    let (Some(epoch), Some(seq), Some(scopes), Some(frame)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("fewer than 4 lines".to_owned());
    };
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("seq `{seq}` is not a number"))?;
    Ok(Live {
        epoch: epoch.to_owned(),
        seq,
        scopes: decode_scopes(scopes)?,
        frame: frame.to_owned(),
    })
}

/// A publish's scopes as the script stores them: a JSON array, or empty for none.
pub fn encode_scopes<S: AsRef<str>>(scopes: Option<&[S]>) -> String {
    match scopes {
        Some(list) if !list.is_empty() => {
            let list: Vec<&str> = list.iter().map(AsRef::as_ref).collect();
            serde_json::to_string(&list).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The scopes stored by [`encode_scopes`].
pub fn decode_scopes(text: &str) -> Result<Option<Box<[Box<str>]>>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let list: Vec<Box<str>> =
        serde_json::from_str(text).map_err(|e| format!("scopes are not a JSON array: {e}"))?;
    Ok((!list.is_empty()).then(|| list.into()))
}

/// An `event` frame encoded with seq 0, cut around that seq: the script puts the real one between.
pub fn split_frame(frame: &str) -> Option<(&str, &str)> {
    // A JSON string escapes its quotes, so the first `"seq":` is the field.
    const FIELD: &str = "\"seq\":0";
    let at = frame.find(FIELD)?;
    let head = &frame[..at + FIELD.len() - 1];
    let tail = &frame[at + FIELD.len()..];
    (tail.starts_with(',') || tail.starts_with('}')).then_some((head, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_cut_around_its_seq() {
        let frame =
            r#"{"op":"event","channel":"a\"seq\":0","seq":0,"type":"t","payload":{"seq":0}}"#;
        let (head, tail) = split_frame(frame).expect("cut");
        assert_eq!(
            format!("{head}42{tail}"),
            r#"{"op":"event","channel":"a\"seq\":0","seq":42,"type":"t","payload":{"seq":0}}"#
        );
        assert_eq!(split_frame(r#"{"seq":01}"#), None);
    }

    #[test]
    fn messages_round_trip_and_bad_ones_are_named() {
        let scopes = encode_scopes(Some(&["a\nb", "c"][..]));
        let live = parse(format!("e1\n7\n{scopes}\n{{\"x\":\"1\\n2\"}}").into_bytes()).unwrap();
        assert_eq!(live.epoch, "e1");
        assert_eq!(live.seq, 7);
        assert_eq!(live.scopes.as_deref().map(<[_]>::len), Some(2));
        assert_eq!(live.frame, "{\"x\":\"1\\n2\"}");
        assert_eq!(encode_scopes::<&str>(None), "");
        assert_eq!(encode_scopes::<&str>(Some(&[])), "");
        assert!(parse(b"e1\nx\n\n{}".to_vec()).unwrap_err().contains("seq"));
        assert!(parse(b"e1\n1".to_vec()).unwrap_err().contains("4 lines"));
        assert!(parse(b"e1\n1\n[1]\n{}".to_vec())
            .unwrap_err()
            .contains("scopes"));
    }
}
