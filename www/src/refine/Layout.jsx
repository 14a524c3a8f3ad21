import { useState } from "react";
import { usePublish, useSubscription } from "@refinedev/core";
import { NavLink, Outlet, useLocation } from "react-router";
import { useConnectionState, useLiveEvent } from "wasm-live-provider/react";
import { PING_CHANNEL } from "../live.js";

function ConnectionBadge({ live }) {
  const { state, delayMs } = useConnectionState(live);
  const text = state === "reconnecting" && delayMs != null ? `reconnecting in ${delayMs} ms` : state;
  return (
    <span className={`badge ${state}`} data-testid="connection">
      {text}
    </span>
  );
}

/** Every event on `resources/posts`, straight from the live connection (the React adapter). */
function EventLog({ live }) {
  const [events, setEvents] = useState([]);
  useLiveEvent(live, { channel: "resources/posts" }, (event) => setEvents((list) => [event, ...list].slice(0, 50)));
  return (
    <aside className="card">
      <h2>Live events</h2>
      <ol className="log" data-testid="event-log">
        {events.map((e, i) => (
          <li key={events.length - i}>
            <b>{e.type}</b> {e.payload.ids?.join(", ")} <span className="muted">{e.date.toLocaleTimeString()}</span>
          </li>
        ))}
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
