// Ginjou's own `Realtime` types, copied from its source as ../../../shared/reference/contracts.md §2
// states them (packages/core/src/realtime/realtime.ts, @ginjou/core 0.1.0-beta.22), so that the check
// does not need Ginjou installed. `realtime({ url })` must be assignable to `Realtime` with no cast.
import { realtime } from "wasm-live-provider";

type RecordKey = string | number;
type Meta = Record<string, any>;
interface RealtimeEvent<P = unknown> {
  channel: string;
  action: "*" | "created" | "updated" | "deleted" | string;
  payload: P;
  date: Date;
  meta?: Meta;
}
interface SubscribeProps {
  channel: string;
  actions: string[];
  callback: (event: RealtimeEvent) => void;
  params?:
    | { type: "list"; resource: string; pagination?: unknown; sorters?: unknown; filters?: unknown; meta?: Meta }
    | { type: "one"; resource: string; id: RecordKey; meta?: Meta }
    | { type: "many"; resource: string; ids: RecordKey[]; meta?: Meta }
    | Record<string, any>;
  meta?: Meta;
}
type UnsubscribeKey = string;
interface Realtime {
  subscribe: (props: SubscribeProps) => UnsubscribeKey;
  unsubscribe?: (key: UnsubscribeKey) => void;
  publish?: (event: RealtimeEvent) => void;
}

// What Ginjou's `defineRealtimeContext` takes: a `Realtime`, no cast.
function defineRealtimeContext(value: Realtime): Realtime {
  return value;
}
const ginjou = defineRealtimeContext(realtime({ url: "ws://127.0.0.1:8787/ws" }));
const direct: Realtime = realtime({ url: ["ws://a.example.test/ws", "ws://b.example.test/ws"] });

// Ginjou stores the key and hands exactly that value back to `unsubscribe`.
const key: UnsubscribeKey = ginjou.subscribe({
  channel: "resources/posts",
  actions: ["updated"],
  params: { type: "one", resource: "posts", id: 3 },
  callback: (event) => console.log(event.action, event.date.getTime()),
});
ginjou.unsubscribe?.(key);
direct.publish?.({ channel: "resources/posts", action: "created", payload: { ids: [1] }, date: new Date() });
