// The dispatch scenarios: which subscriptions the page makes, and the event stream the server sends.
// The stream is a pure function of the event index, so every contender receives the same bytes.

const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

export const SCENARIOS = {
  // One list page: one subscription, every event reaches it.
  one: {
    title: "1 subscription",
    channels: ["resources/posts"],
    subs: [{ channel: "resources/posts" }],
    idOf: (i) => i % 1000,
    perEvent: 1,
  },
  // A dashboard: 10 resources, 10 list-style subscriptions each; every event reaches 10 callbacks.
  hundred: {
    title: "100 subscriptions over 10 channels",
    channels: range(10, (c) => `resources/r${c}`),
    subs: range(100, (s) => ({ channel: `resources/r${s % 10}` })),
    idOf: (i) => i % 1000,
    perEvent: 10,
  },
  // A long table of rows, each with a useOne subscription: 10,000 distinct ids on one channel; each
  // event (type "updated", one id) matches exactly one of them.
  useOne10k: {
    title: "10,000 useOne subscriptions on one channel",
    channels: ["resources/rows"],
    subs: range(10_000, (s) => ({ channel: "resources/rows", id: s })),
    idOf: (i) => (i * 7919) % 10_000, // a permutation of 0..9999: every row is hit, in no simple order
    perEvent: 1,
  },
  // 1,000 channels, one subscription each; events go round the channels.
  channels1k: {
    title: "1,000 channels",
    channels: range(1000, (c) => `resources/c${c}`),
    subs: range(1000, (c) => ({ channel: `resources/c${c}` })),
    idOf: (i) => i % 1000,
    perEvent: 1,
  },
};

export const DATE0 = 1763800000000;

/** The protocol v1 `event` frame of event `i` of scenario `s` (per-channel seq 1, 2, 3, …). */
export function eventFrame(s, i) {
  const c = s.channels.length;
  const channel = s.channels[i % c];
  const seq = Math.floor(i / c) + 1;
  return `{"op":"event","channel":"${channel}","seq":${seq},"type":"updated","payload":{"ids":[${s.idOf(i)}]},"date":${DATE0 + i}}`;
}
