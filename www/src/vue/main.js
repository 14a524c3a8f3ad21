// The Vue demo: TanStack Vue Query, the package's Vue adapter, and the Ginjou-shaped provider.
import { computed, createApp, defineComponent, h, onScopeDispose, ref, unref, watch } from "vue";
import { QueryClient, VueQueryPlugin, useQuery, useQueryClient } from "@tanstack/vue-query";
import { useConnectionState, useLiveEvent, useLiveInvalidation, usePresence } from "wasm-live-provider/vue";
import { createVueLive } from "../live.js";
import { useSubscribe } from "./ginjou-wiring.js";
import { alsoHereText, byPost, colourOf, connectionsOf, initials, myName, nameOf, placesOf } from "../who.js";
import { badgeText, countersOf, cutDuringBurst, cutEveryConnection, replayTracker, stateNote } from "../cut.js";

const live = createVueLive();
window.__live = live;

async function api(path) {
  const response = await fetch(`/api/${path}`);
  if (!response.ok) throw new Error(`GET /api/${path}: ${response.status}`);
  return response.json();
}

/** The connection state; while reconnecting, a countdown to the next attempt. */
const Badge = defineComponent(() => {
  const connection = useConnectionState(live);
  const deadline = ref(null);
  const now = ref(performance.now());
  let timer = null;
  watch(
    connection,
    (change) => {
      clearInterval(timer);
      const counting = change.state === "reconnecting" && change.delayMs != null;
      deadline.value = counting ? performance.now() + change.delayMs : null;
      if (counting) timer = setInterval(() => (now.value = performance.now()), 100);
    },
    { immediate: true },
  );
  onScopeDispose(() => clearInterval(timer));
  return () =>
    h("span", { class: `badge ${connection.value.state}`, "data-testid": "connection" }, badgeText(connection.value, deadline.value, now.value));
});

/** The counters of the connection, read four times a second. */
const Counters = defineComponent(() => {
  const counters = ref(countersOf(live));
  const timer = setInterval(() => (counters.value = countersOf(live)), 250);
  onScopeDispose(() => clearInterval(timer));
  return () =>
    h("dl", { class: "counters", "data-testid": "counters" }, counters.value.map(([key, label, value]) =>
      h("div", { key }, [h("dt", label), h("dd", { "data-testid": `stat-${key}` }, value)]),
    ));
});

/** Cuts every connection at the relay, alone or in the middle of a burst of edits. */
const Blip = defineComponent(() => {
  const status = ref("");
  const busy = ref(false);
  const run = async (action) => {
    busy.value = true;
    try {
      await action();
    } catch (e) {
      status.value = e.message;
    } finally {
      busy.value = false;
    }
  };
  const cutAlone = () =>
    run(async () => (status.value = `cut ${await cutEveryConnection()} connections at ${new Date().toLocaleTimeString()}`));
  const cutInBurst = () => run(async () => (status.value = await cutDuringBurst(live, { onProgress: (text) => (status.value = text) })));
  return () =>
    h("div", { class: "blip" }, [
      h("button", { "data-testid": "cut-burst", disabled: busy.value, onClick: cutInBurst }, "Cut during 20 edits"),
      " ",
      h("button", { "data-testid": "cut", disabled: busy.value, onClick: cutAlone }, "Cut every connection"),
      h("p", { class: "muted", "data-testid": "cut-status" }, status.value || "Drops every live connection at the relay, like a network blip: nothing is lost."),
    ]);
});

/** A round avatar with a name's initials; `mode` "edit" gets a ring. */
const avatar = (name, mode) =>
  h("span", { class: `avatar${mode === "edit" ? " editing" : ""}`, style: { background: colourOf(name) }, title: name, "data-name": name }, initials(name));

/** A list row's avatars: the users on that post (none: nothing). */
const rowAvatars = (users) =>
  users?.length ? h("span", { class: "avatars", "data-testid": "vue-row-presence", "data-users": users.map((u) => u.name).join(",") }, users.map((u) => avatar(u.name, u.mode))) : null;

/** "Also here: …" for the selected post, joining its presence as a viewer (the Vue adapter's `usePresence`). */
const AlsoHere = defineComponent({
  props: { id: { type: Number, required: true } },
  setup(props) {
    const { others, status } = usePresence(live, { resource: "posts", id: computed(() => props.id), data: { mode: "view" } });
    return () => {
      const id = String(props.id);
      const here = (unref(others) ?? []).filter((e) => placesOf(e).some((p) => p.id === id) || placesOf(e).length === 0);
      return h("p", { class: "presence", "data-testid": "vue-also-here", "data-status": unref(status), "data-users": here.map(nameOf).join(","), "data-connections": here.map(connectionsOf).join(",") },
        here.length === 0
          ? [h("span", { class: "muted" }, "Nobody else is on this post.")]
          : [h("span", { class: "avatars" }, here.map((e) => avatar(nameOf(e), placesOf(e).find((p) => p.id === id)?.mode))), " Also here: ", h("b", alsoHereText(here, props.id))]);
    };
  },
});

/** The list: a TanStack query invalidated by the Vue adapter on every event of `resources/posts`. */
const PostList = defineComponent({
  emits: ["select"],
  setup(_, { emit }) {
    const queryClient = useQueryClient();
    const posts = useQuery({ queryKey: ["posts", "list"], queryFn: () => api("posts?_sort=id&_order=desc&_start=0&_end=20") });
    useLiveInvalidation(live, queryClient, { channel: "resources/posts", queryKey: ["posts", "list"] });
    // Who is on which post. This page is one member of `resources/posts` for both of its `usePresence`
    // (one membership per channel and client): the detail's, mounted after this one, sets the data.
    const presence = usePresence(live, { resource: "posts", data: { mode: "list" } });
    const onPost = computed(() => byPost(unref(presence.others)));
    return () =>
      h("table", { "data-testid": "vue-posts" }, [
        h("tbody", (posts.data.value ?? []).map((p) =>
          h("tr", { key: p.id, "data-testid": `vue-post-${p.id}` }, [
            h("td", p.id),
            h("td", h("a", { href: "#", onClick: (e) => (e.preventDefault(), emit("select", p.id)) }, p.title)),
            h("td", p.status),
            h("td", rowAvatars(onPost.value.get(String(p.id)))),
          ]),
        )),
      ]);
  },
});

/** One post, subscribed the way Ginjou's `useOne` does (`params: { type: "one", id }`). */
const PostDetail = defineComponent({
  props: { id: { type: Number, required: true } },
  setup(props) {
    const queryClient = useQueryClient();
    const fetches = ref(0);
    const post = useQuery({
      queryKey: computed(() => ["posts", "one", props.id]),
      queryFn: () => (fetches.value++, api(`posts/${props.id}`)),
    });
    useSubscribe(live, {
      channel: "resources/posts",
      params: computed(() => ({ type: "one", resource: "posts", id: props.id })),
      invalidate: () => queryClient.invalidateQueries({ queryKey: ["posts", "one", props.id] }),
    });
    return () =>
      h("div", [
        h("h2", { "data-testid": "vue-detail-title" }, post.data.value?.title ?? "…"),
        h(AlsoHere, { id: props.id }),
        h("p", { class: "muted", "data-testid": "vue-detail-fetches" }, `fetched ${fetches.value} times`),
      ]);
  },
});

const EventLog = defineComponent(() => {
  const events = ref([]);
  const add = (entry) => (events.value = [{ n: (events.value[0]?.n ?? 0) + 1, ...entry }, ...events.value].slice(0, 50));
  const tracker = replayTracker(live);
  // Every event, not coalesced, marked when it came back as a replay after a cut.
  useLiveEvent(live, { channel: "resources/posts", coalesceMs: 0 }, (e) => add({ event: e, replayed: tracker.replayed() }));
  // The connection lost and back, between the events.
  let lost = false;
  const stop = live.onStateChange((change) => {
    const note = stateNote(change, lost);
    if (change.state === "reconnecting") lost = true;
    if (change.state === "open") lost = false;
    if (note) add({ note });
  });
  onScopeDispose(stop);
  return () =>
    h("aside", { class: "card" }, [
      h("h2", "Network blip"),
      h(Blip),
      h(Counters),
      h("h2", "Live events"),
      h("ol", { class: "log", "data-testid": "vue-event-log" }, events.value.map(({ n, event: e, replayed, note }) =>
        note
          ? h("li", { key: n, class: "note" }, note)
          : h("li", { key: n }, [h("b", e.type), ` ${e.payload.ids?.join(", ") ?? ""}`, replayed ? h("span", { class: "tag" }, "replayed") : null]),
      )),
    ]);
});

const App = defineComponent(() => {
  const selected = ref(1);
  return () => [
    h("header", [h("b", "wasm-live-provider · Vue"), h("a", { href: "/" }, "Refine app"), h("span", { class: "spacer" }), h("span", { class: "me", "data-testid": "me" }, [avatar(myName), ` ${myName}`]), h(Badge)]),
    h("main", [
      h("section", { class: "card" }, [
        h("h1", "Posts"),
        h(PostList, { onSelect: (id) => (selected.value = id) }),
        h("hr"),
        h("p", { class: "muted" }, ["Selected post ", h("b", { "data-testid": "vue-selected" }, selected.value)]),
        h(PostDetail, { id: selected.value }),
      ]),
      h(EventLog),
    ]),
  ];
});

createApp(App).use(VueQueryPlugin, { queryClient: new QueryClient() }).mount("#app");
