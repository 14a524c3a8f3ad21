import { defineConfig } from "vite";
import { resolve } from "node:path";

export default defineConfig({
  // wasm-live-provider comes from ../pkg through a symlink: resolve its peers from here.
  resolve: { dedupe: ["react", "react-dom", "vue"] },
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
    rollupOptions: {
      // React libraries mark modules "use client"; that directive means nothing in a client bundle.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
      input: { refine: resolve(import.meta.dirname, "index.html"), vue: resolve(import.meta.dirname, "vue.html") },
    },
  },
});
