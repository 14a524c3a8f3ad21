// Uses the package the way the README shows; compiled with `tsc --strict` by `make test`.
import { liveProvider, createLiveClient, type LiveEvent, type LivePublishError } from "wasm-live-provider";

// A structural copy of Refine's LiveProvider (packages/core/src/contexts/live/types.ts), so that the
// check does not need @refinedev/core installed: our provider must be assignable to it.
type RefineLiveProvider = {
  publish?: (event: LiveEvent) => void;
  subscribe: (options: {
    channel: string;
    types: Array<LiveEvent["type"]>;
    callback: (event: LiveEvent) => void;
    params?: { ids?: (string | number)[]; id?: string | number; subscriptionType?: "useList" | "useOne" | "useMany"; resource?: string; [key: string]: unknown };
    meta?: Record<string, any> & { dataProviderName?: string };
  }) => any;
  unsubscribe: (subscription: any) => void;
};

const provider = liveProvider({
  url: "ws://127.0.0.1:8787/ws",
  onStateChange: (s) => console.log(s.state, s.delayMs ?? 0),
  onError: (e: Error) => console.warn(e.message),
});
const refine: RefineLiveProvider = provider;

const handle = refine.subscribe({
  channel: "resources/posts",
  types: ["*"],
  params: { ids: [1], subscriptionType: "useOne" },
  callback: (event) => {
    const when: Date = event.date;
    const ids = event.payload.ids ?? [];
    console.log(event.type, ids.length, when.getTime());
  },
});
refine.unsubscribe(handle);

async function publishes(): Promise<number> {
  try {
    const { seq } = await provider.publish({ channel: "resources/posts", type: "updated", payload: { ids: [1] }, date: new Date() });
    return seq;
  } catch (e) {
    const error = e as LivePublishError;
    return error.code === "timeout" ? -1 : -2;
  }
}
void publishes();

const client = createLiveClient({ url: "wss://example.test/ws", publishTimeoutMs: 5000, maxFrameBytes: 256 * 1024 });
const stop = client.subscribe("notifications", ["created"], undefined, (e) => console.log(e.payload));
stop();
const state: string = client.state;
console.log(state, client.subscriptionCount);
client.close();

// Ginjou's Realtime contract (contracts.md §2): `subscribe` returns a string key (ginjou.ts checks the exact types).
import { realtime } from "wasm-live-provider";
type GinjouRealtime = {
  subscribe: (props: {
    channel: string;
    actions: string[];
    callback: (event: { channel: string; action: string; payload: unknown; date: Date; meta?: unknown }) => void;
    params?: { type: "list"; resource: string } | { type: "one"; resource: string; id: string | number } | Record<string, any>;
  }) => string | (() => void);
  unsubscribe?: (key: any) => void;
  publish?: (event: { channel: string; action: string; payload: unknown; date: Date }) => void;
};
const ginjou: GinjouRealtime = realtime({ url: "ws://127.0.0.1:8787/ws" });
const key = ginjou.subscribe({ channel: "resources/posts", actions: ["updated"], params: { type: "one", resource: "posts", id: 3 }, callback: (e) => console.log(e.action) });
ginjou.unsubscribe?.(key);

// The adapters.
import { useConnectionState as useReactState, useLiveEvent, useLiveInvalidation } from "wasm-live-provider/react";
import { useConnectionState as useVueState, useLiveInvalidation as useVueInvalidation } from "wasm-live-provider/vue";
declare const queryClient: { invalidateQueries(filters: { queryKey: readonly unknown[] }): Promise<void> };
export function ReactComponent(): string {
  const { state, delayMs } = useReactState(provider);
  useLiveEvent(provider, { channel: "resources/posts", ids: [1] }, (e) => console.log(e.type));
  useLiveInvalidation(provider, queryClient, { channel: "resources/posts", queryKey: ["posts"] });
  useLiveInvalidation(provider, queryClient, {
    channel: "resources/posts",
    queryKeys: (e) => [["posts", "list"], ...(e.payload.ids ?? []).map((id) => ["posts", "one", id])],
  });
  return `${state} ${delayMs ?? ""}`;
}
export function vueSetup(): string {
  const state = useVueState(realtime({ url: "ws://127.0.0.1:8787/ws" }));
  useVueInvalidation(client, queryClient, { channel: () => "resources/posts", queryKey: ["posts"] });
  return state.value.state;
}

// Server-Sent Events, scopes, revalidation.
import { isRevalidated } from "wasm-live-provider";
import { useRevalidation } from "wasm-live-provider/react";
const sse = liveProvider({ url: "http://127.0.0.1:8787/sse", transport: "sse", scopes: ["user:42"] });
const stopRevalidate = sse.onRevalidate((keys) => console.log(keys === null ? "all" : isRevalidated(keys, ["posts", "list"])));
stopRevalidate();
const auto = createLiveClient({ url: "ws://127.0.0.1:8787/ws", transport: "auto" });
const igniter = createLiveClient({ url: "http://127.0.0.1:3000/api/v1/sse/events", transport: "sse", flavor: "igniter" });
console.log(auto.state, igniter.state);
// The seed's minimal WebSocket protocol: publish resolves with { seq: 0 } once sent.
const seedServer = realtime({ url: "wss://ws.example.test", protocol: "simple" });
void seedServer.publish({ channel: "resources/posts", action: "created", payload: { ids: [1] } }).then(({ seq }: { seq: number }) => seq);
// @ts-expect-error the protocol is "v1" or "simple"
createLiveClient({ url: "ws://127.0.0.1:8787/ws", protocol: "v2" });
export function RevalidatingComponent(): null {
  useRevalidation(sse, queryClient);
  return null;
}

// Authentication: a fixed token or a getter; forbidden subscriptions show in the handle's state.
import type { LiveProviderError, SubscriptionState } from "wasm-live-provider";
const authed = liveProvider({
  url: "wss://relay.example.test/ws",
  getToken: async () => (await fetch("/api/live-token")).text(),
  onError: (e) => {
    const error = e as LiveProviderError;
    if (error.code === "forbidden") console.warn(`no access to ${error.channel ?? "?"}`);
  },
});
const secret = authed.subscribe({ channel: "secret/x", types: ["*"], callback: () => {} });
const secretState: SubscriptionState = secret.state;
console.log(secretState === "forbidden");
createLiveClient({ url: "http://127.0.0.1:8787/sse", transport: "sse", token: "eyJ..." }).close();
realtime({ url: "ws://127.0.0.1:8787/ws", getToken: () => "static-token" }).close();
const ginjouLive = realtime({ url: "ws://127.0.0.1:8787/ws" });
const ginjouKey: string = ginjouLive.subscribe({ channel: "c", actions: ["*"], callback: () => {} });
const ginjouState: SubscriptionState = ginjouLive.subscriptionState(ginjouKey);
console.log(ginjouState, (e: LivePublishError) => e.relayCode);

// A relay cluster: several URLs (one per node), tried in turn; `stats.url` names the one in use.
const nodes = ["wss://a.relay.example.test/ws", "wss://b.relay.example.test/ws"] as const;
const cluster = liveProvider({
  url: nodes,
  onStateChange: (s) => s.state === "open" && console.log(`live via ${cluster.stats.url}`),
});
const relayInUse: string = cluster.stats.url;
console.log(relayInUse);
const clusterRefine: RefineLiveProvider = cluster;
console.log(clusterRefine.subscribe.length);
createLiveClient({
  url: ["ws://a.example.test/ws", "ws://b.example.test/ws"],
  transport: "auto",
  sseUrl: ["http://a.example.test/sse", "http://b.example.test/sse"],
  publishUrl: ["http://a.example.test/publish", "http://b.example.test/publish"],
}).close();
realtime({ url: ["ws://a.example.test/ws", "ws://b.example.test/ws"], getToken: () => "t" }).close();
export function ClusterBadge(): string {
  const { state } = useReactState(cluster);
  return `${state} via ${cluster.stats.url}`;
}
// @ts-expect-error a relay URL is a string
liveProvider({ url: ["ws://a.example.test/ws", 8787] });

// Coalescing of event bursts (issue 13, item 2): a client-wide window, one subscription's own, the
// trailing event's meta, the saved callbacks, and the adapters' window.
import { INVALIDATION_COALESCE_MS } from "wasm-live-provider/react";
import { useLiveEvent as useVueLiveEvent, INVALIDATION_COALESCE_MS as VUE_COALESCE_MS } from "wasm-live-provider/vue";
const coalescing = liveProvider({ url: "ws://127.0.0.1:8787/ws", coalesceMs: 250 });
realtime({ url: "ws://127.0.0.1:8787/ws", coalesceMs: 0 }).close();
const everyEvent = createLiveClient({ url: "ws://127.0.0.1:8787/ws", coalesceMs: 100 });
everyEvent.subscribe("resources/posts", ["*"], [2], (e: LiveEvent) => {
  const merged: number | undefined = e.meta?.coalesced;
  const touched: Array<string | number> | undefined = e.meta?.ids;
  console.log(merged, touched, e.payload.ids);
}, { coalesceMs: 0 });
const saved: number = coalescing.stats.coalesced;
console.log(saved, INVALIDATION_COALESCE_MS + VUE_COALESCE_MS);
export function CoalescedInvalidation(): null {
  useLiveInvalidation(coalescing, queryClient, { channel: "resources/posts", queryKey: ["posts"], coalesceMs: 500 });
  useLiveEvent(coalescing, { channel: "resources/posts", coalesceMs: 0 }, (e) => console.log(e.meta?.coalesced));
  return null;
}
export function vueCoalescing(): void {
  useVueInvalidation(client, queryClient, { channel: "resources/posts", queryKey: ["posts"], coalesceMs: () => 1000 });
  useVueLiveEvent(client, { channel: "resources/posts", coalesceMs: 0 }, (e) => console.log(e.meta?.ids));
}
// @ts-expect-error coalesceMs is a number of milliseconds
liveProvider({ url: "ws://127.0.0.1:8787/ws", coalesceMs: "250" });

// What the adapters refuse in the hook's own call (tests/adapters) the types refuse too.
export function NotProviders(): null {
  // @ts-expect-error the factory itself, not what it returns
  useRevalidation(liveProvider, queryClient);
  // @ts-expect-error no provider
  useReactState(undefined);
  // @ts-expect-error a plain object is no provider
  useLiveEvent({}, { channel: "resources/posts" }, () => {});
  // @ts-expect-error a URL is no provider
  useVueState("ws://127.0.0.1:8787/ws");
  // @ts-expect-error the realtime factory itself
  useVueLiveEvent(realtime, { channel: "resources/posts" }, () => {});
  return null;
}
