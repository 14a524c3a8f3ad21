// One live connection for the whole page, to the relay that served it.
import { liveProvider, realtime } from "wasm-live-provider";

export const relayUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

/** For the Refine app. */
export const createRefineLive = () => liveProvider({ url: relayUrl, onError: (e) => console.warn(e.message) });

/** For the Vue app: the Ginjou-shaped provider (`actions`, `action`). */
export const createVueLive = () => realtime({ url: relayUrl, onError: (e) => console.warn(e.message) });
