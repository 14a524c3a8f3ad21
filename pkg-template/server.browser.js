// What `wasm-live-provider/server` resolves to in browser code (the `browser` and `default` export
// conditions): the real helper (server.js) holds the relay's API key and token secret, so it must never
// be bundled into a page. Importing this module throws; its exports, for bundlers that check names,
// throw the same error.
const message =
  "wasm-live-provider/server runs on a server (Node ≥ 20): it holds your API key and secret; import it from your backend, not from browser code";

const refuse = () => {
  throw new Error(message);
};
export const createRelayClient = refuse;
export class RelayError extends Error {
  constructor() {
    super(message);
  }
}

refuse();
