// The page of bench/postgres: this package's liveProvider (pkg/), as a Refine app creates it,
// subscribed to one resource; each event's receipt time on the machine's wall clock (same clock as
// the writer's commit time: performance.timeOrigin + performance.now() in both processes).
import { ours, refineOptions } from "../lib/contenders.mjs";

window.received = [];
window.start = async (wsUrl, channel) => {
  const provider = await ours(wsUrl);
  provider.subscribe(
    refineOptions({ channel }, (event) => {
      const at = performance.timeOrigin + performance.now();
      for (const id of event.payload?.ids ?? []) window.received.push([String(id), at]);
    }),
  );
  await provider.ready();
};
window.benchReady = true;
