//! The in-process broker's SSE tickets: each one waits, with the token it was issued for, until it
//! is redeemed (once) or expires. (The Redis broker keeps them in Redis, so any node redeems them.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most tickets waiting at once (the one closest to expiry is forgotten first when full).
pub const MAX_TICKETS: usize = 100_000;

#[derive(Debug, Default)]
pub struct Tickets {
    waiting: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tickets {
    /// Keeps `ticket` for `token` for `ttl`.
    pub fn put(&self, ticket: &str, token: &str, ttl: Duration) {
        let now = Instant::now();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
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
        waiting.insert(ticket.to_owned(), (token.to_owned(), now + ttl));
    }

    /// The token of a waiting ticket, which is used up.
    pub fn take(&self, ticket: &str) -> Option<String> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.remove(ticket) {
            Some((token, deadline)) if deadline > Instant::now() => Some(token),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_once_and_not_after_its_ttl() {
        let tickets = Tickets::default();
        tickets.put("t1", "token-1", Duration::from_secs(30));
        assert_eq!(tickets.take("t1").as_deref(), Some("token-1"));
        assert_eq!(tickets.take("t1"), None, "used up");
        assert_eq!(tickets.take("guess"), None);
        tickets.put("t2", "token-2", Duration::ZERO);
        assert_eq!(tickets.take("t2"), None, "expired");
    }
}
