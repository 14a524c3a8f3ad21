// The JS of the Server-Sent Events shell (src/browser/stream.rs, full build only): as frames.js, a
// real `.js` file, bundled into the full build's wasm-bindgen glue; type-checked under tsc --strict
// (tests/types/tsconfig.frames.json) and unit-tested with node --test (tests/js/frames.test.mjs).

/**
 * How many bytes the string `d` takes in UTF-8 (what the relay's `--max-frame-bytes` counts) when
 * that is over `max`, else 0 (as frames.js's `frameListener` measures a WebSocket frame). A UTF-16
 * code unit is 1 to 3 bytes: a string of at most `max / 3` units is not encoded.
 * @param {string} d
 * @param {number} max
 * @returns {number}
 */
export function bytesOver(d, max) {
  const n = d.length * 3 > max ? new Blob([d]).size : 0;
  return n > max ? n : 0;
}
