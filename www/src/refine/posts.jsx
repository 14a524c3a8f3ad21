import { useState } from "react";
import { useCreate, useDelete, useForm, useList, useOne } from "@refinedev/core";
import { Link, useParams } from "react-router";
import { AlsoHere, RowAvatars, usePostsPresence } from "./presence.jsx";

export function PostList({ live }) {
  const { posts: presence } = usePostsPresence(live);
  const { result, query } = useList({
    resource: "posts",
    pagination: { currentPage: 1, pageSize: 20 },
    sorters: [{ field: "id", order: "desc" }],
  });
  const { mutate: create } = useCreate();
  const { mutate: remove } = useDelete();
  const [title, setTitle] = useState("");
  return (
    <>
      <h1>Posts {query.isFetching && <span className="muted">· refreshing</span>}</h1>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          if (!title.trim()) return;
          create({ resource: "posts", values: { title, status: "draft", content: "" } });
          setTitle("");
        }}
      >
        <input data-testid="new-title" value={title} onChange={(e) => setTitle(e.target.value)} placeholder="A new post title" />
        <button data-testid="create">Create</button>
      </form>
      <table data-testid="posts">
        <thead>
          <tr><th>#</th><th>title</th><th>status</th><th>here</th><th /></tr>
        </thead>
        <tbody>
          {result.data.map((post) => (
            <tr key={post.id} data-testid={`post-${post.id}`}>
              <td>{post.id}</td>
              <td><Link to={`/posts/${post.id}`}>{post.title}</Link></td>
              <td>{post.status}</td>
              <td><RowAvatars users={presence.get(String(post.id))} /></td>
              <td>
                <Link to={`/posts/${post.id}/edit`}>edit</Link>{" "}
                <button data-testid={`delete-${post.id}`} onClick={() => remove({ resource: "posts", id: post.id })}>
                  delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">{result.total ?? 0} posts. Open this page in a second window and edit something.</p>
    </>
  );
}

export function PostShow({ live }) {
  const { id } = useParams();
  const { result: post, query } = useOne({ resource: "posts", id });
  // Presence stays mounted while the post loads and changes (one membership per page visit).
  return (
    <>
      {post ? <h1 data-testid="show-title">{post.title}</h1> : <h1>{query.isError ? "Not found." : "Loading…"}</h1>}
      <AlsoHere live={live} id={id} mode="view" />
      {post && (
        <>
          <p>
            <span className="badge">{post.status}</span> <Link to={`/posts/${id}/edit`}>edit</Link>
          </p>
          <p>{post.content}</p>
          <p className="muted">
            This page subscribes with <code>ids: [{id}]</code>: it refetches when post {id} changes, and not for other posts.
          </p>
        </>
      )}
    </>
  );
}

export function PostEdit({ live }) {
  const { id } = useParams();
  const { onFinish, query, formLoading } = useForm({ resource: "posts", action: "edit", id, redirect: false });
  const post = query?.data?.data;
  // Presence sits outside the form, which is keyed by the post's content: a save elsewhere remounts
  // the form, not the membership.
  return (
    <>
      <h1>Edit post {id}</h1>
      <AlsoHere live={live} id={id} mode="edit" />
      {!post ? (
        <p>Loading…</p>
      ) : (
        <form
          key={`${post.id}-${post.title}-${post.status}`}
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget);
            onFinish({ title: form.get("title"), status: form.get("status") });
          }}
        >
          <p><input name="title" data-testid="edit-title" defaultValue={post.title} size={50} /></p>
          <p>
            <select name="status" defaultValue={post.status}>
              <option>published</option><option>draft</option><option>rejected</option>
            </select>
          </p>
          <button data-testid="save" disabled={formLoading}>Save</button>{" "}
          <Link to={`/posts/${id}`}>show</Link>
          <p className="muted">Someone else saving this post updates the form here (live mode "auto").</p>
        </form>
      )}
    </>
  );
}
