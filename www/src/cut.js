// The demo's network blip: `POST /demo/cut` (relay demo mode only) drops every live connection at
// the relay, as a flaky network would. Each window reconnects (the badge counts down its backoff),
// resumes every channel from the last event it got (`since`), and the relay replays what it missed.

/** Cuts every WebSocket and SSE connection at the relay; resolves with how many there were. */
export async function cutEveryConnection() {
  let response;
  try {
    response = await fetch("/demo/cut", { method: "POST", headers: { accept: "application/json" } });
  } catch (e) {
    throw new Error(`POST /demo/cut failed: ${e?.message ?? e}`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || typeof body?.cut !== "number") {
    throw new Error(`POST /demo/cut answered ${response.status}: ${body?.error?.message ?? "not {\"cut\": n}"}`);
  }
  return body.cut;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Edits post `id` `count` times through the demo API, `gapMs` apart, and cuts every connection after
 * edit `cutAfter`: the edits go on while the windows reconnect, and every window still gets each one
 * (the ones it missed are replayed after the cut). `onProgress(text)` follows the edits. Resolves
 * with what to tell the user: what this window's connection (`live`) got, from its counters.
 */
export async function cutDuringBurst(live, { id = 1, count = 20, cutAfter = 10, gapMs = 25, onProgress = () => {} } = {}) {
  const before = live.stats;
  let cut = 0;
  for (let n = 1; n <= count; n++) {
    const title = `Burst edit ${n}/${count} · ${new Date().toLocaleTimeString()}`;
    const response = await fetch(`/api/posts/${id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title }),
    });
    if (!response.ok) throw new Error(`PATCH /api/posts/${id} answered ${response.status}`);
    onProgress(`edit ${n}/${count} of post ${id}…`);
    if (n === cutAfter) cut = await cutEveryConnection();
    await sleep(gapMs);
  }
  // The last edits may still be on their way (or waiting for the reconnection): give them 5 s.
  const got = () => (live.stats.delivered ?? 0) - (before.delivered ?? 0);
  for (let waited = 0; got() < count && waited < 5_000; waited += 50) await sleep(50);
  const replayed = (live.stats.replayed ?? 0) - (before.replayed ?? 0);
  const received = got() >= count ? `all ${count}` : `${got()} of ${count} so far`;
  return `${count} edits of post ${id}, ${cut} connections cut after the ${cutAfter}th: this window got ${received}, ${replayed} of them replayed after the cut`;
}

/** The connection's counters, as the demo shows them (`coalesced` counts 0 where it is missing). */
export function countersOf(live) {
  const s = live.stats;
  return [
    ["delivered", "events delivered", s.delivered ?? 0],
    ["replayed", "replayed after a cut", s.replayed ?? 0],
    ["resyncs", "resyncs", s.resyncs ?? 0],
    ["duplicates", "duplicates dropped", s.duplicates ?? 0],
    ["coalesced", "refetches saved by coalescing", s.coalesced ?? 0],
    ["connections", "connections", s.connections ?? 0],
  ];
}

/**
 * What the connection badge says: the state, and while reconnecting, the time left before the next
 * attempt (`deadline`: when it is due, `performance.now()` time).
 */
export function badgeText({ state, delayMs }, deadline, now = performance.now()) {
  if (state !== "reconnecting") return state;
  if (delayMs == null || deadline == null) return "reconnecting…";
  const left = Math.max(0, deadline - now);
  return `reconnecting in ${(left / 1000).toFixed(1)} s`;
}

/**
 * For an event log: `replayed()` says whether the event just delivered came as a replay after a cut
 * (the connection's `stats.replayed` moved since the last call). Events are handed to the callbacks
 * one frame at a time, so the counter moves by one for each replayed event.
 */
export function replayTracker(live) {
  let seen = live.stats.replayed ?? 0;
  return {
    replayed() {
      const now = live.stats.replayed ?? 0;
      const moved = now > seen;
      seen = now;
      return moved;
    },
  };
}

/**
 * What an event log says about a state change, or `null`: the connection lost (with the backoff
 * delay before the next attempt) and, after that, the connection back.
 */
export function stateNote(change, wasLost) {
  if (change.state === "reconnecting") {
    const delay = change.delayMs == null ? "when the page can" : `in ${change.delayMs} ms`;
    return `connection lost · reconnecting ${delay}`;
  }
  if (change.state === "open" && wasLost) return "back · resumed from the last event it got";
  return null;
}
