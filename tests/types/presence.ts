// Presence as the README shows it, under `tsc --strict`: the client's handle, the React hook and the
// Vue composable, with what each returns.
import { createLiveClient, liveProvider, realtime, type Presence, type PresenceStatus, type PresenceUser } from "wasm-live-provider";
import { usePresence as useReactPresence } from "wasm-live-provider/react";
import { usePresence as useVuePresence } from "wasm-live-provider/vue";
import { ref } from "vue";

const client = createLiveClient({ url: "ws://127.0.0.1:8787/ws" });
const p: Presence = client.presence("resources/posts", { data: { id: 3, mode: "edit" }, user: "42", info: { name: "Alice" } });
const watcher = client.presence("resources/posts", { watchOnly: true });
const status: PresenceStatus = p.status;
const stop: () => void = p.onChange((members, handle) => {
  for (const u of members) {
    const name = typeof u.info?.name === "string" ? u.info.name : u.user;
    console.log(name, u.connections, u.self, u.data.id, u.members.length, handle.status);
  }
});
p.update({ id: 3, mode: "view" });
const me: PresenceUser | null = p.self;
console.log(status, me?.user, watcher.stats?.users ?? 0, p.members.length, p.channel);
stop();
p.leave();
// @ts-expect-error data must be an object
client.presence("resources/posts", { data: 3 });
// @ts-expect-error a status this package never reports
const wrong: PresenceStatus = "online";

// React: the hook's promised signature, with a Refine provider.
const provider = liveProvider({ url: "ws://127.0.0.1:8787/ws" });
export function EditBanner({ id }: { id: number }): string {
  const { others, self, count, status } = useReactPresence(provider, { resource: "posts", id, data: { mode: "edit" } });
  const editing = others.filter((u) => u.data.mode === "edit").map((u) => u.user);
  return `${status} ${count} ${self?.user ?? "-"} ${editing.join(", ")}`;
}
useReactPresence(provider, { resource: "posts", enabled: false, channel: "resources/posts/3" });
// @ts-expect-error id is a record key
useReactPresence(provider, { resource: "posts", id: { a: 1 } });

// Vue: refs in, shallow refs out, with Ginjou's realtime.
const rt = realtime({ url: "ws://127.0.0.1:8787/ws" });
const id = ref<number | undefined>(3);
const vue = useVuePresence(rt, { resource: "posts", id, data: () => ({ mode: "edit" }) });
const users: ReadonlyArray<PresenceUser> = vue.others.value;
const n: number = vue.count.value;
const s: PresenceStatus = vue.status.value;
console.log(users.length, n, s, vue.self.value?.connections, wrong);
