//! Tickets for the SSE transport: `EventSource` cannot send an `Authorization` header, and a
//! token in the URL would end up in access logs for as long as it is valid. So the client posts
//! its token to `POST /sse/ticket` and gets a random ticket that opens one stream, once, within
//! [`TICKET_TTL`]; a logged ticket is useless. The broker keeps each ticket with its token (in
//! this process, or in Redis for a cluster); redeeming verifies the token again.

use super::claims::Claims;
use std::time::Duration;

/// How long a ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// A new random ticket: 48 hex digits (192 bits).
pub fn fresh() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a ticket: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How long a ticket for these claims may wait: [`TICKET_TTL`], or less when its token expires
/// sooner.
pub fn ttl(claims: &Claims) -> Duration {
    TICKET_TTL.min(super::time_left(claims))
}
