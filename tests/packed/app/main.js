// A fresh Vite app that installed the packed tarball. It drives `liveProvider` exactly the way
// Refine's hooks do (see ../../../../shared/reference/contracts.md §1), then `realtime` the way Ginjou
// does (§2: a string key, handed back to `unsubscribe`), and reports what happened.
import { liveProvider, realtime } from "wasm-live-provider";

const url = `ws://${location.host}/ws`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, cond, ms = 5000) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function thrown(fn) {
  try {
    fn();
    return null;
  } catch (e) {
    return { name: e.name, message: e.message };
  }
}

window.runScenario = async () => {
  const report = {};
  const channel = `resources/posts-${Math.random().toString(36).slice(2)}`;
  const editor = liveProvider({ url });
  const viewer = liveProvider({ url });
  report.stateBeforeLoad = viewer.state;

  const seen = { list: [], one2: [], many: [], removed: [], v4: [] };
  // useList: no ids.
  const list = viewer.subscribe({
    channel,
    types: ["*"],
    params: { resource: "posts", pagination: { current: 1, pageSize: 10 }, subscriptionType: "useList" },
    callback: (e) => seen.list.push(e),
  });
  // useOne: ids: [id] and id.
  const one2 = viewer.subscribe({
    channel,
    types: ["*"],
    params: { resource: "posts", ids: [2], id: 2, subscriptionType: "useOne" },
    callback: (e) => seen.one2.push(e),
  });
  // useMany with string ids.
  const many = viewer.subscribe({
    channel,
    types: ["*"],
    params: { resource: "posts", ids: ["5", "6"], subscriptionType: "useMany" },
    callback: (e) => seen.many.push(e),
  });
  // Refine v4's option shape: `dataProviderName` beside the options, `metaData` in params.
  const v4 = viewer.subscribe({
    channel,
    types: ["*"],
    params: { ids: [2], id: 2, metaData: {}, subscriptionType: "useOne" },
    callback: (e) => seen.v4.push(e),
    dataProviderName: "default",
  });
  const removed = viewer.subscribe({ channel, types: ["*"], callback: (e) => seen.removed.push(e) });
  report.handleIsFunction = typeof list === "function";
  report.subscribedBeforeLoad = report.stateBeforeLoad === "loading";

  await until("the viewer to connect", () => viewer.state === "open");
  viewer.unsubscribe(removed);
  await sleep(100);

  // What Refine's mutation hooks publish.
  const meta = { dataProviderName: "default" };
  const acks = [];
  acks.push(await editor.publish({ channel, type: "created", payload: { ids: [9] }, date: new Date(), meta }));
  acks.push(await editor.publish({ channel, type: "updated", payload: { ids: [3] }, date: new Date(), meta }));
  acks.push(await editor.publish({ channel, type: "updated", payload: { ids: ["2"] }, date: new Date(), meta }));
  acks.push(await editor.publish({ channel, type: "deleted", payload: { ids: ["6", "7"] }, date: new Date(), meta }));
  report.acks = acks.map((a) => a.seq);

  await until("the list to see all four events", () => seen.list.length === 4);
  await sleep(100);
  const kinds = (events) => events.map((e) => `${e.type}:${e.payload.ids.join(",")}`);
  report.list = kinds(seen.list);
  report.one2 = kinds(seen.one2);
  report.many = kinds(seen.many);
  report.v4 = kinds(seen.v4);
  viewer.unsubscribe(v4);
  report.removed = seen.removed.length;
  report.dateIsDate = seen.list.every((e) => e.date instanceof Date);
  report.meta = seen.list[0].meta;

  // Refine hands subscribe's return value back to unsubscribe.
  const total = () => seen.list.length + seen.one2.length + seen.many.length;
  report.beforeUnsubscribe = total();
  viewer.unsubscribe(list);
  viewer.unsubscribe(one2);
  many();
  await editor.publish({ channel, type: "updated", payload: { ids: [2] } });
  await sleep(100);
  report.afterUnsubscribe = total();

  // A relay cluster given as several URLs: nothing listens at the first (the test names a closed
  // port in `?closed=`), so the client fails over to the second.
  const closed = `ws://127.0.0.1:${new URLSearchParams(location.search).get("closed")}/ws`;
  const cluster = liveProvider({ url: [closed, url], backoffMinMs: 20 });
  const clustered = [];
  cluster.subscribe({ channel, types: ["*"], callback: (e) => clustered.push(e) });
  await until("the cluster provider to connect through its second URL", () => cluster.state === "open");
  report.clusterUrl = cluster.stats.url;
  await editor.publish({ channel, type: "updated", payload: { ids: [4] } });
  await until("the cluster provider to receive", () => clustered.length === 1);
  report.clustered = kinds(clustered);
  cluster.close();

  // Ginjou: `subscribe` returns a string key at once; Ginjou hands exactly that value to `unsubscribe`.
  const ginjou = realtime({ url });
  const got = { one: [], list: [] };
  const oneKey = ginjou.subscribe({
    channel,
    actions: ["*"],
    params: { type: "one", resource: "posts", id: 2 },
    callback: (e) => got.one.push(`${e.action}:${e.payload.ids.join(",")}`),
  });
  const listKey = ginjou.subscribe({
    channel,
    actions: ["updated"],
    params: { type: "list", resource: "posts" },
    callback: (e) => got.list.push(`${e.action}:${e.payload.ids.join(",")}`),
  });
  report.ginjouKeys = [typeof oneKey, typeof listKey, oneKey !== listKey, /^wlp:\d+$/.test(oneKey), /^wlp:\d+$/.test(listKey)];
  await until("the Ginjou provider to subscribe", () => ginjou.subscriptionState(oneKey) === "subscribed" && ginjou.subscriptionState(listKey) === "subscribed");
  await editor.publish({ channel, type: "updated", payload: { ids: [2] } });
  await until("both Ginjou callbacks to receive", () => got.one.length === 1 && got.list.length === 1);
  ginjou.unsubscribe(oneKey);
  report.ginjouStateAfter = ginjou.subscriptionState(oneKey);
  report.ginjouNoops = thrown(() => {
    ginjou.unsubscribe(oneKey); // a double unsubscribe, as a re-subscribing hook may do
    ginjou.unsubscribe("nonsense");
    ginjou.unsubscribe(undefined);
  });
  await editor.publish({ channel, type: "updated", payload: { ids: [2] } });
  await until("the remaining Ginjou subscription to receive", () => got.list.length === 2);
  await sleep(100);
  report.ginjouOne = got.one;
  report.ginjouList = got.list;
  report.ginjouCount = ginjou.client.subscriptionCount;
  ginjou.unsubscribe(listKey);
  report.ginjouCountAfter = ginjou.client.subscriptionCount;
  ginjou.close();

  // Server-Sent Events need the package's full build: its module and wasm are fetched only now.
  const wasmFetched = () => performance.getEntriesByType("resource").filter((e) => new URL(e.name).pathname.endsWith(".wasm")).length;
  report.wasmBeforeSse = wasmFetched();
  const sse = liveProvider({ url: `${location.protocol}//${location.host}/sse`, transport: "sse" });
  const streamed = [];
  const streaming = sse.subscribe({ channel, types: ["*"], callback: (e) => streamed.push(e) });
  await until("the SSE provider to subscribe", () => streaming.state === "subscribed");
  await editor.publish({ channel, type: "updated", payload: { ids: [8] } });
  await until("the SSE provider to receive", () => streamed.length === 1);
  report.streamed = kinds(streamed);
  report.wasmAfterSse = wasmFetched();
  sse.close();

  report.errors = {
    url: thrown(() => liveProvider({ url: "http://example.test" })),
    urlIndex: thrown(() => liveProvider({ url: [url, "http://example.test"] })),
    sseUrlLength: thrown(() => liveProvider({ url: [url, url], sseUrl: "http://example.test/sse" })),
    channel: thrown(() => viewer.subscribe({ channel: "", types: ["*"], callback() {} })),
    ids: thrown(() => viewer.subscribe({ channel, types: ["*"], params: { ids: [{}] }, callback() {} })),
    callback: thrown(() => viewer.subscribe({ channel, types: ["*"] })),
    payload: thrown(() => editor.publish({ channel, type: "x", payload: { big: 1n } })),
  };
  editor.close();
  viewer.close();
  document.getElementById("status").textContent = "done";
  return report;
};
