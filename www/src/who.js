// Who this window is, for presence ("Also here: Alice 4f"). The demo has no login: each tab names
// itself once, from a short list and a random suffix, and keeps the name in sessionStorage (a reload
// keeps it; a new tab gets another; a duplicated tab copies it: the same user in two tabs).
// `?as=<name>` in the page URL (before the `#`) sets the name, e.g. two tabs of one user.
// The relay's `GET /demo/token?name=…` mints a token whose `sub` is the name and whose `info` claim
// is `{ name }`: with authentication on (as `--demo` runs), the relay takes both from the token.

const NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Oscar", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Wendy"];
const KEY = "wlp-demo-name";
/** What the relay accepts as a demo user's name. */
export const NAME_PATTERN = /^[A-Za-z0-9 ._-]{1,32}$/;

/** A new name: one of the list and two hex digits (`Grace 7c`). */
export function randomName(random = Math.random) {
  const name = NAMES[Math.floor(random() * NAMES.length)];
  const suffix = Math.floor(random() * 256).toString(16).padStart(2, "0");
  return `${name} ${suffix}`;
}

/**
 * This tab's name: `?as=` when it is a valid name (kept for the tab), else the one kept in
 * sessionStorage, else a new one (kept). sessionStorage unavailable (a sandboxed frame): a new name
 * for this page load, with a warning.
 */
function resolveName() {
  const asked = new URLSearchParams(location.search).get("as");
  if (asked !== null && !NAME_PATTERN.test(asked)) {
    console.warn(`?as=${asked} is not a demo name (1 to 32 letters, digits, spaces, '-', '_' or '.'); ignoring it`);
  }
  const given = asked !== null && NAME_PATTERN.test(asked) ? asked : null;
  let storage = null;
  try {
    storage = window.sessionStorage;
  } catch (e) {
    console.warn(`sessionStorage is not available (${e.message}): this tab's name lasts until a reload`);
  }
  const kept = storage?.getItem(KEY);
  const name = given ?? (kept && NAME_PATTERN.test(kept) ? kept : randomName());
  storage?.setItem(KEY, name);
  return name;
}

/** This tab's display name. */
export const myName = resolveName();

/** Initials for an avatar: `Grace 7c` → `G7`. */
export function initials(name) {
  const parts = String(name).split(/\s+/).filter(Boolean);
  return parts.map((p) => p[0]).join("").slice(0, 2).toUpperCase();
}

/** A stable colour for a name (hue from a string hash). */
export function colourOf(name) {
  let h = 0;
  for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 42%)`;
}

/** The display name of a presence entry: its `info.name`, else its `user`. */
export const nameOf = (entry) => (typeof entry?.info?.name === "string" ? entry.info.name : String(entry?.user ?? "?"));

/** The number of connections (tabs) of a grouped presence entry. */
export const connectionsOf = (entry) => Number(entry?.connections ?? 1);

/**
 * The post ids a grouped presence entry is on, with the mode of each: from each of its connections'
 * `data` (`members`, one per tab), else from the entry's own `data`.
 */
export function placesOf(entry) {
  const datas = Array.isArray(entry?.members) ? entry.members.map((c) => c?.data) : [entry?.data];
  return datas.filter((d) => d && d.id !== undefined && d.id !== null).map((d) => ({ id: String(d.id), mode: d.mode ?? "view" }));
}

/**
 * The list's avatars: `others` (grouped per user) as a Map from post id (a string) to the users on
 * it, `[{ name, mode }]`, a user editing ahead of one viewing.
 */
export function byPost(others) {
  const posts = new Map();
  for (const entry of others ?? []) {
    const name = nameOf(entry);
    const modes = new Map();
    for (const { id, mode } of placesOf(entry)) if (modes.get(id) !== "edit") modes.set(id, mode);
    for (const [id, mode] of modes) {
      if (!posts.has(id)) posts.set(id, []);
      posts.get(id).push({ name, mode });
    }
  }
  for (const users of posts.values()) users.sort((a, b) => (a.mode === b.mode ? a.name.localeCompare(b.name) : a.mode === "edit" ? -1 : 1));
  return posts;
}

/**
 * "Alice 4f (editing), Bob 2a (viewing, 2 tabs)": the users of `others`, each with what it does on
 * post `id` (editing if any of its tabs edits it), or on any post when `id` is not given.
 */
export function alsoHereText(others, id) {
  return (others ?? [])
    .map((e) => {
      const places = placesOf(e).filter((p) => id === undefined || p.id === String(id));
      const mode = places.some((p) => p.mode === "edit") ? "editing" : "viewing";
      const tabs = connectionsOf(e);
      return `${nameOf(e)} (${mode}${tabs > 1 ? `, ${tabs} tabs` : ""})`;
    })
    .join(", ");
}
