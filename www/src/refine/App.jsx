import { Refine } from "@refinedev/core";
import routerProvider from "@refinedev/react-router";
import dataProvider from "@refinedev/simple-rest";
import { HashRouter, Navigate, Route, Routes } from "react-router";
import { createRefineLive } from "../live.js";
import { Layout } from "./Layout.jsx";
import { PostEdit, PostList, PostShow } from "./posts.jsx";
import { ManualPage } from "./ManualPage.jsx";
import { AboutPage } from "./AboutPage.jsx";

const live = createRefineLive();
window.__live = live; // for the end-to-end tests and the curious

// The demo API publishes every mutation itself (so do `curl` and any other backend). Refine's mutation
// hooks publish the same change again through `liveProvider.publish`; keep that for custom channels
// only, so each edit reaches the other windows once.
const liveForRefine = {
  subscribe: live.subscribe,
  unsubscribe: live.unsubscribe,
  publish: (event) => (event.channel.startsWith("resources/") ? undefined : live.publish(event)),
};

export function App() {
  return (
    <HashRouter>
      <Refine
        dataProvider={dataProvider("/api")}
        liveProvider={liveForRefine}
        routerProvider={routerProvider}
        resources={[{ name: "posts", list: "/posts", show: "/posts/:id", edit: "/posts/:id/edit" }]}
        options={{ liveMode: "auto", disableTelemetry: true, syncWithLocation: false }}
      >
        <Routes>
          <Route element={<Layout live={live} />}>
            <Route index element={<Navigate to="/posts" replace />} />
            <Route path="/posts" element={<PostList live={live} />} />
            <Route path="/posts/:id" element={<PostShow live={live} />} />
            <Route path="/posts/:id/edit" element={<PostEdit live={live} />} />
            <Route path="/manual" element={<ManualPage />} />
            <Route path="/about" element={<AboutPage />} />
          </Route>
        </Routes>
      </Refine>
    </HashRouter>
  );
}
