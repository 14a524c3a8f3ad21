# The two commands that matter:
#   make demo   build everything and serve the demo at http://127.0.0.1:8787
#   make test   install what is missing, then run every test
# Both install what they need on a fresh Debian machine (scripts/setup.sh, idempotent).

SHELL := /bin/bash
DEMO_ADDR ?= 127.0.0.1:8787
SAY = @printf '\033[1m[make]\033[0m %s\n'

.PHONY: demo test setup setup-browsers pkg www relay lint test-native test-redis test-browser test-packed test-types test-adapters test-e2e test-igniter test-bench test-size fuzz clean

setup:
	$(SAY) "checking the toolchain (installs only what is missing)"
	@bash scripts/setup.sh

setup-browsers:
	$(SAY) "checking the toolchain and the browsers (installs only what is missing)"
	@bash scripts/setup.sh --browsers

pkg: setup
	$(SAY) "building the npm package into pkg/"
	@bash scripts/build-pkg.sh

relay:
	$(SAY) "building the relay (cargo build --profile server -p live-relay)"
	@cargo build -q --profile server -p live-relay

# The static Linux binary (musl; setup adds the target and musl-tools): the image's, the npm package's.
.PHONY: relay-static
relay-static: setup
	$(SAY) "building the static relay (cargo build --profile server --target x86_64-unknown-linux-musl -p live-relay)"
	@cargo build -q --profile server --target x86_64-unknown-linux-musl -p live-relay

www: pkg
	$(SAY) "building the demo apps (Refine and Vue) with Vite into www/dist/"
	@bash scripts/build-www.sh

demo: www relay
	$(SAY) "open http://$(DEMO_ADDR)/ (Refine) and http://$(DEMO_ADDR)/vue.html (Vue) in two windows; Ctrl-C stops the relay"
	@./target/server/live-relay --addr $(DEMO_ADDR) --demo --static-dir www/dist

# The demo on a throwaway PostgreSQL 15 (scripts/pg-throwaway.sh: a temporary cluster on a free loopback
# port, stopped and deleted on exit): the demo's records are the tables posts and categories, whose triggers
# publish every change, also one made with psql at the printed URL.
.PHONY: demo-postgres
demo-postgres: www relay
	$(SAY) "open http://$(DEMO_ADDR)/ in two windows, then in another shell: psql <the URL below> -c \"UPDATE posts SET title = 'From psql' WHERE id = 1\"; Ctrl-C stops both"
	@bash scripts/pg-throwaway.sh run -- bash -c './target/server/live-relay --addr $(DEMO_ADDR) --demo --postgres "$$DATABASE_URL" --static-dir www/dist'

# The npm packages (docs/DISTRIBUTION.md): live-relay (the JS shim and the demo) and @live-relay/linux-x64
# (the static binary), versioned as relay/Cargo.toml, packed into dist/npm/.
.PHONY: npm test-npm
npm: www relay-static
	$(SAY) "packing the npm packages live-relay and @live-relay/linux-x64 into dist/npm/"
	@LIVE_RELAY_NPM_BINARY=target/x86_64-unknown-linux-musl/server/live-relay bash scripts/npm-pack.sh

# Both feature sets of the crate: the default (WebSocket, protocol v1) and --all-features (SSE,
# Igniter.js, the simple protocol: the package's full/ build).
lint:
	$(SAY) "cargo fmt --check and clippy -D warnings (native and wasm32: default features, the no_std wasm, std, --all-features)"
	@cargo fmt --all -- --check
	@cargo clippy -q --workspace --all-targets -- -D warnings
	@cargo clippy -q --workspace --all-targets --all-features -- -D warnings
	@cargo clippy -q --target wasm32-unknown-unknown --lib -- -D warnings
	@cargo clippy -q --target wasm32-unknown-unknown --all-targets --features std -- -D warnings
	@cargo clippy -q --target wasm32-unknown-unknown --all-targets --all-features -- -D warnings

test-native:
	$(SAY) "native tests: engine unit tests and relay integration tests (the cluster tests start redis-server), then the engine with every feature"
	@cargo test -q --workspace
	@cargo test -q -p wasm-live-provider --all-features

test-redis:
	$(SAY) "the relay's protocol, resume, scopes, SSE, auth, hardening and presence suites again, on the Redis broker"
	@bash scripts/test-redis-suites.sh

test-browser: relay
	$(SAY) "wasm-bindgen tests in headless Chromium and Firefox against a real relay"
	@bash scripts/test-browser.sh chrome firefox

test-types: pkg
	$(SAY) "type definitions under tsc --strict, and the shell's per-frame JS (pkg-template/frames.js, stream.js) checked by it"
	@node_modules/.bin/tsc -p tests/types/tsconfig.json
	@node_modules/.bin/tsc -p tests/types/tsconfig.frames.json

test-adapters: pkg
	$(SAY) "the React and Vue adapters (pkg-template/react.js, vue.js) given bad arguments, under react-dom/server and vue/server-renderer"
	@node --test tests/adapters/

# No build needed; TanStack Query's own partialMatchKey and QueryClient come from www/node_modules (make www),
# the cross-checks are skipped (and say so) without it.
.PHONY: test-js
test-js:
	$(SAY) "the JS entry's pure helpers (pkg-template/helpers.js: relay URLs, UTF-8 frame sizes, TanStack Query's key matching) and the per-frame JS of the wasm shell (frames.js, stream.js)"
	@node --test tests/js/

test-packed: pkg relay
	$(SAY) "the packed npm package in a fresh Vite app, in headless Chromium"
	@node --test tests/packed/

.PHONY: test-server
# Node 20 has a global WebSocket only with --experimental-websocket (later Nodes have it anyway).
WS_FLAG = $(shell node -e 'typeof WebSocket === "function" || console.log("--experimental-websocket")')
test-server: pkg relay
	$(SAY) "wasm-live-provider/server: tokens (checked with jose), retries through a failing proxy and the packed subpath, against real relays"
	@node $(WS_FLAG) --test tests/server/

test-e2e: www relay
	$(SAY) "end to end: the demo in two headless Chromium contexts (presence too), and useRevalidation with TanStack Query (Playwright)"
	@node --test tests/e2e/

.PHONY: test-e2e-postgres
test-e2e-postgres: www relay
	$(SAY) "end to end: the demo on a throwaway PostgreSQL, changes made with psql, in two headless Chromium contexts"
	@bash scripts/pg-throwaway.sh run -- node --test tests/e2e-postgres/

test-bench: pkg relay
	$(SAY) "benchmark smoke runs (seconds each; the full runs are in bench/README.md)"
	@bash bench/smoke.sh

test-size: pkg
	$(SAY) "the package's size budget (bench/size/budget.txt)"
	@bash scripts/size-budget.sh

test-igniter:
	$(SAY) "the Igniter.js test server's wire format (tests/igniter)"
	@IGNITER_SKIP_KEEPALIVE=1 node --test tests/igniter/

.PHONY: test-relay-build
test-relay-build: relay
	$(SAY) "the relay's server build: a panicking connection leaves the process and the others serving"
	@RELAY_BINARY_UNDER_TEST=$(CURDIR)/target/server/live-relay cargo test -q -p live-relay --test panics

# No container engine runs here: the Dockerfile's root file system and settings, run without one.
.PHONY: test-relay-static
test-relay-static: relay-static
	$(SAY) "the static (musl) relay: the protocol suite and the panic test against target/x86_64-unknown-linux-musl/server/live-relay"
	@RELAY_BINARY_UNDER_TEST=$(CURDIR)/target/x86_64-unknown-linux-musl/server/live-relay cargo test -q -p live-relay --test protocol --test panics

.PHONY: test-image
test-image: relay-static
	$(SAY) "the Dockerfile's image without an engine: its root file system run chrooted in namespaces as its user (the image build is not tested)"
	@bash scripts/test-image-rootfs.sh

# Offline: the tarballs installed with --offline or from a loopback registry the tests start.
test-npm: npm
	$(SAY) "the npm packages: installed offline and from a loopback registry, npx live-relay --demo, --omit=optional, --ignore-scripts, --version, the static binary, the sizes"
	@node --test tests/npm/

.PHONY: test-simple
test-simple: pkg
	$(SAY) "protocol \"simple\": the seed-protocol test server (tests/simple) and the option's checks in pkg/index.js"
	@node --test tests/simple/

# Not part of `make test`: installs a pinned nightly and cargo-fuzz, then fuzzes each target of
# fuzz/ for FUZZ_SECONDS (default 60) from the seed corpus in fuzz/corpus/.
FUZZ_SECONDS ?= 60
fuzz:
	$(SAY) "fuzzing every target of fuzz/ for $(FUZZ_SECONDS) s each (pinned nightly + cargo-fuzz, installed if missing)"
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

test: setup-browsers lint test-native test-redis test-relay-build test-relay-static test-image test-npm pkg test-size test-types test-adapters test-igniter test-simple test-browser test-packed test-server test-e2e test-js test-e2e-postgres test-bench
	$(SAY) "all tests passed"

clean:
	rm -rf pkg www/dist target dist
