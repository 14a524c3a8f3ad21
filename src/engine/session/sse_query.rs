//! The query of a Server-Sent Events stream URL, and `encodeURIComponent` for its values.

use super::channel_state::ChannelPosition;
use crate::engine::hash::HashMap;
use crate::engine::text;

/// The query of an SSE stream URL: `channels=a,b&since=<epoch>:<seq>,,<seq>` (see `docs/PROTOCOL.md`).
/// Positions of another epoch than the first one found cannot be expressed in one `since`; such
/// channels resubscribe without a position and are resynced.
pub(super) fn sse_query(channels: &[&str], positions: &HashMap<String, ChannelPosition>) -> String {
    let mut query = String::from("channels=");
    for (i, c) in channels.iter().enumerate() {
        if i > 0 {
            query.push(',');
        }
        percent_encode_into(&mut query, c);
    }
    let epoch = channels
        .iter()
        .find_map(|c| positions.get(*c))
        .map(|p| p.epoch.clone());
    if let Some(epoch) = epoch {
        query.push_str("&since=");
        percent_encode_into(&mut query, &epoch);
        query.push(':');
        for (i, c) in channels.iter().enumerate() {
            if i > 0 {
                query.push(',');
            }
            if let Some(p) = positions.get(*c).filter(|p| p.epoch == epoch) {
                text::push_decimal(&mut query, p.seq);
            }
        }
    }
    query
}

/// `encodeURIComponent` for a query value.
pub fn percent_encode_into(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}
