// Presence bookkeeping of a LiveClient (docs/PROTOCOL.md, "Presence"): the members of each channel,
// kept here rather than in the wasm, which sends the joins (one membership per channel, ref-counted,
// joined again after every reconnect) and reports each membership's status (`unsupported`, `stale`,
// `closed`); the socket's listener hands the relay's presence frames here without entering the wasm,
// and a sync makes a set `live`.
// `version` rules: diffs that arrive before the `sync` awaited are held, those at or below the sync's
// version dropped; after a reconnect the new sync is compared with what was shown, so listeners hear
// only of real changes. Offline, the members stay (status "stale").
import { describe, toJson } from "./helpers.js";

/**
 * The least time between two `data` changes sent for one membership: the relay refuses more than 5 in
 * 10 s by default (`--presence-max-updates`; 2.2 s leaves room for the network's jitter), so a change
 * that comes sooner waits, and only the latest of those waiting is sent (clicking through posts never
 * leaves the others seeing an old one).
 */
export const UPDATE_GAP_MS = 2200;
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isWhole = (v) => Number.isSafeInteger(v) && v >= 0;
/** A member (M of the protocol): string `key` and `user`, object `data`, object or null `info`. */
const isMember = (m) => isObject(m) && typeof m.key === "string" && typeof m.user === "string" && isObject(m.data) && (m.info == null || isObject(m.info));

/** A 128-bit random member key (32 hex digits), one per client instance. */
export function presenceKey() {
  // Web Crypto: every browser, and Node from 19 (the client needs a WebSocket global: Node 22).
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => (b + 256).toString(16).slice(1)).join("");
}

/** Whether `f`, a relay presence frame the wasm routed here, can be applied (a hostile one cannot). */
function valid(f) {
  if (!isObject(f)) return false;
  const a = f.action;
  if (a === "stats") return isWhole(f.members) && isWhole(f.users);
  if (!isWhole(f.version)) return false;
  if (a === "sync") return Array.isArray(f.members) && f.members.every(isMember);
  if (a === "leave") return typeof f.key === "string";
  return isMember(f.member); // join, update
}

/** The JSON text of an object, or a TypeError naming `field`. */
function json(value, where, field) {
  if (!isObject(value)) throw new TypeError(`${where}: \`${field}\` must be an object, got ${describe(value)}`);
  return toJson(value, where, field);
}

/**
 * Groups members by user: one entry per user, own connections marked, in the order users came (their
 * first connection's `since`, then by name), whatever the order of a sync; each user's own list
 * sorted by key. The most recent connection's `data` and `info` stand for the user.
 */
function group(members, key) {
  const users = new Map();
  for (const m of members.values()) {
    let u = users.get(m.user);
    if (!u) users.set(m.user, (u = { user: m.user, info: null, data: m.data, connections: 0, self: false, since: m.since, first: m.since, members: [] }));
    u.connections++;
    u.members.push({ key: m.key, data: m.data, since: m.since });
    u.self ||= m.key === key;
    if (m.since < u.first) u.first = m.since;
    if (!(m.since < u.since)) {
      u.since = m.since;
      u.data = m.data;
    }
    if (m.info != null && (u.info === null || u.since === m.since)) u.info = m.info;
  }
  const out = [...users.values()].sort((a, b) => a.first - b.first || (a.user < b.user ? -1 : 1));
  for (const u of out) {
    delete u.first;
    u.members.sort((a, b) => (a.key < b.key ? -1 : 1));
  }
  return out;
}

/**
 * The presence of one client: `presence(channel, options)` hands out handles; `receive(what)` takes the
 * wasm's reports ("<status> <channel>", or a frame as `frameListener` parsed it); `closeAll()` ends every
 * set. `whenReady(op)` runs `op(wasmClient | null)` once the module has loaded; `report(error)` hands a
 * listener's throw to the error hook.
 */
export function createPresence(key, whenReady, report) {
  // channel -> { handles (handle -> the wasm's op that ends it: 3 a join, 4 a watch), status, members
  // (key -> M), version, synced, held, users, shown, stats, and for the membership's data: data (what the
  // wasm has), next (to send), sent (when last sent), timer; detached once the relay closed it (no longer in
  // `sets`, the wasm told) }; those that start out undefined are left out.
  const sets = new Map();

  function notify(set) {
    for (const handle of [...set.handles.keys()]) {
      for (const listener of [...handle.listeners]) {
        try {
          listener(set.users, handle);
        } catch (error) {
          report(error);
        }
      }
    }
  }

  /** Recomputes the users; tells the listeners when what they can see changed (or `force`). */
  function refresh(set, force) {
    const users = group(set.members, key);
    const shown = JSON.stringify(users.map((u) => [u.user, u.info, u.data, u.self, u.members.map((m) => [m.key, m.data])]));
    if (shown !== set.shown) {
      set.users = users;
      set.shown = shown;
    } else if (!force) return;
    notify(set);
  }

  /** Sets the status; refreshes (telling the listeners of a change of status, or when `force`). */
  function live(set, status, force) {
    const changed = status !== set.status;
    set.status = status;
    refresh(set, changed || force);
  }

  function apply(set, f) {
    if (f.version <= set.version) return; // in the sync already, or a replay
    set.version = f.version;
    if (f.action === "leave") set.members.delete(f.key);
    else set.members.set(f.member.key, f.member);
  }

  /** A report of the wasm: `"<status> <channel>"`, or a presence frame (as `frameListener` parsed it). */
  function receive(what) {
    let f = what;
    let status;
    if (typeof what === "string") {
      // The wasm's report on a membership, "<status> <channel>": connecting, stale, unsupported, closed.
      const space = what.indexOf(" ");
      status = what.slice(0, space);
      f = { channel: what.slice(space + 1) };
    } else if (what?.action === "closed") {
      // The relay ended the membership: a join or watch refused for good (its error went to onError),
      // or a refreshed token that no longer allows the channel. The wasm forgets it (else a reconnect
      // would send it again, refused again); a new handle on the channel starts over.
      const set = sets.get(what.channel);
      if (!set) return;
      sets.delete(what.channel);
      set.detached = true;
      clearTimeout(set.timer);
      for (const op of set.handles.values()) whenReady((c) => c?.presence(op, what.channel));
      return live(set, "closed", true);
    }
    const set = sets.get(f?.channel);
    if (!set) return;
    if (status) {
      set.synced = false;
      set.held = [];
      // Stale: members were shown and may be outdated now; before any, still connecting.
      if (status === "stale" && set.status !== "live") return;
      return live(set, status, true);
    }
    if (!valid(f)) {
      whenReady((c) => c?.presence(5, `a presence frame on \`${f.channel}\` was ignored: not one of the protocol`));
      return;
    }
    if (f.action === "stats") {
      set.stats = { members: f.members, users: f.users };
      return live(set, "live", true);
    }
    if (f.action === "sync") {
      set.members = new Map(f.members.map((m) => [m.key, m]));
      set.version = f.version;
      set.synced = true;
      for (const d of set.held.splice(0)) apply(set, d);
      return live(set, "live", false);
    } else if (!set.synced) {
      // Before the sync it waits for: held (at most 1000; the sync replaces older ones anyway).
      if (set.held.push(f) > 1000) set.held.shift();
      return;
    } else apply(set, f);
    refresh(set, false);
  }

  /** Sends `text` as the membership's data now, or when UPDATE_GAP_MS has passed since the last. */
  function sendData(set, channel, text) {
    set.next = text;
    if (set.timer) return;
    const go = () => {
      set.timer = 0;
      set.sent = Date.now();
      whenReady((c) => c?.presence(2, channel, (set.data = set.next)));
    };
    const wait = set.sent + UPDATE_GAP_MS - Date.now(); // NaN before the first
    if (wait > 0) set.timer = setTimeout(go, wait);
    else go();
  }

  function presence(channel, options = {}) {
    const where = "presence";
    if (!isObject(options)) throw new TypeError(`${where}: the options must be an object like { data: { id: 3 } }, got ${describe(options)}`);
    const { watchOnly = false, user, info } = options;
    if (typeof watchOnly !== "boolean") throw new TypeError(`${where}: \`watchOnly\` must be a boolean, got ${describe(watchOnly)}`);
    const data = json(options.data ?? {}, where, "data");
    if (user !== undefined && (typeof user !== "string" || !user)) throw new TypeError(`${where}: \`user\` must be a non-empty string, got ${describe(user)}`);
    if (info !== undefined) json(info, where, "info");
    // The join's identity members, as the wasm adds them to the frame: `"key":…,"user":…,"info":…`.
    const who = JSON.stringify({ key, user, info }).slice(1, -1);
    let set = sets.get(channel);
    if (!set) sets.set(channel, (set = { handles: new Map(), status: "connecting", members: new Map(), version: -1, held: [], users: [], shown: "[]", stats: null }));
    let left = false;
    const handle = {
      listeners: new Set(),
      channel,
      get status() {
        return left ? "closed" : set.status;
      },
      get members() {
        return set.users;
      },
      get self() {
        return set.users.find((u) => u.self) ?? null;
      },
      get stats() {
        return set.stats;
      },
      onChange(listener) {
        if (typeof listener !== "function") throw new TypeError(`onChange: \`listener\` must be a function, got ${describe(listener)}`);
        if (!left) handle.listeners.add(listener);
        return () => handle.listeners.delete(listener);
      },
      update(next) {
        const text = json(next, "presence.update", "data");
        if (watchOnly) throw new TypeError("presence.update: a `watchOnly` handle has no data to update");
        if (!left && !set.detached) sendData(set, channel, text);
      },
      leave() {
        if (left) return;
        left = true;
        handle.listeners.clear();
        // A microtask later: React's StrictMode unmounts and mounts again at once; the second handle
        // enters first, so the membership never leaves.
        queueMicrotask(() => {
          set.handles.delete(handle);
          if (!set.handles.size && sets.get(channel) === set) {
            sets.delete(channel);
            clearTimeout(set.timer);
          }
          if (!set.detached) whenReady((c) => c?.presence(watchOnly ? 4 : 3, channel));
        });
      },
    };
    set.handles.set(handle, watchOnly ? 4 : 3);
    // A join on a membership that exists enters with the data it has, and changes it as update() does.
    const entered = watchOnly ? data : (set.data ||= data);
    whenReady((c) => (c ? c.presence(watchOnly ? 1 : 0, channel, entered, who) : receive(`closed ${channel}`)));
    if (entered !== data) sendData(set, channel, data);
    return handle;
  }

  function closeAll() {
    for (const set of sets.values()) {
      clearTimeout(set.timer);
      if (set.status !== "closed") {
        set.status = "closed";
        notify(set);
      }
    }
    sets.clear();
  }

  return { presence, receive, closeAll };
}
