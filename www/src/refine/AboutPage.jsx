export function AboutPage() {
  return (
    <>
      <h1>About</h1>
      <p>
        This page has no live data: arriving here unmounts the list, detail or form page and the event log, which
        unsubscribe; with no subscription left on <code>resources/posts</code>, the relay is told to stop sending it.
      </p>
      <p>
        Every live event of the other pages travels over one WebSocket to <code>live-relay</code>; the filtering by
        event type and record id happens in Rust compiled to WebAssembly.
      </p>
      <h2>A network blip</h2>
      <p>
        <b>Cut every connection</b> asks the relay (<code>POST /demo/cut</code>, demo mode only) to drop every
        WebSocket and event stream at once, without a close frame, as a flaky network would. Each window waits its
        backoff (the badge counts it down), reconnects, and resubscribes from the last event it got (<code>since</code>):
        the relay replays what it missed, in order, once. <b>Cut during 20 edits</b> does it in the middle of a burst.
      </p>
      <p>
        The counters beside the event log are the client's <code>stats</code>: events delivered, replayed after a cut,
        resyncs (one blind refetch per subscription when the relay could not replay), duplicates dropped, and
        refetches saved by coalescing.
      </p>
      <pre data-testid="curl-cut">{`curl -X POST ${location.origin}/demo/cut`}</pre>
      <h2>Authentication</h2>
      <p>
        The relay checks tokens, as in production. This page's <code>getToken</code> asks{" "}
        <code>GET /demo/token?name=…</code> for a 60-second token of this tab's user (its name, picked at random
        and kept in sessionStorage, is the token's <code>sub</code> and its <code>info</code> claim: who presence
        shows) (channels{" "}
        <code>resources/*</code>, <code>demo/*</code> and <code>$revalidate</code>; publishing on <code>demo/*</code>),
        sends it in the connection's first frame and refreshes it on the open connection before it expires. A real app
        gets its tokens from its own backend.
      </p>
      <p>A backend publishes over HTTP with an API key (the demo's is <code>demo-publish-key</code>):</p>
      <pre data-testid="curl-publish">{`curl -X POST ${location.origin}/publish \\
  -H 'authorization: Bearer demo-publish-key' -H 'content-type: application/json' \\
  -d '{"channel":"resources/posts","type":"updated","payload":{"ids":[1]}}'`}</pre>
      <p>
        The demo REST API needs no key: <code>/api/posts</code> publishes its own changes.
      </p>
    </>
  );
}
