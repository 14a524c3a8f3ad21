#!/usr/bin/env bash
# Tests the container image the Dockerfile describes, without a container engine (none runs here):
# reads the Dockerfile (FROM scratch, COPY, USER, ENV, EXPOSE, HEALTHCHECK, ENTRYPOINT/CMD), builds
# the same root file system in a temporary directory (exactly the COPYed files, owned by root, modes
# kept), and runs the entrypoint in it the way an engine would: in new network, PID and mount
# namespaces (loopback only, the relay as PID 1), chrooted into that root mounted read-only, as the
# image's numeric user, with only the image's ENV (plus the PATH and HOME an engine adds, plus a JWT
# secret and an API key given as LIVE_RELAY_* variables, as a user must). Then checks:
#   - every COPY source is in the build context .dockerignore lets through, and nothing else is;
#   - the binary is static (readelf: no NEEDED, no INTERP) and x86-64, its --version is the crate's;
#   - with the image's ENV alone (no token key) the relay refuses to start (exit 2);
#   - the HEALTHCHECK command fails when nothing listens;
#   - the relay listens on the EXPOSEd port of every interface, /healthz answers 200 (curl in the same
#     network namespace), and the HEALTHCHECK command, run as an engine runs it (same namespaces, root,
#     user and environment, the HEALTHCHECK's --timeout), exits 0;
#   - the process is PID 1 of its namespace, runs as the USER's uid and gid with no supplementary
#     groups and no capabilities;
#   - SIGTERM (docker stop) stops it with exit code 0 well within docker stop's 10 s.
# What it does not test: `docker build` itself (the Dockerfile's syntax as an engine reads it, the
# build context upload, the image's metadata), and running under a real engine (its /dev, /proc,
# /etc/hosts, cgroups, seccomp, port publishing). It needs root (namespaces, chroot, setuid).
#   scripts/test-image-rootfs.sh [Dockerfile]      (from any directory; paths are the repository's)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[test-image]\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31m[test-image] FAIL:\033[0m %s\n' "$*" >&2; exit 1; }
not_tested() {
  say "NOTE: the image itself is NOT built or run here (no container engine on this machine): this checks the"
  say "      root file system and run settings the Dockerfile describes, run without an engine."
}

dockerfile=${1:-Dockerfile}
[ -f "$dockerfile" ] || fail "no $dockerfile"
[ "$(id -u)" = 0 ] || fail "needs root (network/PID/mount namespaces, chroot, switching to the image's user)"

# The tools, installed only when missing (like scripts/setup.sh).
apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then say "apt-get update"; apt-get update -qq; apt_updated=1; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
apt_install util-linux mount iproute2 binutils curl jq coreutils
CHROOT=$(command -v chroot)
for tool in unshare nsenter ip ss readelf curl jq timeout; do
  command -v $tool >/dev/null || fail "$tool not found"
done

not_tested

# --- Read the Dockerfile ------------------------------------------------------------------------
# Logical lines: comments dropped, continuation lines (ending in \) joined.
instructions=()
buf=""
while IFS= read -r line || [ -n "$line" ]; do
  [[ $line =~ ^[[:space:]]*# ]] && continue
  if [[ $line =~ ^(.*)\\[[:space:]]*$ ]]; then buf+="${BASH_REMATCH[1]} "; continue; fi
  buf+="$line"
  [[ $buf =~ ^[[:space:]]*$ ]] || instructions+=("$buf")
  buf=""
done <"$dockerfile"
[[ $buf =~ ^[[:space:]]*$ ]] || fail "$dockerfile ends inside a continuation line"

# A JSON array of strings (exec form) into the array named $2; the shell form is refused: there is no
# shell in a FROM scratch image to run it.
exec_form() {
  local json=$1 name=$2
  jq -e 'type == "array" and length > 0 and all(type == "string")' <<<"$json" >/dev/null 2>&1 ||
    fail "$dockerfile: \`$json\` is not the exec form [\"…\", …] (the shell form needs a /bin/sh the image does not have)"
  mapfile -t "$name" < <(jq -r '.[]' <<<"$json")
}

from="" user="" expose="" healthcheck_timeout=30
copies=()            # "src<TAB>dest"
env_names=()         # in order of first appearance
declare -A env_value
entrypoint=() cmd=() healthcheck=()
for ins in "${instructions[@]}"; do
  read -r word rest <<<"$ins"
  case "${word^^}" in
    FROM)
      [ -z "$from" ] || fail "$dockerfile: more than one FROM (this test knows a single FROM scratch stage)"
      from=$rest
      [ "$from" = scratch ] || fail "$dockerfile: FROM $from: this test builds the root from nothing, i.e. FROM scratch only"
      ;;
    COPY)
      read -r -a args <<<"$rest"
      [[ ${args[0]} == --* ]] && fail "$dockerfile: COPY ${args[0]}: flags are not known to this test (teach it, or drop them)"
      [[ ${args[0]} == \[* ]] && fail "$dockerfile: COPY [\"…\"] form is not known to this test: use COPY src dest"
      [ ${#args[@]} = 2 ] || fail "$dockerfile: COPY $rest: this test knows one source and one destination"
      src=${args[0]#./} dest=${args[1]}
      [[ $src == *[\*\?\[]* || $src == /* || $src == ..* || $src == */..* ]] &&
        fail "$dockerfile: COPY source $src: globs and paths outside the context are not known to this test"
      [[ $dest == /* ]] || fail "$dockerfile: COPY destination $dest is not absolute"
      copies+=("$src"$'\t'"$dest")
      ;;
    USER)
      [[ $rest =~ ^([0-9]+):([0-9]+)$ ]] ||
        fail "$dockerfile: USER $rest: give uid:gid as numbers (no /etc/passwd or /etc/group in a scratch image)"
      user=$rest
      ;;
    ENV)
      [[ $rest == *[\"\'\$\\]* ]] && fail "$dockerfile: ENV $rest: quotes, \$ and \\ are not known to this test"
      read -r -a args <<<"$rest"
      if [[ ${args[0]} != *=* ]]; then     # the old form: ENV NAME value…
        read -r name value <<<"$rest"; args=("$name=$value")
      fi
      for kv in "${args[@]}"; do
        [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || fail "$dockerfile: ENV $kv is not NAME=value"
        name=${kv%%=*}
        [ -n "${env_value[$name]+x}" ] || env_names+=("$name")
        env_value[$name]=${kv#*=}
      done
      ;;
    EXPOSE)
      [ -z "$expose" ] || fail "$dockerfile: more than one EXPOSE (this test knows one port)"
      [[ $rest =~ ^([0-9]+)(/tcp)?$ ]] || fail "$dockerfile: EXPOSE $rest: this test knows one TCP port"
      expose=${BASH_REMATCH[1]}
      ;;
    HEALTHCHECK)
      healthcheck=() healthcheck_timeout=30
      [ "${rest^^}" = NONE ] && continue
      opts=${rest%%[Cc][Mm][Dd] *} json=${rest#"$opts"}; json=${json:4}
      for opt in $opts; do
        case $opt in
          --timeout=*s) healthcheck_timeout=${opt#--timeout=}; healthcheck_timeout=${healthcheck_timeout%s} ;;
          --interval=* | --start-period=* | --start-interval=* | --retries=*) ;;
          *) fail "$dockerfile: HEALTHCHECK option $opt is not known to this test" ;;
        esac
      done
      [[ $healthcheck_timeout =~ ^[0-9]+$ ]] || fail "$dockerfile: HEALTHCHECK --timeout: give whole seconds (e.g. 5s)"
      exec_form "$json" healthcheck
      ;;
    ENTRYPOINT) exec_form "$rest" entrypoint ;;
    CMD) exec_form "$rest" cmd ;;
    LABEL) ;; # metadata only
    *) fail "$dockerfile: instruction ${word^^} is not known to this test: teach scripts/test-image-rootfs.sh what it does" ;;
  esac
done
[ -n "$from" ] || fail "$dockerfile: no FROM"
[ ${#copies[@]} -gt 0 ] || fail "$dockerfile: nothing is COPYed"
[ -n "$user" ] || fail "$dockerfile: no USER: the image would run as root"
[[ $user != 0:* && $user != *:0 ]] || fail "$dockerfile: USER $user is root"
[ ${#entrypoint[@]} -gt 0 ] || fail "$dockerfile: no ENTRYPOINT"
[ ${#healthcheck[@]} -gt 0 ] || fail "$dockerfile: no HEALTHCHECK"
[ -n "$expose" ] || fail "$dockerfile: no EXPOSE"
addr=${env_value[LIVE_RELAY_ADDR]:-}
[[ $addr =~ ^(0\.0\.0\.0|\[::\]):([0-9]+)$ ]] ||
  fail "$dockerfile: ENV LIVE_RELAY_ADDR=$addr: the image must listen on every interface (0.0.0.0:PORT or [::]:PORT)"
[ "${BASH_REMATCH[2]}" = "$expose" ] || fail "$dockerfile: LIVE_RELAY_ADDR's port ${BASH_REMATCH[2]} is not the EXPOSEd $expose"
argv=("${entrypoint[@]}" "${cmd[@]}")
uid=${user%%:*} gid=${user##*:}

say "$dockerfile: FROM $from; USER $user; EXPOSE $expose"
for c in "${copies[@]}"; do say "  COPY ${c%%$'\t'*} -> ${c##*$'\t'}"; done
for n in "${env_names[@]}"; do say "  ENV $n=${env_value[$n]}"; done
say "  HEALTHCHECK (--timeout ${healthcheck_timeout}s) ${healthcheck[*]}"
say "  runs: ${argv[*]}"

# --- The build context (.dockerignore) ------------------------------------------------------------
for c in "${copies[@]}"; do
  src=${c%%$'\t'*}
  [ -e "$src" ] || fail "COPY source $src is missing: build it first (the relay's static binary: make relay-static)"
done
if [ -f .dockerignore ]; then
  mapfile -t patterns < <(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^#/d' -e '/^$/d' .dockerignore)
  [[ ${patterns[0]:-} == "*" || ${patterns[0]:-} == "**" ]] ||
    fail ".dockerignore: this test knows the allow-list form only: \`*\` first, then one !path per COPY source"
  allowed=()
  for p in "${patterns[@]:1}"; do
    [[ $p == !* ]] || fail ".dockerignore: $p: after \`*\`, only !path exceptions are known to this test"
    p=${p#!}; p=${p#/}; p=${p#./}; allowed+=("$p")
  done
  for c in "${copies[@]}"; do
    src=${c%%$'\t'*} ok=0
    for p in "${allowed[@]}"; do [[ $src == "$p" || $src == "$p"/* ]] && ok=1; done
    [ $ok = 1 ] || fail ".dockerignore leaves COPY source $src out of the build context: add !$src"
  done
  for p in "${allowed[@]}"; do
    ok=0
    for c in "${copies[@]}"; do [ "${c%%$'\t'*}" = "$p" ] && ok=1; done
    [ $ok = 1 ] || fail ".dockerignore lets $p into the build context, but nothing COPYs it"
  done
  say ".dockerignore: the build context is exactly the COPY sources (${allowed[*]})"
else
  say "no .dockerignore: the whole repository would be sent as the build context"
fi

# --- The root file system ---------------------------------------------------------------------------
tmp=$(mktemp -d)
root=$tmp/rootfs
relay_up=""
cleanup() {
  if [ -n "$relay_up" ] && kill -0 "$relay_up" 2>/dev/null; then
    kill "$relay_up" 2>/dev/null || true   # unshare --kill-child: takes the relay with it
    wait "$relay_up" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -m 0755 "$root"
for c in "${copies[@]}"; do
  src=${c%%$'\t'*} dest=${c##*$'\t'}
  [[ $dest == */ ]] && dest=$dest$(basename "$src")
  mkdir -p -m 0755 "$root$(dirname "$dest")"
  if [ -d "$src" ]; then
    mkdir -p "$root$dest" && cp -a "$src/." "$root$dest/"
  else
    cp -p "$src" "$root$dest"
  fi
done
chown -R 0:0 "$root"     # COPY without --chown: owned by root; modes as in the context
say "root file system (everything in it):"
(cd "$root" && find . -mindepth 1 -printf '  %M %U:%G %10s %P\n' | sort -k4)
n_src=0
for c in "${copies[@]}"; do n_src=$((n_src + $(find "${c%%$'\t'*}" -type f | wc -l))); done
[ "$(find "$root" -type f | wc -l)" = "$n_src" ] || fail "the root holds other files than the COPYed ones"

bin=$root${argv[0]}
[[ ${argv[0]} == /* && -f $bin && -x $bin ]] || fail "ENTRYPOINT ${argv[0]} is not an executable file of the image (absolute path)"
mode=$(stat -c %a "$bin")
[ "$(stat -c %u:%g "$bin")" = 0:0 ] && (( (8#$mode & 8#022) == 0 )) ||
  fail "${argv[0]} (mode $mode) is writable by the image's user"
if readelf -d "$bin" | grep -q '(NEEDED)'; then
  fail "${argv[0]} needs shared libraries: $(readelf -d "$bin" | grep NEEDED | tr -s ' ' | tr '\n' ';')"
fi
readelf -l "$bin" | grep -q 'INTERP' && fail "${argv[0]} has a program interpreter (dynamic loader): not static"
machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
[[ $machine == *X86-64* ]] || fail "${argv[0]} is for $machine, not x86-64 (the image is linux/amd64)"
say "${argv[0]}: static (readelf -d: no NEEDED; readelf -l: no INTERP), $machine, $(stat -c %s "$bin") bytes"

# --- Running it as the image would run --------------------------------------------------------------
# The environment an engine gives the process: its default PATH, HOME=/ (the user has no passwd
# entry), the image's ENV; then what `docker run -e` adds.
image_env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=/")
for n in "${env_names[@]}"; do image_env+=("$n=${env_value[$n]}"); done
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
api_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
run_env=("${image_env[@]}" "LIVE_RELAY_JWT_SECRET=$secret" "LIVE_RELAY_API_KEY=$api_key")

# New network, PID and mount namespaces; loopback up; the root bind-mounted read-only onto itself (as
# `docker run --read-only`: the relay writes nothing); then only the given environment, chrooted, as
# the image's user. The last exec makes the command PID 1 of the namespace.
inner='set -e; ip link set lo up; mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; shift; exec "$@"'
in_image() { # in_image ENV_ARRAY_NAME command args…  (in the foreground)
  local -n envs=$1; shift
  timeout 10 unshare --net --pid --mount --fork --kill-child -- sh -c "$inner" sh "$root" \
    env -i "${envs[@]}" "$CHROOT" --userspec="$uid:$gid" "$root" "$@"
}

version=$(in_image image_env "${argv[0]}" --version) || fail "${argv[0]} --version failed in the image's root"
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' relay/Cargo.toml | head -1)
[ "$version" = "live-relay $crate_version" ] ||
  fail "${argv[0]} --version says \"$version\", relay/Cargo.toml is $crate_version: a stale binary? (make relay-static)"
say "${argv[0]} --version: $version"

set +e
out=$(in_image image_env "${argv[@]}" 2>&1); rc=$?
set -e
[ $rc = 2 ] && [[ $out == *"without authentication"* ]] ||
  fail "with the image's ENV alone (no token key) the relay should refuse to start with exit code 2; got $rc: $out"
say "the image's ENV alone (no LIVE_RELAY_JWT_SECRET/_API_KEY): refused, exit 2: ${out#live-relay: }"

set +e
out=$(in_image image_env "${healthcheck[@]}" 2>&1); rc=$?
set -e
[ $rc != 0 ] || fail "the HEALTHCHECK command exits 0 with nothing listening"
say "HEALTHCHECK with nothing listening: exit $rc ($out)"

say "starting: ${argv[*]} as $uid:$gid, root read-only, LIVE_RELAY_ADDR=$addr, a JWT secret and an API key given"
unshare --net --pid --mount --fork --kill-child -- sh -c "$inner" sh "$root" \
  env -i "${run_env[@]}" "$CHROOT" --userspec="$uid:$gid" "$root" "${argv[@]}" \
  >"$tmp/stdout" 2>"$tmp/stderr" &
relay_up=$!
pid=""
for _ in $(seq 200); do    # up to 10 s: the relay's host pid (unshare's child, once exec'd), then /healthz
  kill -0 $relay_up 2>/dev/null || fail "the relay exited: $(cat "$tmp/stdout" "$tmp/stderr")"
  if [ -z "$pid" ]; then
    pid=$(tr -d ' \n' <"/proc/$relay_up/task/$relay_up/children" 2>/dev/null || true)
  fi
  if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$bin" ] &&
    [ "$(nsenter -t "$pid" -n curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$expose/healthz" || true)" = 200 ]; then
    break
  fi
  sleep 0.05
done
code=$(nsenter -t "$pid" -n curl -s -o "$tmp/healthz" -w '%{http_code}' "http://127.0.0.1:$expose/healthz" || true)
[ "$code" = 200 ] || fail "/healthz did not answer 200 within 10 s (got ${code:-nothing}): $(cat "$tmp/stderr")"
say "curl http://127.0.0.1:$expose/healthz in the relay's network namespace: $code $(cat "$tmp/healthz")"
grep -q "listening on http://$addr" "$tmp/stdout" || fail "no \"listening on http://$addr\" on stdout: $(cat "$tmp/stdout")"
listen=$(nsenter -t "$pid" -n ss -Hltn | awk '{print $4}' | tr '\n' ' ')
[[ " $listen" == *" $addr "* ]] || fail "the relay does not listen on $addr (sockets: $listen)"
say "listening sockets in its namespace: $listen"

status=/proc/$pid/status
field() { sed -n "s/^$1:[[:space:]]*//p" "$status" | tr -s '\t ' ' ' | sed 's/ *$//'; }
[ "$(field Uid)" = "$uid $uid $uid $uid" ] || fail "runs with uids $(field Uid), not $uid"
[ "$(field Gid)" = "$gid $gid $gid $gid" ] || fail "runs with gids $(field Gid), not $gid"
[ -z "$(field Groups)" ] || fail "has supplementary groups: $(field Groups)"
[ "$(field CapEff)" = 0000000000000000 ] && [ "$(field CapPrm)" = 0000000000000000 ] ||
  fail "has capabilities: CapEff $(field CapEff), CapPrm $(field CapPrm)"
nspid=$(field NSpid)
[ "${nspid##* }" = 1 ] || fail "is not PID 1 of its namespace (NSpid: $nspid)"
[ "$(readlink "/proc/$pid/root")" = "$root" ] || fail "its root is $(readlink "/proc/$pid/root"), not the image's"
say "process: PID 1 in its namespace (host pid ${nspid%% *}), uid $(field Uid), gid $(field Gid), no groups, no capabilities, root = the image's"

# The HEALTHCHECK as an engine runs it: in the container's namespaces and root, as its user, with its
# environment, under the HEALTHCHECK's --timeout.
set +e
out=$(env -i "${run_env[@]}" timeout "$healthcheck_timeout" \
  nsenter -t "$pid" -n -p -m -r -w -S "$uid" -G "$gid" "${healthcheck[@]}" 2>&1); rc=$?
set -e
[ $rc = 0 ] || fail "HEALTHCHECK ${healthcheck[*]} exited $rc: $out"
say "HEALTHCHECK ${healthcheck[*]} (in its namespaces, as $uid:$gid): exit 0"

start=$(date +%s%N)
kill -TERM "$pid"
for _ in $(seq 200); do kill -0 $relay_up 2>/dev/null || break; sleep 0.05; done
kill -0 $relay_up 2>/dev/null && fail "still running 10 s after SIGTERM (docker stop would SIGKILL it now)"
set +e; wait $relay_up; rc=$?; set -e
relay_up=""
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ] || fail "exit code $rc after SIGTERM: $(tail -5 "$tmp/stderr")"
say "SIGTERM (docker stop): exit code 0 after $ms ms"

say "PASS: the root file system and run settings of $dockerfile"
not_tested
