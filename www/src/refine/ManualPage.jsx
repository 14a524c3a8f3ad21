import { useState } from "react";
import { useList } from "@refinedev/core";

/** `liveMode: "manual"`: events reach `onLiveEvent`, and nothing is refetched. */
export function ManualPage() {
  const [events, setEvents] = useState([]);
  const { result } = useList({
    resource: "posts",
    pagination: { currentPage: 1, pageSize: 5 },
    sorters: [{ field: "id", order: "desc" }],
    liveMode: "manual",
    onLiveEvent: (event) => setEvents((list) => [event, ...list]),
  });
  return (
    <>
      <h1>Manual mode</h1>
      <p className="muted">
        This list does not refetch by itself: the events below arrived through <code>onLiveEvent</code>.{" "}
        {events.length > 0 && <button onClick={() => window.location.reload()}>Reload to see them</button>}
      </p>
      <ul data-testid="manual-list">
        {result.data.map((p) => (
          <li key={p.id}>{p.title}</li>
        ))}
      </ul>
      <h2>{events.length} events received</h2>
      <ol className="log" data-testid="manual-events">
        {events.map((e, i) => (
          <li key={events.length - i}>
            {e.type} {e.payload.ids?.join(", ")}
          </li>
        ))}
      </ol>
    </>
  );
}
