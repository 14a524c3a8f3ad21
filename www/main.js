// The minimal demo: one provider, a subscription on the chosen channel, a publish form.
import { liveProvider } from "./pkg/index.js";

const $ = (id) => document.getElementById(id);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const showState = (name) => {
  $("state").textContent = name;
  $("state").className = `badge ${name}`;
};
const provider = liveProvider({
  url,
  onStateChange: (s) => showState(s.state === "reconnecting" ? `reconnecting in ${s.delayMs} ms` : s.state),
  onError: (e) => console.warn(e),
});
showState(provider.state);

let count = 0;
let subscription = null;
function subscribe() {
  if (subscription) provider.unsubscribe(subscription);
  const channel = $("publish").channel.value.trim();
  const ids = $("filter").value.split(",").map((s) => s.trim()).filter(Boolean);
  subscription = provider.subscribe({
    channel,
    types: ["*"],
    params: ids.length ? { ids } : {},
    callback: (event) => {
      const row = document.createElement("tr");
      row.className = "new";
      for (const text of [++count, event.date.toLocaleTimeString(), event.channel, event.type, JSON.stringify(event.payload)]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      $("log").prepend(row);
    },
  });
  $("curl").textContent =
    `curl -X POST ${location.origin}/publish -H 'content-type: application/json' ` +
    `-d '{"channel":"${channel}","type":"updated","payload":{"ids":[1],"title":"from curl"}}'`;
}
subscribe();
$("publish").channel.addEventListener("change", subscribe);
$("filter").addEventListener("change", subscribe);

$("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const payload = { ids: f.id.value ? [f.id.value] : undefined, title: f.title.value };
  try {
    await provider.publish({ channel: f.channel.value.trim(), type: f.type.value, payload, date: new Date() });
  } catch (error) {
    alert(`Publish failed: ${error.message}`);
  }
});
