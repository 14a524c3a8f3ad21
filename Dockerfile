# live-relay as a container image: the static (musl) binary and nothing else. No shell, no libc, no
# /etc/passwd, no CA bundle (TLS to Redis checks against the CAs built into the binary, or a
# --redis-ca file you mount). linux/amd64 only. docs/IMAGE.md has more.
#
# The image is built from a binary built first, on the host (no Rust toolchain in the build):
#   make relay-static    # cargo build --profile server --target x86_64-unknown-linux-musl -p live-relay
#   docker build -t live-relay .
# .dockerignore sends only that binary as the build context.
#
# The relay refuses to listen on a non-loopback address (0.0.0.0 here) without authentication, so a
# token key MUST be given when running it: LIVE_RELAY_JWT_SECRET (HS256, at least 32 bytes) or
# LIVE_RELAY_JWT_PUBLIC_KEY (a PEM file mounted into the container), and LIVE_RELAY_API_KEY (at least
# 16 bytes; comma-separated for several) for the backends that publish. Without one it exits with
# code 2 and says so. Every flag has its LIVE_RELAY_* variable (`docker run --rm live-relay --help`).
#   docker run --rm -p 8787:8787 --read-only --ulimit nofile=262144:262144 \
#     -e LIVE_RELAY_JWT_SECRET -e LIVE_RELAY_API_KEY live-relay
#
# Tested without a container engine by scripts/test-image-rootfs.sh (make test-image): it reads this
# file, so keep to the instructions it knows (FROM scratch, COPY src dest, USER uid:gid, ENV k=v,
# EXPOSE, HEALTHCHECK … CMD [exec form], ENTRYPOINT/CMD [exec form], LABEL).

FROM scratch

LABEL org.opencontainers.image.title="live-relay" \
      org.opencontainers.image.description="Relay server of wasm-live-provider: WebSocket/SSE fan-out of change events" \
      org.opencontainers.image.licenses="MIT"

# Owned by root (COPY's default) and not writable by the user below.
COPY target/x86_64-unknown-linux-musl/server/live-relay /live-relay

# Numeric: there is no /etc/passwd to look a name up in (65532 is distroless's "nonroot").
USER 65532:65532

# Listen on every interface of the container. The other settings keep the relay's defaults.
ENV LIVE_RELAY_ADDR=0.0.0.0:8787
EXPOSE 8787

# No shell and no curl here: the binary asks its own /healthz (on loopback, at LIVE_RELAY_ADDR's
# port) and exits 0 on 200, 1 otherwise, within 3 s. Kept by Docker; podman/buildah keep it only
# with --format docker (HEALTHCHECK is not in the OCI image format). Kubernetes: an httpGet probe
# on /healthz instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/live-relay", "healthcheck"]

# PID 1: the relay stops on SIGTERM (docker stop), closing connections within
# LIVE_RELAY_SHUTDOWN_GRACE_MS (5 s by default; docker stop waits 10 s before SIGKILL).
ENTRYPOINT ["/live-relay"]
