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

const client = createLiveClient({ url: "wss://example.test/ws", publishTimeoutMs: 5000 });
const stop = client.subscribe("notifications", ["created"], undefined, (e) => console.log(e.payload));
stop();
const state: string = client.state;
console.log(state, client.subscriptionCount);
client.close();
