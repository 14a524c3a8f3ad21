//! The in-process store: one [`PresenceSet`] per channel, on the wall clock (a member's `since`
//! is milliseconds since the epoch). Diffs are announced to the watchers while the sets' lock is
//! held, so they are queued in version order.

use super::contract::{JoinOutcome, JoinRequest, MemberView, Snapshot, StoreError};
use super::set::{ConnId, Diff, Joined, Limits, Millis, PresenceSet};
use super::watchers::{Announcement, Watchers};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Milliseconds since the epoch, now.
pub fn wall_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Debug)]
pub struct MemoryStore {
    sets: Mutex<HashMap<String, PresenceSet>>,
    limits: Limits,
    watchers: Arc<Watchers>,
}

impl MemoryStore {
    pub fn new(limits: Limits, watchers: Arc<Watchers>) -> Self {
        MemoryStore {
            sets: Mutex::new(HashMap::new()),
            limits,
            watchers,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, PresenceSet>> {
        // A set's methods do not panic midway.
        self.sets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn announce(&self, channel: &str, version: u64, diff: &Diff) {
        self.watchers
            .announce(channel, version, Announcement::of(diff));
    }

    pub fn join(&self, channel: &str, r: JoinRequest<'_>) -> Result<JoinOutcome, StoreError> {
        let mut sets = self.lock();
        let set = sets.entry(channel.to_owned()).or_default();
        let joined = set.join(
            wall_ms(),
            r.key,
            r.user,
            r.info,
            r.data,
            r.conn,
            &self.limits,
        );
        let version = set.version();
        match joined? {
            Joined::New(diff) => {
                self.announce(channel, version, &diff);
                Ok(JoinOutcome::New)
            }
            Joined::Resumed(diff) => {
                if let Some(diff) = &diff {
                    self.announce(channel, version, diff);
                }
                Ok(JoinOutcome::Resumed {
                    changed: diff.is_some(),
                })
            }
        }
    }

    pub fn update(
        &self,
        channel: &str,
        key: &str,
        conn: ConnId,
        data: Value,
    ) -> Result<bool, StoreError> {
        let mut sets = self.lock();
        let Some(set) = sets.get_mut(channel) else {
            return Err(StoreError::Refused(super::set::Refusal::NotJoined));
        };
        let diff = set.update(wall_ms(), key, conn, data, &self.limits)?;
        if let Some(diff) = &diff {
            self.announce(channel, set.version(), diff);
        }
        Ok(diff.is_some())
    }

    pub fn leave(&self, channel: &str, key: &str, conn: ConnId) -> bool {
        let mut sets = self.lock();
        let Some(set) = sets.get_mut(channel) else {
            return false;
        };
        let diff = set.leave(key, conn);
        let version = set.version();
        match diff {
            Some(diff) => {
                self.announce(channel, version, &diff);
                true
            }
            None => false,
        }
    }

    pub fn disconnected(&self, channel: &str, _key: &str, conn: ConnId) {
        if let Some(set) = self.lock().get_mut(channel) {
            set.disconnected(wall_ms(), conn, &self.limits);
        }
    }

    pub fn snapshot(&self, channel: &str) -> Snapshot {
        let sets = self.lock();
        let Some(set) = sets.get(channel) else {
            return Snapshot::default();
        };
        let (version, members) = set.snapshot();
        Snapshot {
            version,
            members: members
                .into_iter()
                .map(|m| MemberView {
                    key: m.key.clone(),
                    user: m.user.clone(),
                    info: m.info.clone(),
                    data: m.data.clone(),
                    since: m.since,
                })
                .collect(),
            users: set.users(),
        }
    }

    pub fn sweep(&self) -> usize {
        let now = wall_ms();
        let mut sets = self.lock();
        let mut swept = 0;
        for (channel, set) in sets.iter_mut() {
            if set.next_expiry().is_none_or(|at| at > now) {
                continue;
            }
            // Each diff takes the next version: announce them with theirs.
            let first = set.version() + 1;
            let diffs = set.sweep(now);
            for (i, diff) in diffs.iter().enumerate() {
                self.announce(channel, first + i as u64, diff);
            }
            swept += diffs.len();
        }
        // An empty set is forgotten once no one here watches it: a watcher that synced keeps
        // seeing its versions grow (a new set would count from 0 again).
        sets.retain(|channel, set| !set.is_empty() || self.watchers.is_watched(channel));
        swept
    }

    pub fn members(&self) -> usize {
        self.lock().values().map(PresenceSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::hub::Hub;
    use crate::broker::{scopes, Member as Conn, Settings};
    use serde_json::json;

    fn connection(hub: &Arc<Hub>) -> Conn {
        hub.connect(64, scopes::<&str>([]))
    }

    fn frames(conn: &mut Conn) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(frame) = conn.rx.try_recv() {
            out.push(serde_json::from_str(frame.text.as_str()).expect("JSON"));
        }
        out
    }

    fn request(key: &str, conn: ConnId) -> JoinRequest<'_> {
        JoinRequest {
            key,
            user: "u",
            info: Value::Null,
            data: json!({}),
            conn,
        }
    }

    #[test]
    fn diffs_reach_the_watchers_in_version_order_and_a_watched_empty_set_keeps_counting() {
        let hub = Arc::new(Hub::new(Settings::default(), "e", true));
        let watchers = Arc::new(Watchers::default());
        let store = MemoryStore::new(Limits::default(), Arc::clone(&watchers));
        let mut watcher = connection(&hub);
        let outbox = hub.outbox(watcher.id).expect("registered");
        watchers.add("c", watcher.id, outbox, false);
        let a = "key-a-0123456789";
        assert_eq!(store.join("c", request(a, 1)), Ok(JoinOutcome::New));
        assert!(store.update("c", a, 1, json!({"n": 1})).expect("updates"));
        assert!(store.leave("c", a, 1));
        assert_eq!(store.sweep(), 0);
        assert_eq!(store.snapshot("c").version, 3, "kept while watched");
        store.join("c", request(a, 1)).expect("joins again");
        let seen: Vec<(String, u64)> = frames(&mut watcher)
            .iter()
            .map(|f| {
                (
                    f["action"].as_str().expect("action").to_owned(),
                    f["version"].as_u64().expect("version"),
                )
            })
            .collect();
        let expected = [("join", 1), ("update", 2), ("leave", 3), ("join", 4)];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(a, v)| (a.to_string(), *v)).collect();
        assert_eq!(seen, expected);
        // Unwatched and empty: forgotten at the next sweep.
        assert!(store.leave("c", a, 1));
        watchers.remove("c", watcher.id);
        store.sweep();
        assert_eq!(store.snapshot("c"), Snapshot::default());
        assert_eq!(store.members(), 0);
    }

    #[test]
    fn a_grace_period_ends_in_one_announced_leave_unless_resumed() {
        let hub = Arc::new(Hub::new(Settings::default(), "e", true));
        let watchers = Arc::new(Watchers::default());
        let limits = Limits {
            grace_ms: 0,
            ..Limits::default()
        };
        let store = MemoryStore::new(limits, Arc::clone(&watchers));
        let mut watcher = connection(&hub);
        let outbox = hub.outbox(watcher.id).expect("registered");
        watchers.add("c", watcher.id, outbox, false);
        let (a, b) = ("key-a-0123456789", "key-b-0123456789");
        store.join("c", request(a, 1)).expect("a");
        store.join("c", request(b, 2)).expect("b");
        store.disconnected("c", a, 1);
        store.disconnected("c", b, 2);
        // b's tab reconnects (connection 3) before the sweep.
        assert_eq!(
            store.join("c", request(b, 3)),
            Ok(JoinOutcome::Resumed { changed: false })
        );
        assert_eq!(store.sweep(), 1);
        assert_eq!(store.sweep(), 0);
        let actions: Vec<Value> = frames(&mut watcher)
            .iter()
            .map(|f| f["action"].clone())
            .collect();
        assert_eq!(actions, [json!("join"), json!("join"), json!("leave")]);
        assert_eq!(store.snapshot("c").members.len(), 1);
    }
}
