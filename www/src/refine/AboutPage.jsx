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
    </>
  );
}
