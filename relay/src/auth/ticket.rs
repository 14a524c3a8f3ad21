//! Tickets for the SSE transport: `EventSource` cannot send an `Authorization` header, and a
//! token in the URL would end up in access logs for as long as it is valid. So the client posts
//! its token to `POST /sse/ticket` and gets a random ticket that opens one stream, once, within
//! [`TICKET_TTL`]; a logged ticket is useless.

use super::claims::Claims;
use super::failure::AuthFailure;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// The most tickets waiting at once (older ones are forgotten first when full).
pub const MAX_TICKETS: usize = 100_000;

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

/// The tickets of a relay running alone (a cluster keeps them in Redis, so that any node redeems
/// them).
#[derive(Debug, Default)]
pub struct Tickets {
    waiting: Mutex<HashMap<String, (Arc<Claims>, Instant)>>,
}

impl Tickets {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Arc<Claims>, Instant)>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new single-use ticket for these claims.
    pub fn issue(&self, claims: Arc<Claims>) -> Result<String, String> {
        let ticket = fresh()?;
        let now = Instant::now();
        let mut waiting = self.lock();
        waiting.retain(|_, (_, deadline)| *deadline > now);
        if waiting.len() >= MAX_TICKETS {
            if let Some(oldest) = waiting
                .iter()
                .min_by_key(|(_, (_, deadline))| *deadline)
                .map(|(t, _)| t.clone())
            {
                waiting.remove(&oldest);
            }
        }
        // A ticket lives no longer than its token.
        let ttl = ttl(&claims);
        waiting.insert(ticket.clone(), (claims, now + ttl));
        Ok(ticket)
    }

    /// The claims of a ticket, which is used up. A ticket whose token has expired since it was
    /// issued opens nothing.
    pub fn redeem(&self, ticket: &str) -> Result<Arc<Claims>, AuthFailure> {
        match self.lock().remove(ticket) {
            Some((claims, _)) if super::time_left(&claims).is_zero() => Err(AuthFailure::Expired),
            Some((claims, deadline)) if deadline > Instant::now() => Ok(claims),
            _ => Err(AuthFailure::BadTicket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::pattern::Patterns;

    #[test]
    fn a_ticket_opens_once() {
        let tickets = Tickets::default();
        let claims = Arc::new(Claims {
            sub: Some("u1".into()),
            exp: u64::MAX,
            channels: Patterns::new(["a"]),
            publish: Patterns::default(),
            scopes: vec![],
        });
        let ticket = tickets.issue(Arc::clone(&claims)).expect("ticket");
        assert_eq!(ticket.len(), 48);
        assert_eq!(tickets.redeem(&ticket), Ok(Arc::clone(&claims)));
        assert_eq!(tickets.redeem(&ticket), Err(AuthFailure::BadTicket));
        assert_eq!(tickets.redeem("guess"), Err(AuthFailure::BadTicket));
        let expired = Arc::new(Claims {
            exp: 1,
            ..Claims::clone(&claims)
        });
        let ticket = tickets.issue(expired).expect("ticket");
        assert_eq!(tickets.redeem(&ticket), Err(AuthFailure::Expired));
    }
}
