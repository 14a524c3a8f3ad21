// The contenders, as a page loads them. Each factory returns a Refine-shaped provider
// ({ subscribe, unsubscribe }) plus `ready()`, which resolves once it can receive events.

/**
 * (b) The hand-written provider of the seed document ("Custom WebSocket Provider"), verbatim in its
 * structure (a Map of channel -> Set of callbacks, one event object built per callback with
 * `date: new Date()`), with the filtering of Refine's Ably provider (@refinedev/ably) added to each
 * subscription's listener. The only other change: `ready()`, because the seed's `ws.send` would
 * throw before the socket is open.
 */
export function handWritten(wsUrl) {
  const ws = new WebSocket(wsUrl);
  const subscribers = new Map();

  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    const { channel, type, payload } = data;

    const channelSubscribers = subscribers.get(channel);
    if (channelSubscribers) {
      channelSubscribers.forEach((callback) => {
        callback({ channel, type, payload, date: new Date() });
      });
    }
  };

  return {
    ready: () => new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail))),
    subscribe: ({ channel, types, params, callback }) => {
      // @refinedev/ably's listener: types, then ids compared as strings unless "created".
      const listener = (event) => {
        if (types.includes("*") || types.includes(event.type)) {
          if (event.type !== "created" && params?.ids !== undefined && event?.payload?.ids !== undefined) {
            if (params.ids.map(String).filter((value) => event.payload.ids?.map(String).includes(value)).length > 0) {
              callback(event);
            }
          } else {
            callback(event);
          }
        }
      };
      if (!subscribers.has(channel)) {
        subscribers.set(channel, new Set());
        ws.send(JSON.stringify({ action: "subscribe", channel }));
      }
      subscribers.get(channel)?.add(listener);

      return () => {
        subscribers.get(channel)?.delete(listener);
        if (subscribers.get(channel)?.size === 0) {
          subscribers.delete(channel);
          ws.send(JSON.stringify({ action: "unsubscribe", channel }));
        }
      };
    },
    unsubscribe: (unsubscribeFn) => {
      unsubscribeFn();
    },
    close: () => ws.close(),
  };
}

/**
 * (b') A careful hand-written provider (not a target, for context): one event object per message,
 * the subscription's ids pre-stringified into a Set, still a linear scan of the channel's listeners.
 */
export function handTuned(wsUrl) {
  const ws = new WebSocket(wsUrl);
  const subscribers = new Map();
  ws.onmessage = (message) => {
    const { channel, type, payload, date } = JSON.parse(message.data);
    const listeners = subscribers.get(channel);
    if (!listeners) return;
    const event = { channel, type, payload, date: new Date(date) };
    const ids = type !== "created" && payload?.ids !== undefined ? payload.ids.map(String) : null;
    for (const l of listeners) {
      if (!(l.all || l.types.has(type))) continue;
      if (ids && l.ids && !ids.some((id) => l.ids.has(id))) continue;
      l.callback(event);
    }
  };
  return {
    ready: () => new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail))),
    subscribe: ({ channel, types, params, callback }) => {
      const l = {
        all: types.includes("*"),
        types: new Set(types),
        ids: params?.ids !== undefined ? new Set(params.ids.map(String)) : null,
        callback,
      };
      if (!subscribers.has(channel)) {
        subscribers.set(channel, new Set());
        ws.send(JSON.stringify({ action: "subscribe", channel }));
      }
      subscribers.get(channel).add(l);
      return () => {
        const set = subscribers.get(channel);
        set?.delete(l);
        if (set?.size === 0) {
          subscribers.delete(channel);
          ws.send(JSON.stringify({ action: "unsubscribe", channel }));
        }
      };
    },
    unsubscribe: (fn) => fn(),
    close: () => ws.close(),
  };
}

/**
 * (a) The ceiling: a raw WebSocket, JSON.parse, and one callback, called `perEvent` times per message
 * so that it makes as many callback calls as the providers (it knows the answer; it routes nothing).
 */
export function raw(wsUrl, perEvent, callback) {
  const ws = new WebSocket(wsUrl);
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    for (let j = 0; j < perEvent; j++) callback(event);
  };
  return {
    ready: () => new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail))),
    close: () => ws.close(),
  };
}

/** (c) This package: `liveProvider` from pkg/, as a Refine app creates it. */
export async function ours(wsUrl, base = "/pkg") {
  const { liveProvider } = await import(`${base}/index.js`);
  let opened;
  const open = new Promise((ok) => (opened = ok));
  const provider = liveProvider({
    url: wsUrl,
    onStateChange: (s) => s.state === "open" && opened(),
    onError: (e) => console.error("provider error:", e?.message ?? e),
  });
  return { ...provider, subscribe: provider.subscribe, unsubscribe: provider.unsubscribe, ready: () => open, provider };
}

/** Refine's subscribe options for a subscription spec `{ channel, id? }`. */
export function refineOptions(spec, callback) {
  return {
    channel: spec.channel,
    types: ["*"],
    params:
      spec.id === undefined
        ? { resource: spec.channel.slice(10), subscriptionType: "useList" }
        : { resource: spec.channel.slice(10), id: spec.id, ids: [spec.id], subscriptionType: "useOne" },
    callback,
  };
}
