// The React page: two apps, each with its own liveProvider (scopes user:a, user:b) and QueryClient, the
// queries of keys.js mounted with useQuery and useRevalidation in a child that can be unmounted.
import { createElement as h, useState } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider, useQuery } from "@tanstack/react-query";
import { liveProvider } from "wasm-live-provider";
import { useConnectionState, useRevalidation } from "wasm-live-provider/react";
import { QUERY_KEYS, keyName, exposePage, countingQueryFn, relayUrl, queryDefaults } from "./keys.js";

const page = exposePage();

function Query({ app, queryKey }) {
  const { data } = useQuery({ queryKey, queryFn: countingQueryFn(page, app, queryKey) });
  return h("li", null, `${keyName(queryKey)}: ${data ?? "…"}`);
}

function Revalidator({ live, queryClient }) {
  useRevalidation(live, queryClient);
  return h("p", null, "revalidating");
}

function App({ app, live, queryClient }) {
  const [on, setOn] = useState(true);
  page.switches[app] = setOn;
  page.states[app] = useConnectionState(live).state;
  return h(
    "section",
    null,
    h("h2", null, `app ${app}: ${page.states[app]}`),
    on ? h(Revalidator, { live, queryClient }) : null,
    h("ul", null, QUERY_KEYS.map((key) => h(Query, { key: keyName(key), app, queryKey: key }))),
  );
}

for (const app of ["a", "b"]) {
  const live = liveProvider({ url: relayUrl(), scopes: [`user:${app}`] });
  const queryClient = new QueryClient({ defaultOptions: queryDefaults });
  const element = document.body.appendChild(document.createElement("div"));
  createRoot(element).render(h(QueryClientProvider, { client: queryClient }, h(App, { app, live, queryClient })));
}
