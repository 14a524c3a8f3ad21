// What the React and Vue adapters (react.js, vue.js) check before they touch a client: the checks
// run in the hook's or composable's own call, so a wrong argument throws there, named, rather than
// as a raw TypeError from an effect, a watcher or an event later.
import { describe } from "./helpers.js";

export { describe };

// What the adapters call on a client; an object with all of them is one (`createLiveClient(...)`, or
// any object typed `LiveClient`), and so is the `client` of a `liveProvider(...)` or `realtime(...)`.
const CLIENT_METHODS = ["subscribe", "unsubscribe", "onStateChange", "onRevalidate"];

/** The client of `provider`, or a TypeError naming `where` and what was passed instead. */
export function clientOf(provider, where) {
  const client = provider !== null && typeof provider === "object" && "client" in provider ? provider.client : provider;
  const missing = CLIENT_METHODS.find((method) => typeof client?.[method] !== "function");
  if (missing === undefined) return client;
  throw new TypeError(
    `${where}: the first argument must be what liveProvider(), realtime() or createLiveClient() returns, got ${notAClient(provider, client, missing)}`,
  );
}

function notAClient(provider, client, missing) {
  if (typeof provider === "function") return "a function (the factory itself? pass what it returns, like liveProvider({ url }))";
  if (provider === null || typeof provider !== "object" || Array.isArray(provider)) return describe(provider);
  if (client === provider) return `an object with no \`client\` and no \`${missing}\` method`;
  if (client === null || typeof client !== "object") return `an object whose \`client\` is ${describe(client)}`;
  return `an object whose \`client\` has no \`${missing}\` method`;
}

export function checkQueryClient(queryClient, where) {
  if (typeof queryClient?.invalidateQueries !== "function") {
    throw new TypeError(`${where}: the second argument must be a TanStack Query client (with invalidateQueries), got ${describe(queryClient)}`);
  }
}

export function checkOptions(options, where, example) {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${where}: the options must be an object like ${example}, got ${describe(options)}`);
  }
}
