//! The in-process broker's SSE tickets: each one waits, with the token it was issued for, until it
//! is redeemed (once) or expires. (The Redis broker keeps them in Redis, so any node redeems them.)
//!
//! Bounded two ways, neither at another user's expense: a user (a token's holder) has at most
//! [`MAX_TICKETS_PER_HOLDER`] waiting, and the relay at most [`MAX_TICKETS`]; past either a new
//! ticket is refused, and no waiting ticket is ever evicted. Expired tickets are dropped in
//! deadline order, so each call costs O(log n).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most tickets waiting at once.
pub const MAX_TICKETS: usize = 100_000;

/// The most tickets one holder may have waiting (a client needs one per stream it opens).
pub const MAX_TICKETS_PER_HOLDER: usize = 32;

/// Why a ticket was not issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefusal {
    /// The holder has [`MAX_TICKETS_PER_HOLDER`] waiting.
    HolderFull,
    /// The relay has [`MAX_TICKETS`] waiting.
    RelayFull,
}

impl std::fmt::Display for TicketRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TicketRefusal::HolderFull => write!(
                f,
                "{MAX_TICKETS_PER_HOLDER} SSE tickets of this user are waiting already: open \
                 streams with them, or wait for them to expire"
            ),
            TicketRefusal::RelayFull => write!(
                f,
                "the relay holds {MAX_TICKETS} waiting SSE tickets: retry shortly"
            ),
        }
    }
}

#[derive(Debug)]
struct Waiting {
    token: String,
    holder: String,
    deadline: Instant,
    /// Its place in `by_deadline`.
    order: u64,
}

#[derive(Debug, Default)]
struct Map {
    waiting: HashMap<String, Waiting>,
    /// The tickets by deadline (the order breaks ties).
    by_deadline: BTreeMap<(Instant, u64), String>,
    per_holder: HashMap<String, usize>,
    next_order: u64,
}

impl Map {
    fn remove(&mut self, ticket: &str) -> Option<Waiting> {
        let waiting = self.waiting.remove(ticket)?;
        self.by_deadline.remove(&(waiting.deadline, waiting.order));
        if let Some(count) = self.per_holder.get_mut(&waiting.holder) {
            *count -= 1;
            if *count == 0 {
                self.per_holder.remove(&waiting.holder);
            }
        }
        Some(waiting)
    }

    fn expire(&mut self, now: Instant) {
        while let Some(entry) = self.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ticket = entry.remove();
            self.remove(&ticket);
        }
    }
}

#[derive(Debug, Default)]
pub struct Tickets {
    /// Boxed: the broker holding it stays small.
    map: Box<Mutex<Map>>,
}

impl Tickets {
    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `ticket` for `token` (held by `holder`) for `ttl`.
    pub fn put(
        &self,
        ticket: &str,
        token: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), TicketRefusal> {
        let now = Instant::now();
        let mut map = self.lock();
        map.expire(now);
        if map.per_holder.get(holder).copied().unwrap_or(0) >= MAX_TICKETS_PER_HOLDER {
            return Err(TicketRefusal::HolderFull);
        }
        if map.waiting.len() >= MAX_TICKETS {
            return Err(TicketRefusal::RelayFull);
        }
        map.remove(ticket);
        let order = map.next_order;
        map.next_order += 1;
        let deadline = now + ttl;
        map.by_deadline.insert((deadline, order), ticket.to_owned());
        *map.per_holder.entry(holder.to_owned()).or_insert(0) += 1;
        map.waiting.insert(
            ticket.to_owned(),
            Waiting {
                token: token.to_owned(),
                holder: holder.to_owned(),
                deadline,
                order,
            },
        );
        Ok(())
    }

    /// The token of a waiting ticket, which is used up.
    pub fn take(&self, ticket: &str) -> Option<String> {
        let mut map = self.lock();
        map.remove(ticket)
            .filter(|w| w.deadline > Instant::now())
            .map(|w| w.token)
    }

    /// How many tickets are waiting (expired ones included until the next call expires them).
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn a_ticket_opens_once_and_not_after_its_ttl() {
        let tickets = Tickets::default();
        tickets.put("t1", "token-1", "u1", TTL).expect("kept");
        assert_eq!(tickets.take("t1").as_deref(), Some("token-1"));
        assert_eq!(tickets.take("t1"), None, "used up");
        assert_eq!(tickets.take("guess"), None);
        tickets
            .put("t2", "token-2", "u1", Duration::ZERO)
            .expect("kept");
        assert_eq!(tickets.take("t2"), None, "expired");
        assert!(tickets.is_empty());
    }

    #[test]
    fn a_holder_cannot_fill_the_map_nor_evict_another_holders_ticket() {
        let tickets = Tickets::default();
        tickets
            .put("victim", "token-v", "victim", TTL)
            .expect("kept");
        for i in 0..MAX_TICKETS_PER_HOLDER {
            tickets
                .put(&format!("a{i}"), "token-a", "attacker", TTL)
                .expect("under the cap");
        }
        assert_eq!(
            tickets.put("one-more", "token-a", "attacker", TTL),
            Err(TicketRefusal::HolderFull)
        );
        assert_eq!(tickets.len(), MAX_TICKETS_PER_HOLDER + 1);
        // Using one makes room for one more.
        assert!(tickets.take("a0").is_some());
        tickets
            .put("a0-again", "token-a", "attacker", TTL)
            .expect("room again");
        assert_eq!(tickets.take("victim").as_deref(), Some("token-v"));
    }

    #[test]
    fn a_full_relay_refuses_new_tickets_and_keeps_the_waiting_ones() {
        let tickets = Tickets::default();
        for i in 0..MAX_TICKETS {
            let holder = format!("h{}", i / MAX_TICKETS_PER_HOLDER);
            tickets
                .put(&format!("t{i}"), "tok", &holder, TTL)
                .expect("under the cap");
        }
        assert_eq!(
            tickets.put("late", "tok", "late-user", TTL),
            Err(TicketRefusal::RelayFull)
        );
        // The ticket closest to expiry (the first) is still there.
        assert_eq!(tickets.take("t0").as_deref(), Some("tok"));
        tickets
            .put("late", "tok", "late-user", TTL)
            .expect("room again");
    }
}
