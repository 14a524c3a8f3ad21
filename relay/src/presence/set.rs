//! One channel's presence set, without I/O and on the caller's clock: who is here (one member per
//! client key, several per user), the version that orders the diffs, the grace period after a
//! socket ends, and the limits. The in-process broker keeps one per channel; the decisions the Redis
//! scripts make are the same (issue 26, `../shared/reference/presence.md` §6).
//!
//! Families of methods, in the order a connection uses them: [`PresenceSet::join`] (also the
//! resume of a key after a reconnect), [`PresenceSet::update`], [`PresenceSet::leave`] (explicit:
//! gone at once), [`PresenceSet::disconnected`] (a socket ended: gone after the grace period unless
//! resumed), [`PresenceSet::sweep`] (the expired ones go, each announced once), and
//! [`PresenceSet::snapshot`] for a `sync`.

use serde_json::Value;
use std::collections::BTreeMap;

/// Milliseconds on the caller's clock.
pub type Millis = u64;

/// Who owns a membership: a connection (its id on this node).
pub type ConnId = u64;

/// The limits of one set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Members per channel (`--presence-max-members`); past it a join is refused (`presence_full`).
    pub max_members: usize,
    /// The longest `data`, serialized, in bytes.
    pub max_data_bytes: usize,
    /// `data` updates a member may make per [`Limits::update_window_ms`].
    pub max_updates: u32,
    pub update_window_ms: Millis,
    /// How long a member whose socket ended stays (`--presence-grace-ms`).
    pub grace_ms: Millis,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_members: 100,
            max_data_bytes: 1024,
            max_updates: 5,
            update_window_ms: 10_000,
            grace_ms: 5_000,
        }
    }
}

/// A member of the set: one client (one `key`) of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    /// The token's `sub` (with authentication off, what the client said).
    pub user: String,
    /// Display information: the token's `info` claim (an object), or null.
    pub info: Value,
    /// What the client says of itself (an object).
    pub data: Value,
    /// When it joined, in milliseconds.
    pub since: Millis,
    /// The connection it is on, and how many times it was taken over (a resume adds one).
    pub conn: ConnId,
    pub generation: u64,
    /// Set while its socket is gone: it leaves then unless resumed.
    pub expires_at: Option<Millis>,
    /// When its recent `data` updates were made (at most [`Limits::max_updates`]).
    updates: Vec<Millis>,
}

impl Member {
    /// A member as another store (Redis: [`super::redis`]) describes it, in no grace period.
    pub fn new(
        key: String,
        user: String,
        info: Value,
        data: Value,
        since: Millis,
        conn: ConnId,
        generation: u64,
    ) -> Member {
        Member {
            key,
            user,
            info,
            data,
            since,
            conn,
            generation,
            expires_at: None,
            updates: Vec::new(),
        }
    }
}

/// What happened, for the set's watchers (each diff takes the next [`PresenceSet::version`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Diff {
    Join(Member),
    Update(Member),
    Leave { key: String, user: String },
}

/// Why a request was refused, each with its protocol error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The key belongs to another user (`forbidden`).
    NotYours,
    /// The set holds [`Limits::max_members`] already (`presence_full`).
    Full,
    /// `data` is not an object (`bad_frame`).
    BadData(String),
    /// `data` is longer than [`Limits::max_data_bytes`] serialized (`too_large`).
    TooLarge(String),
    /// Over [`Limits::max_updates`] in the window (`rate_limited`).
    TooFast,
    /// No such member on this connection.
    NotJoined,
}

impl Refusal {
    /// The protocol's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotYours => "forbidden",
            Refusal::Full => "presence_full",
            Refusal::BadData(_) => "bad_frame",
            Refusal::TooLarge(_) => "too_large",
            Refusal::TooFast => "rate_limited",
            Refusal::NotJoined => "bad_frame",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotYours => write!(f, "this presence key belongs to another user"),
            Refusal::Full => write!(f, "the channel's presence set is full"),
            Refusal::BadData(why) | Refusal::TooLarge(why) => write!(f, "presence `data`: {why}"),
            Refusal::TooFast => write!(f, "too many presence updates: slow down"),
            Refusal::NotJoined => write!(f, "not joined to this channel's presence"),
        }
    }
}

/// A join's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Joined {
    /// A new member (announced).
    New(Diff),
    /// The key was here (a reconnect, perhaps on another node): it is this connection's now, and
    /// nothing is announced unless its `data` changed.
    Resumed(Option<Diff>),
}

/// One channel's presence.
#[derive(Debug, Default, Clone)]
pub struct PresenceSet {
    version: u64,
    members: BTreeMap<String, Member>,
}

impl PresenceSet {
    /// The version of the last diff (0: none yet).
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Distinct users.
    pub fn users(&self) -> usize {
        let mut users: Vec<&str> = self.members.values().map(|m| m.user.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        users.len()
    }

    /// The members (those in their grace period too) and the version they are at.
    pub fn snapshot(&self) -> (u64, Vec<&Member>) {
        (self.version, self.members.values().collect())
    }

    /// Joins `key` for `user` on connection `conn`, or resumes it (same user, any connection):
    /// refused when the key is another user's, when `data` is not a small object, or when the set
    /// is full. A resume that changes `data` counts as an update against the rate limit.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        now: Millis,
        key: &str,
        user: &str,
        info: Value,
        data: Value,
        conn: ConnId,
        limits: &Limits,
    ) -> Result<Joined, Refusal> {
        check_data(&data, limits)?;
        if let Some(member) = self.members.get_mut(key) {
            if member.user != user {
                return Err(Refusal::NotYours);
            }
            if member.data != data {
                take_update(&mut member.updates, now, limits)?;
            }
            member.conn = conn;
            member.generation += 1;
            member.expires_at = None;
            member.info = info;
            if member.data == data {
                return Ok(Joined::Resumed(None));
            }
            member.data = data;
            let diff = Diff::Update(member.clone());
            self.version += 1;
            return Ok(Joined::Resumed(Some(diff)));
        }
        if self.members.len() >= limits.max_members {
            return Err(Refusal::Full);
        }
        let member = Member {
            key: key.to_owned(),
            user: user.to_owned(),
            info,
            data,
            since: now,
            conn,
            generation: 0,
            expires_at: None,
            updates: Vec::new(),
        };
        self.members.insert(key.to_owned(), member.clone());
        self.version += 1;
        Ok(Joined::New(Diff::Join(member)))
    }

    /// Changes the `data` of the member `key` owned by `conn` (at most [`Limits::max_updates`]
    /// per window). `None` when the data is the same.
    pub fn update(
        &mut self,
        now: Millis,
        key: &str,
        conn: ConnId,
        data: Value,
        limits: &Limits,
    ) -> Result<Option<Diff>, Refusal> {
        check_data(&data, limits)?;
        let member = self
            .members
            .get_mut(key)
            .filter(|m| m.conn == conn && m.expires_at.is_none())
            .ok_or(Refusal::NotJoined)?;
        if member.data == data {
            // Not a change: neither announced nor counted against the rate.
            return Ok(None);
        }
        take_update(&mut member.updates, now, limits)?;
        member.data = data;
        let diff = Diff::Update(member.clone());
        self.version += 1;
        Ok(Some(diff))
    }

    /// An explicit leave of `key` by its connection: gone at once.
    pub fn leave(&mut self, key: &str, conn: ConnId) -> Option<Diff> {
        match self.members.get(key) {
            Some(member) if member.conn == conn => {
                let member = self.members.remove(key)?;
                self.version += 1;
                Some(Diff::Leave {
                    key: member.key,
                    user: member.user,
                })
            }
            _ => None,
        }
    }

    /// Connection `conn`'s socket ended: its members leave at `now` + grace unless resumed by
    /// then. Announces nothing. Returns how many it had.
    pub fn disconnected(&mut self, now: Millis, conn: ConnId, limits: &Limits) -> usize {
        let mut count = 0;
        for member in self.members.values_mut() {
            if member.conn == conn && member.expires_at.is_none() {
                member.expires_at = Some(now + limits.grace_ms);
                count += 1;
            }
        }
        count
    }

    /// The members whose grace period ended by `now` leave: one diff each, once.
    pub fn sweep(&mut self, now: Millis) -> Vec<Diff> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.expires_at.is_some_and(|at| at <= now))
            .map(|m| m.key.clone())
            .collect();
        let mut diffs = Vec::with_capacity(expired.len());
        for key in expired {
            if let Some(member) = self.members.remove(&key) {
                self.version += 1;
                diffs.push(Diff::Leave {
                    key: member.key,
                    user: member.user,
                });
            }
        }
        diffs
    }

    /// The earliest time a member leaves, if one is in its grace period.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.members.values().filter_map(|m| m.expires_at).min()
    }
}

/// Counts one change made at `now` against [`Limits::max_updates`] per window, given when the
/// recent ones were made (`updates`, kept to the window): a member's `data` changes, on one node
/// or in the Redis store, and a connection's joins of a channel under a new key.
pub fn take_update(updates: &mut Vec<Millis>, now: Millis, limits: &Limits) -> Result<(), Refusal> {
    updates.retain(|&at| now.saturating_sub(at) < limits.update_window_ms);
    if updates.len() >= limits.max_updates as usize {
        return Err(Refusal::TooFast);
    }
    updates.push(now);
    Ok(())
}

/// Refuses `data` that is not an object (or null) or longer than the limit serialized.
pub fn check_data(data: &Value, limits: &Limits) -> Result<(), Refusal> {
    if !data.is_object() && !data.is_null() {
        return Err(Refusal::BadData("must be an object".to_owned()));
    }
    let len = serde_json::to_string(data).map_or(usize::MAX, |s| s.len());
    if len > limits.max_data_bytes {
        return Err(Refusal::TooLarge(format!(
            "{len} bytes, over the limit of {} bytes",
            limits.max_data_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Limits = Limits {
        max_members: 3,
        max_data_bytes: 64,
        max_updates: 5,
        update_window_ms: 10_000,
        grace_ms: 5_000,
    };

    fn join(set: &mut PresenceSet, now: Millis, key: &str, user: &str, conn: ConnId) -> Joined {
        set.join(now, key, user, Value::Null, json!({"id": 3}), conn, &L)
            .expect("joins")
    }

    #[test]
    fn join_update_leave_each_take_a_version() {
        let mut set = PresenceSet::default();
        assert!(matches!(
            join(&mut set, 0, "k1", "alice", 1),
            Joined::New(Diff::Join(_))
        ));
        assert_eq!(set.version(), 1);
        let diff = set.update(10, "k1", 1, json!({"id": 3, "mode": "edit"}), &L);
        assert!(matches!(diff, Ok(Some(Diff::Update(_)))));
        assert_eq!(
            set.update(20, "k1", 1, json!({"id": 3, "mode": "edit"}), &L),
            Ok(None)
        );
        assert_eq!(set.version(), 2);
        assert_eq!(set.leave("k1", 2), None, "another connection's leave");
        assert_eq!(
            set.leave("k1", 1),
            Some(Diff::Leave {
                key: "k1".into(),
                user: "alice".into()
            })
        );
        assert_eq!((set.version(), set.len()), (3, 0));
    }

    #[test]
    fn a_key_of_another_user_is_refused() {
        let mut set = PresenceSet::default();
        join(&mut set, 0, "k1", "alice", 1);
        let refused = set.join(1, "k1", "mallory", Value::Null, Value::Null, 2, &L);
        assert_eq!(refused, Err(Refusal::NotYours));
        assert_eq!(set.snapshot().1[0].conn, 1);
    }

    #[test]
    fn a_resume_within_the_grace_period_announces_nothing() {
        let mut set = PresenceSet::default();
        join(&mut set, 0, "k1", "alice", 1);
        assert_eq!(set.disconnected(1_000, 1, &L), 1);
        assert_eq!(set.next_expiry(), Some(6_000));
        assert!(set.sweep(5_999).is_empty(), "still in its grace period");
        // The tab reconnects (perhaps to another node's connection 7) and joins with its key.
        assert_eq!(
            join(&mut set, 2_000, "k1", "alice", 7),
            Joined::Resumed(None)
        );
        assert!(set.sweep(60_000).is_empty(), "resumed: no leave");
        assert_eq!(set.version(), 1);
        let member = set.snapshot().1[0];
        assert_eq!((member.conn, member.generation, member.since), (7, 1, 0));
    }

    #[test]
    fn a_resume_with_other_data_is_an_update() {
        let mut set = PresenceSet::default();
        join(&mut set, 0, "k1", "alice", 1);
        set.disconnected(1, 1, &L);
        let resumed = set.join(2, "k1", "alice", Value::Null, json!({"id": 4}), 2, &L);
        assert!(matches!(
            resumed,
            Ok(Joined::Resumed(Some(Diff::Update(_))))
        ));
        assert_eq!(set.version(), 2);
    }

    #[test]
    fn the_grace_period_ends_in_one_leave_and_a_second_sweep_finds_nothing() {
        let mut set = PresenceSet::default();
        join(&mut set, 0, "k1", "alice", 1);
        join(&mut set, 0, "k2", "alice", 2);
        set.disconnected(100, 1, &L);
        let diffs = set.sweep(5_100);
        assert_eq!(
            diffs,
            vec![Diff::Leave {
                key: "k1".into(),
                user: "alice".into()
            }]
        );
        assert!(set.sweep(5_100).is_empty(), "swept twice, announced once");
        assert_eq!((set.len(), set.users()), (1, 1), "alice's other tab stays");
    }

    #[test]
    fn resume_and_sweep_race_either_way_without_a_lost_or_double_leave() {
        // Resume first, then the sweep at the expiry: the member stays.
        let mut a = PresenceSet::default();
        join(&mut a, 0, "k1", "alice", 1);
        a.disconnected(0, 1, &L);
        join(&mut a, 5_000, "k1", "alice", 2);
        assert!(a.sweep(5_000).is_empty());
        // The sweep first: the member leaves once; the late join is a new member, announced.
        let mut b = PresenceSet::default();
        join(&mut b, 0, "k1", "alice", 1);
        b.disconnected(0, 1, &L);
        assert_eq!(b.sweep(5_000).len(), 1);
        assert!(matches!(
            join(&mut b, 5_000, "k1", "alice", 2),
            Joined::New(_)
        ));
    }

    #[test]
    fn the_limits_are_answered_with_their_codes() {
        let mut set = PresenceSet::default();
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            join(&mut set, 0, key, "u", i as u64);
        }
        let full = set.join(0, "d", "u", Value::Null, Value::Null, 9, &L);
        assert_eq!(full.map(|_| ()).map_err(|e| e.code()), Err("presence_full"));
        let big = json!({"x": "y".repeat(100)});
        let refused = set.update(0, "a", 0, big, &L).expect_err("too big");
        assert_eq!(refused.code(), "too_large");
        assert!(
            refused.to_string().contains("over the limit of 64 bytes"),
            "{refused}"
        );
        assert_eq!(
            set.update(0, "a", 0, json!([1]), &L).map_err(|e| e.code()),
            Err("bad_frame")
        );
        for i in 0..5 {
            set.update(i, "a", 0, json!({"n": i}), &L)
                .expect("within the rate");
        }
        assert_eq!(
            set.update(5, "a", 0, json!({"n": 9}), &L),
            Err(Refusal::TooFast)
        );
        assert_eq!(
            set.update(6, "a", 0, json!({"n": 4}), &L),
            Ok(None),
            "the same data again is no change: neither announced nor refused"
        );
        assert!(
            set.update(10_001, "a", 0, json!({"n": 9}), &L).is_ok(),
            "a new window"
        );
        for i in 0..10 {
            assert_eq!(
                set.update(10_002 + i, "a", 0, json!({"n": 9}), &L),
                Ok(None),
                "unchanged data is not counted against the rate"
            );
        }
        assert!(
            set.update(10_020, "a", 0, json!({"n": 10}), &L).is_ok(),
            "a second change in the window"
        );
        assert_eq!(
            set.update(0, "a", 1, json!({}), &L),
            Err(Refusal::NotJoined)
        );
    }

    #[test]
    fn a_member_in_its_grace_period_cannot_be_updated_by_the_dead_connection() {
        let mut set = PresenceSet::default();
        join(&mut set, 0, "k1", "alice", 1);
        set.disconnected(0, 1, &L);
        assert_eq!(
            set.update(1, "k1", 1, json!({}), &L),
            Err(Refusal::NotJoined)
        );
    }

    #[test]
    fn a_resume_with_new_data_counts_against_the_rate() {
        let mut set = PresenceSet::default();
        join(&mut set, 0, "k1", "alice", 1);
        for i in 0..5 {
            let joined = set.join(i, "k1", "alice", Value::Null, json!({"n": i}), 1, &L);
            assert!(joined.is_ok(), "{joined:?}");
        }
        let again = set.join(6, "k1", "alice", Value::Null, json!({"n": 9}), 1, &L);
        assert_eq!(again, Err(Refusal::TooFast));
        let same = set.join(7, "k1", "alice", Value::Null, json!({"n": 4}), 2, &L);
        assert_eq!(
            same,
            Ok(Joined::Resumed(None)),
            "the same data is no update"
        );
    }
}
