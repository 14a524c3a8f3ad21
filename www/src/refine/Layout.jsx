import { useEffect, useMemo, useState } from "react";
import { usePublish, useSubscription } from "@refinedev/core";
import { NavLink, Outlet, useLocation } from "react-router";
import { useConnectionState, useLiveEvent } from "wasm-live-provider/react";
import { PING_CHANNEL } from "../live.js";
import { Me } from "./presence.jsx";
import { badgeText, countersOf, cutDuringBurst, cutEveryConnection, replayTracker, stateNote } from "../cut.js";

/** The connection state; while reconnecting, a countdown to the next attempt. */
function ConnectionBadge({ live }) {
  const connection = useConnectionState(live);
  const [deadline, setDeadline] = useState(null);
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    if (connection.state !== "reconnecting" || connection.delayMs == null) {
      setDeadline(null);
      return undefined;
    }
    setDeadline(performance.now() + connection.delayMs);
    const timer = setInterval(() => setNow(performance.now()), 100);
    return () => clearInterval(timer);
  }, [connection]);
  return (
    <span className={`badge ${connection.state}`} data-testid="connection">
      {badgeText(connection, deadline, now)}
    </span>
  );
}

/** The counters of the connection, read four times a second. */
function Counters({ live }) {
  const [counters, setCounters] = useState(() => countersOf(live));
  useEffect(() => {
    const timer = setInterval(() => setCounters(countersOf(live)), 250);
    return () => clearInterval(timer);
  }, [live]);
  return (
    <dl className="counters" data-testid="counters">
      {counters.map(([key, label, value]) => (
        <div key={key}>
          <dt>{label}</dt>
          <dd data-testid={`stat-${key}`}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Cuts every connection at the relay, alone or in the middle of a burst of edits. */
function Blip({ live }) {
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  const run = async (action) => {
    setBusy(true);
    try {
      await action();
    } catch (e) {
      setStatus(e.message);
    } finally {
      setBusy(false);
    }
  };
  const cutAlone = () =>
    run(async () => setStatus(`cut ${await cutEveryConnection()} connections at ${new Date().toLocaleTimeString()}`));
  const cutInBurst = () => run(async () => setStatus(await cutDuringBurst(live, { onProgress: setStatus })));
  return (
    <div className="blip">
      <button data-testid="cut-burst" disabled={busy} onClick={cutInBurst}>
        Cut during 20 edits
      </button>{" "}
      <button data-testid="cut" disabled={busy} onClick={cutAlone}>
        Cut every connection
      </button>
      <p className="muted" data-testid="cut-status">
        {status || "Drops every live connection at the relay, like a network blip: nothing is lost."}
      </p>
    </div>
  );
}

/** Every event on `resources/posts`, straight from the live connection (the React adapter). */
function EventLog({ live }) {
  const [events, setEvents] = useState([]);
  const add = (entry) => setEvents((list) => [{ n: (list[0]?.n ?? 0) + 1, ...entry }, ...list].slice(0, 50));
  const tracker = useMemo(() => replayTracker(live), [live]);
  // Every event, not coalesced: the log shows each one the connection delivers, and which came back
  // as replays after a cut.
  useLiveEvent(live, { channel: "resources/posts", coalesceMs: 0 }, (event) => add({ event, replayed: tracker.replayed() }));
  // The connection lost and back, between the events.
  useEffect(() => {
    let lost = false;
    return live.onStateChange((change) => {
      const note = stateNote(change, lost);
      if (change.state === "reconnecting") lost = true;
      if (change.state === "open") lost = false;
      if (note) add({ note });
    });
  }, [live]);
  return (
    <aside className="card">
      <h2>Network blip</h2>
      <Blip live={live} />
      <Counters live={live} />
      <h2>Live events</h2>
      <ol className="log" data-testid="event-log">
        {events.map(({ n, event: e, replayed, note }) =>
          note ? (
            <li key={n} className="note">
              {note}
            </li>
          ) : (
            <li key={n}>
              <b>{e.type}</b> {e.payload.ids?.join(", ")} <span className="muted">{e.date.toLocaleTimeString()}</span>
              {replayed && <span className="tag">replayed</span>}
            </li>
          ),
        )}
      </ol>
      {events.length === 0 && <p className="muted">Edit a post in another window…</p>}
      <Notifications />
    </aside>
  );
}

/**
 * A custom channel with Refine's own `usePublish` and `useSubscription`: the publish goes through the
 * live client, over the authenticated connection (the demo token may publish on `demo/*`).
 */
function Notifications() {
  const publish = usePublish();
  const [last, setLast] = useState(null);
  useSubscription({
    channel: PING_CHANNEL,
    types: ["ping"],
    onLiveEvent: (event) => setLast(event.payload.message),
  });
  return (
    <div style={{ marginTop: "1rem" }}>
      <button
        data-testid="ping"
        onClick={() =>
          publish?.({ channel: PING_CHANNEL, type: "ping", payload: { message: `ping at ${new Date().toLocaleTimeString()}` }, date: new Date() })
        }
      >
        Ping every window
      </button>
      <p className="muted" data-testid="notification">
        {last ?? "no ping yet"}
      </p>
    </div>
  );
}

export function Layout({ live }) {
  // The About page shows no live data: arriving there unmounts every `resources/posts` subscription,
  // the event log's included, so the relay sees this page leave the channel.
  const showLog = useLocation().pathname !== "/about";
  return (
    <>
      <header>
        <b>wasm-live-provider</b>
        <NavLink to="/posts">Posts</NavLink>
        <NavLink to="/manual">Manual mode</NavLink>
        <NavLink to="/about">About</NavLink>
        <a href="/vue.html">Vue app</a>
        <span className="spacer" />
        <Me />
        <ConnectionBadge live={live} />
      </header>
      <main>
        <section className="card">
          <Outlet />
        </section>
        {showLog ? <EventLog live={live} /> : <aside className="card"><Notifications /></aside>}
      </main>
    </>
  );
}
