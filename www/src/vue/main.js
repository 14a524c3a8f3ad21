// The Vue demo: TanStack Vue Query, the package's Vue adapter, and the Ginjou-shaped provider.
import { computed, createApp, defineComponent, h, ref } from "vue";
import { QueryClient, VueQueryPlugin, useQuery, useQueryClient } from "@tanstack/vue-query";
import { useConnectionState, useLiveEvent, useLiveInvalidation } from "wasm-live-provider/vue";
import { createVueLive } from "../live.js";
import { useSubscribe } from "./ginjou-wiring.js";

const live = createVueLive();
window.__live = live;

async function api(path) {
  const response = await fetch(`/api/${path}`);
  if (!response.ok) throw new Error(`GET /api/${path}: ${response.status}`);
  return response.json();
}

const Badge = defineComponent(() => {
  const connection = useConnectionState(live);
  return () => h("span", { class: `badge ${connection.value.state}`, "data-testid": "connection" }, connection.value.state);
});

/** The list: a TanStack query invalidated by the Vue adapter on every event of `resources/posts`. */
const PostList = defineComponent({
  emits: ["select"],
  setup(_, { emit }) {
    const queryClient = useQueryClient();
    const posts = useQuery({ queryKey: ["posts", "list"], queryFn: () => api("posts?_sort=id&_order=desc&_start=0&_end=20") });
    useLiveInvalidation(live, queryClient, { channel: "resources/posts", queryKey: ["posts", "list"] });
    return () =>
      h("table", { "data-testid": "vue-posts" }, [
        h("tbody", (posts.data.value ?? []).map((p) =>
          h("tr", { key: p.id, "data-testid": `vue-post-${p.id}` }, [
            h("td", p.id),
            h("td", h("a", { href: "#", onClick: (e) => (e.preventDefault(), emit("select", p.id)) }, p.title)),
            h("td", p.status),
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
        h("p", { class: "muted", "data-testid": "vue-detail-fetches" }, `fetched ${fetches.value} times`),
      ]);
  },
});

const EventLog = defineComponent(() => {
  const events = ref([]);
  useLiveEvent(live, { channel: "resources/posts" }, (e) => {
    events.value = [e, ...events.value].slice(0, 50);
  });
  return () =>
    h("aside", { class: "card" }, [
      h("h2", "Live events"),
      h("ol", { class: "log", "data-testid": "vue-event-log" }, events.value.map((e, i) =>
        h("li", { key: events.value.length - i }, [h("b", e.type), ` ${e.payload.ids?.join(", ") ?? ""}`]),
      )),
    ]);
});

const App = defineComponent(() => {
  const selected = ref(1);
  return () => [
    h("header", [h("b", "wasm-live-provider · Vue"), h("a", { href: "/" }, "Refine app"), h("span", { class: "spacer" }), h(Badge)]),
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
