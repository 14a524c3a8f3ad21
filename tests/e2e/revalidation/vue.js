// The Vue page: two apps, each with its own realtime (Ginjou's shape; scopes user:a, user:b) and
// QueryClient, the queries of keys.js mounted with useQuery and useRevalidation in a child that can be
// unmounted (its effect scope disposed).
import { createApp, defineComponent, h, ref } from "vue";
import { QueryClient, VueQueryPlugin, useQuery } from "@tanstack/vue-query";
import { realtime } from "wasm-live-provider";
import { useConnectionState, useRevalidation } from "wasm-live-provider/vue";
import { QUERY_KEYS, keyName, exposePage, countingQueryFn, relayUrl, queryDefaults } from "./keys.js";

const page = exposePage();

for (const app of ["a", "b"]) {
  const live = realtime({ url: relayUrl(), scopes: [`user:${app}`] });
  const queryClient = new QueryClient({ defaultOptions: queryDefaults });

  const Query = defineComponent({
    props: { index: { type: Number, required: true } },
    setup(props) {
      const queryKey = QUERY_KEYS[props.index];
      const { data } = useQuery({ queryKey, queryFn: countingQueryFn(page, app, queryKey) });
      return () => h("li", `${keyName(queryKey)}: ${data.value ?? "…"}`);
    },
  });
  const Revalidator = defineComponent({
    setup() {
      useRevalidation(live, queryClient);
      return () => h("p", "revalidating");
    },
  });
  const App = defineComponent({
    setup() {
      const on = ref(true);
      page.switches[app] = (value) => (on.value = value);
      const state = useConnectionState(live);
      return () => {
        page.states[app] = state.value.state;
        return h("section", [
          h("h2", `app ${app}: ${state.value.state}`),
          on.value ? h(Revalidator) : null,
          h("ul", QUERY_KEYS.map((_, index) => h(Query, { key: index, index }))),
        ]);
      };
    },
  });
  const element = document.body.appendChild(document.createElement("div"));
  createApp(App).use(VueQueryPlugin, { queryClient }).mount(element);
}
