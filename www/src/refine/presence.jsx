// Presence in the Refine app: who else is on a post ("Also here: Alice 4f (editing)") on the show
// and edit pages, and who is on which post in the list. Through the package's React `usePresence`:
// one presence set per resource channel (`resources/posts`), this window's own `data` is
// `{ id, mode }`, `others` are the other users (grouped per user, several tabs being one user).
import { usePresence } from "wasm-live-provider/react";
import { alsoHereText, byPost, colourOf, connectionsOf, initials, myName, nameOf, placesOf } from "../who.js";

/** A round avatar with a name's initials; `mode` "edit" gets a ring. */
export function Avatar({ name, mode, tabs = 1 }) {
  const title = `${name}${mode ? ` (${mode === "edit" ? "editing" : "viewing"})` : ""}${tabs > 1 ? `, ${tabs} tabs` : ""}`;
  return (
    <span className={`avatar${mode === "edit" ? " editing" : ""}`} style={{ background: colourOf(name) }} title={title} data-name={name}>
      {initials(name)}
    </span>
  );
}

/** The header's "you are": this tab's name. */
export function Me() {
  return (
    <span className="me" data-testid="me" title="This tab's demo user (kept in sessionStorage; ?as=<name> sets it)">
      <Avatar name={myName} /> {myName}
    </span>
  );
}

/** Presence's state, when it says something (`stale`: offline; `unsupported`: an older relay). */
function statusNote(status) {
  if (status === "unsupported") return "presence is off on this relay";
  if (status === "stale") return "offline: the last known";
  return null;
}

/**
 * "Also here: …" for post `id`, joining its presence with `mode` ("edit" or "view").
 * `data-users` lists the names (for the tests), `data-connections` their tab counts.
 */
export function AlsoHere({ live, id, mode }) {
  const { others, status } = usePresence(live, { resource: "posts", id, data: { mode } });
  const here = others ?? []; // the other users on post `id` (the hook filters by `data.id`)
  const note = statusNote(status);
  return (
    <p
      className="presence"
      data-testid="also-here"
      data-status={status}
      data-users={here.map(nameOf).join(",")}
      data-connections={here.map(connectionsOf).join(",")}
    >
      {here.length === 0 ? (
        <span className="muted">Nobody else is on this post{note ? ` (${note})` : ""}.</span>
      ) : (
        <>
          <span className="avatars">
            {here.map((e) => (
              <Avatar key={e.user} name={nameOf(e)} mode={placesOf(e).find((p) => p.id === String(id))?.mode} tabs={connectionsOf(e)} />
            ))}
          </span>{" "}
          Also here: <b data-testid="also-here-text">{alsoHereText(here, id)}</b>
          {note && <span className="muted"> ({note})</span>}
        </>
      )}
    </p>
  );
}

/**
 * Who is on which post, for the list: a Map from post id (string) to `[{ name, mode }]`, from the
 * presence of `resources/posts` (this window joins it with no post, `mode: "list"`).
 */
export function usePostsPresence(live) {
  const { others, status } = usePresence(live, { resource: "posts", data: { mode: "list" } });
  return { posts: byPost(others), status };
}

/** A row's avatars. */
export function RowAvatars({ users }) {
  if (!users?.length) return null;
  return (
    <span className="avatars" data-testid="row-presence" data-users={users.map((u) => u.name).join(",")}>
      {users.map((u) => (
        <Avatar key={u.name} name={u.name} mode={u.mode} />
      ))}
    </span>
  );
}
