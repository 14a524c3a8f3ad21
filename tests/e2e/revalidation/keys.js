// The queries both pages show, and how a page counts the calls of their query functions.
export const QUERY_KEYS = [
  ["posts"],
  ["posts", 1],
  ["posts", { page: 2, sort: "asc" }],
  ["users"],
  ["users", { id: 7, tab: "profile" }],
  ["users", { id: 8 }],
  ["comments", { post: 1 }],
];

/** The name a query's count is kept under. */
export const keyName = (key) => JSON.stringify(key);

/**
 * `window.revalidationPage`, read by tests/e2e/revalidation.test.mjs: per app ("a", "b"), its calls of
 * each query function (`fetches`), its connection state and a switch that mounts or unmounts the
 * component calling `useRevalidation` while the queries stay mounted.
 */
export function exposePage() {
  const page = { fetches: {}, states: {}, switches: {} };
  page.setRevalidation = (app, on) => page.switches[app](on);
  window.revalidationPage = page;
  return page;
}

/** The query function of `key` in `app`: counts its call and answers the count. */
export const countingQueryFn = (page, app, key) => async () => {
  const counts = (page.fetches[app] ??= {});
  counts[keyName(key)] = (counts[keyName(key)] ?? 0) + 1;
  return counts[keyName(key)];
};

/** The relay's WebSocket URL, next to the page. */
export const relayUrl = () => `ws://${location.host}/ws`;

/** TanStack Query options that refetch only when invalidated. */
export const queryDefaults = { queries: { retry: false, refetchOnWindowFocus: false, refetchOnReconnect: false } };
