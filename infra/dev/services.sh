#!/usr/bin/env bash
# The real services slipway's tests, demo and development need, on one Debian bookworm machine:
#   Docker Engine (+ a one-node Swarm), a registry on 127.0.0.1:5000, a Redis with AOF,
#   the local base image slipway/busybox:latest (no image can be pulled here), and two real ones:
#   slipway/debian:bookworm (an mmdebstrap root carrying this machine's CA bundle) and slipway/node:20
#   (that root plus the host's own Node 20 and npm), all pushed to the registry.
#
#   infra/dev/services.sh up       install what is missing, start what is stopped (idempotent)
#   infra/dev/services.sh status   one line per service; exit 1 when any is down
#   infra/dev/services.sh down     stop only what this script started (its pid files)
#
# Settings (environment):
#   SLIPWAY_DEV_STATE       state folder: configs, data, logs, pid files (default /var/lib/slipway-dev)
#   SLIPWAY_DEV_REDIS_PORT  port of the development Redis on 127.0.0.1 (default 6379)
#   SLIPWAY_DEV_REGISTRY_PORT  port of the registry on 127.0.0.1 (default 5000)
#   DOCKER_HOST             the engine to use (default the local socket)
#
# The Debian root is kept as a tarball in $STATE/images, so a later `up` re-imports it without running
# mmdebstrap again (e.g. after the engine's data was lost); it is remade only when its recipe changes.
set -euo pipefail

STATE=${SLIPWAY_DEV_STATE:-/var/lib/slipway-dev}
REDIS_PORT=${SLIPWAY_DEV_REDIS_PORT:-6379}
REGISTRY_ADDR=127.0.0.1:${SLIPWAY_DEV_REGISTRY_PORT:-5000}
BASE_IMAGE=slipway/busybox:latest
BASE_REMOTE=$REGISTRY_ADDR/slipway/busybox:latest
# Applets the base image links; the label lets `up` notice an older image that lacks some.
APPLETS="sh ash httpd nc wget sleep cat echo ls mkdir cp rm mv env sed grep date true false test [ \
printf head tail wc sort tr cut id hostname ps kill chmod ln touch tee pwd uname expr seq timeout nslookup"
BASE_LABEL="busybox-static/$(printf '%s' "$APPLETS" | md5sum | cut -c1-12)"
# Debian packages and a command each one provides (checked to decide what to install); chromium is
# the browser of the dashboard tests (playwright-core drives /usr/bin/chromium).
PACKAGES="redis-server:redis-server redis-tools:redis-cli docker.io:dockerd docker-registry:docker-registry \
busybox-static:busybox git:git haproxy:haproxy iptables:iptables curl:curl procps:pgrep util-linux:flock \
chromium:chromium mmdebstrap:mmdebstrap"
# The Debian and Node base images. Their labels hash their recipes: a changed recipe (mirror, package
# list, this machine's extra CAs, the host's Node) rebuilds them.
DEBIAN_IMAGE=slipway/debian:bookworm
DEBIAN_REMOTE=$REGISTRY_ADDR/$DEBIAN_IMAGE
DEBIAN_SUITE=bookworm
DEBIAN_INCLUDE=ca-certificates
NODE_IMAGE=slipway/node:20
NODE_REMOTE=$REGISTRY_ADDR/$NODE_IMAGE
# The CAs this machine trusts beyond Debian's (egress is TLS-intercepted): copied into the Debian root.
EXTRA_CA_DIR=/usr/local/share/ca-certificates
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

ENGINE_WAIT=60 REGISTRY_WAIT=20 REDIS_WAIT=20
MMDEBSTRAP_WAIT=900 IMPORT_WAIT=300 PUSH_WAIT=300

say() { printf '%s\n' "$*"; }
fail() { printf 'services.sh: FAILED: %s\n' "$*" >&2; exit 1; }
log_tail() { [[ -f $1 ]] && { printf -- '--- last lines of %s ---\n' "$1" >&2; tail -n 15 "$1" >&2; } || true; }

# --- probes (bounded: each answers within a few seconds) -----------------------------------------
engine_up() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
swarm_state() {
  local state
  state=$(timeout 10 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) && [[ -n $state ]] || state="unknown: no engine answers"
  echo "$state"
}
registry_up() { curl -fsS -m 5 -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }
redis_up() { [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
redis_conf() { { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get "$1" 2>/dev/null || true; } | sed -n 2p; }
image_label() { timeout 10 docker image inspect "$1" --format '{{index .Config.Labels "io.slipway.base"}}' 2>/dev/null; }
registry_has() { # registry_has REPOSITORY TAG
  curl -fsS -m 5 -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/$1/manifests/$2" 2>/dev/null
}

# wait_for SECONDS PROBE...: polls PROBE once a second until it succeeds or time runs out.
wait_for() {
  local limit=$1; shift
  local i
  for ((i = 0; i < limit; i++)); do "$@" && return 0; sleep 1; done
  "$@"
}

# A process that exists and is not a zombie (exited, waiting for a parent that may never reap it).
proc_alive() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# A pid file written by this script names a live process of the expected program.
ours_alive() { # ours_alive NAME PROGRAM
  local pidfile=$STATE/$1.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}
started_by() { ours_alive "$@" && echo "started by services.sh, pid $(cat "$STATE/$1.pid")" || echo "not started by services.sh"; }

# --- packages --------------------------------------------------------------------------------
install_missing() {
  local missing=() entry pkg cmd
  for entry in $PACKAGES; do
    pkg=${entry%%:*} cmd=${entry#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  # The base image needs a static busybox: Debian's plain `busybox` package is dynamically linked.
  if command -v busybox >/dev/null 2>&1 && ! dpkg -s busybox-static >/dev/null 2>&1; then
    missing+=(busybox-static)
  fi
  if ((${#missing[@]} == 0)); then
    say "packages: all present"
    return
  fi
  [[ $(id -u) == 0 ]] || fail "missing Debian packages (${missing[*]}) and not root: run as root or install them"
  say "packages: installing ${missing[*]}"
  # Keep the packages' own services (redis on 6379, a registry on 5000 with auth) from starting:
  # this script starts them itself, configured for slipway.
  local policy_created=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  } >"$STATE/apt.log" 2>&1 || rc=$?
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
  if ((rc != 0)); then
    log_tail "$STATE/apt.log"
    fail "apt-get could not install ${missing[*]} (exit $rc); full output in $STATE/apt.log"
  fi
  say "packages: installed ${missing[*]}"
}

# --- Docker Engine -----------------------------------------------------------------------------
start_dockerd() { # start_dockerd DRIVER: 0 when the engine answers, 1 when dockerd exited early
  local driver=$1 log=$STATE/dockerd.log
  say "docker engine: starting dockerd (storage driver $driver, log $log)"
  LOG_OFFSET=$(stat -c %s "$log" 2>/dev/null || echo 0)
  setsid nohup dockerd --storage-driver "$driver" --pidfile "$STATE/dockerd.pid" >>"$log" 2>&1 </dev/null 9>&- &
  local pid=$! i
  for ((i = 0; i < ENGINE_WAIT; i++)); do
    engine_up && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 1
  done
  log_tail "$log"
  fail "dockerd (pid $pid) did not answer within ${ENGINE_WAIT}s; see $log"
}

# The pid of a live dockerd on this machine, if any.
running_dockerd() {
  local pid
  for pid in $(pgrep -x dockerd 2>/dev/null); do
    proc_alive "$pid" && { echo "$pid"; return 0; }
  done
  return 0
}

up_engine() {
  if engine_up; then
    say "docker engine already running ($(started_by dockerd dockerd))"
    return
  fi
  local running
  running=$(running_dockerd)
  if [[ -n $running ]]; then
    # Maybe still starting: give it the same bounded time before declaring it broken.
    say "docker engine: dockerd (pid $running) runs but does not answer yet; waiting"
    wait_for "$ENGINE_WAIT" engine_up && { say "docker engine already running (answered after waiting)"; return; }
    fail "dockerd (pid $running) runs but does not answer on ${DOCKER_HOST:-/var/run/docker.sock}; stop it or check its log"
  fi
  [[ -z ${DOCKER_HOST:-} ]] || fail "no engine answers at DOCKER_HOST=$DOCKER_HOST; this script only starts a local dockerd"
  [[ $(id -u) == 0 ]] || fail "no Docker engine answers and starting dockerd needs root"
  # overlay2 is about 3x faster than vfs here; fall back only when the kernel refuses it.
  if start_dockerd overlay2; then
    say "started docker engine (overlay2)"
    return
  fi
  log_tail "$STATE/dockerd.log"
  local since
  since=$(tail -c +"$((LOG_OFFSET + 1))" "$STATE/dockerd.log")
  if grep -q 'swarmkit/manager' <<<"$since" && grep -q '^panic:' <<<"$since"; then
    # Seen here: dockerd 20.10's Swarm manager panics at start on a stored service update
    # (moby/moby#37883), so it crash-loops until that state is gone. Removing it is for a person.
    fail "dockerd crashes in its Swarm manager at start (moby/moby#37883): the stored Swarm state triggers it. To recover, losing all Swarm services: mv /var/lib/docker/swarm /var/lib/docker/swarm.broken-\$(date +%s), then run this again (it re-creates the swarm)"
  fi
  if ! grep -qiE 'overlay.*(not supported|unsupported|failed to mount|invalid argument)|driver not supported' <<<"$since"; then
    fail "dockerd exited right after starting, for a reason other than overlay2 (log above; full log $STATE/dockerd.log)"
  fi
  say "docker engine: this kernel refuses overlay2 (log above); retrying with vfs"
  start_dockerd vfs || { log_tail "$STATE/dockerd.log"; fail "dockerd exited with vfs too; see $STATE/dockerd.log"; }
  say "started docker engine (vfs)"
}

up_swarm() {
  local state
  state=$(swarm_state)
  case $state in
    active) say "swarm already active" ;;
    inactive)
      local out
      out=$(timeout 60 docker swarm init --advertise-addr 127.0.0.1 2>&1) || fail "docker swarm init failed: $out"
      say "started swarm (one node, advertise 127.0.0.1)"
      ;;
    *) fail "swarm is in state '$state' (expected active or inactive); see 'docker info'" ;;
  esac
}

# --- registry ----------------------------------------------------------------------------------
up_registry() {
  if registry_up; then
    say "registry already running on $REGISTRY_ADDR ($(started_by registry docker-registry))"
    return
  fi
  if timeout 2 bash -c "exec 3<>/dev/tcp/${REGISTRY_ADDR%:*}/${REGISTRY_ADDR#*:}" 2>/dev/null; then
    fail "port ${REGISTRY_ADDR#*:} is taken by something that is not a registry (GET /v2/ fails)"
  fi
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<EOF
# Written by infra/dev/services.sh: a development registry for slipway.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  setsid nohup docker-registry serve "$STATE/registry.yml" >>"$STATE/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/registry.pid"
  if ! wait_for "$REGISTRY_WAIT" registry_up; then
    log_tail "$STATE/registry.log"
    fail "registry did not answer on http://$REGISTRY_ADDR/v2/ within ${REGISTRY_WAIT}s; see $STATE/registry.log"
  fi
  say "started registry on $REGISTRY_ADDR (data $STATE/registry)"
}

# --- Redis -------------------------------------------------------------------------------------
up_redis() {
  if redis_up; then
    local policy
    policy=$(redis_conf maxmemory-policy)
    say "redis already running on 127.0.0.1:$REDIS_PORT ($(started_by redis redis-server); appendonly $(redis_conf appendonly), maxmemory-policy $policy)"
    [[ $policy == noeviction ]] || say "WARNING: redis on 127.0.0.1:$REDIS_PORT has maxmemory-policy $policy; slipway needs noeviction (redis-cli -p $REDIS_PORT config set maxmemory-policy noeviction)"
    return
  fi
  mkdir -p "$STATE/redis"
  cat >"$STATE/redis.conf" <<EOF
# Written by infra/dev/services.sh: the development Redis for slipway.
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $STATE/redis.pid
logfile $STATE/redis.log
dir $STATE/redis
appendonly yes
appendfsync everysec
maxmemory-policy noeviction
EOF
  local out
  out=$(redis-server "$STATE/redis.conf" 2>&1 9>&-) || { log_tail "$STATE/redis.log"; fail "redis-server did not start: $out"; }
  if ! wait_for "$REDIS_WAIT" redis_up; then
    log_tail "$STATE/redis.log"
    fail "redis did not answer on 127.0.0.1:$REDIS_PORT within ${REDIS_WAIT}s; see $STATE/redis.log"
  fi
  say "started redis on 127.0.0.1:$REDIS_PORT (AOF everysec, noeviction, data $STATE/redis)"
}

# --- base image --------------------------------------------------------------------------------
build_base_image() {
  local busybox root
  busybox=$(command -v busybox)
  file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
    dpkg -s busybox-static >/dev/null 2>&1 || fail "$busybox is not statically linked; install busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/tmp" "$root/var/www"
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  local applet
  for applet in $APPLETS; do ln -s busybox "$root/bin/$applet"; done
  ln -s /bin/busybox "$root/usr/bin/env"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  local out
  out=$(tar -C "$root" -c . | timeout 120 docker import \
    --change "LABEL io.slipway.base=\"$BASE_LABEL\"" \
    --change 'ENV PATH=/bin:/usr/bin' \
    - "$BASE_IMAGE" 2>&1) || { rm -rf "$root"; fail "docker import of $BASE_IMAGE failed: $out"; }
  rm -rf "$root"
}

up_base_image() {
  local label rebuilt=0
  label=$(image_label "$BASE_IMAGE" || true)
  if [[ $label == "$BASE_LABEL" ]]; then
    say "base image $BASE_IMAGE already present"
  else
    local what="built base image $BASE_IMAGE"
    timeout 10 docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && what="rebuilt base image $BASE_IMAGE: the old one lacked applets"
    build_base_image
    rebuilt=1
    say "$what"
  fi
  push_image "$BASE_IMAGE" "$BASE_REMOTE" slipway/busybox latest "$rebuilt"
}

# --- Debian and Node base images ---------------------------------------------------------------
# apt_uri SUITE DEFAULT: the first URI apt on this machine fetches SUITE from (deb822 .sources files,
# then one-line .list files), without a trailing slash; DEFAULT when none names it.
apt_uri() {
  local suite=$1 default=$2 uri=''
  local sources=(/etc/apt/sources.list.d/*.sources) lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  local f
  for f in "${sources[@]}"; do
    [[ -f $f && -z $uri ]] || continue
    uri=$(awk -v suite="$suite" '
      function flush() { if (deb && enabled && uri != "" && has) { print uri; found = 1; exit } deb = 0; enabled = 1; uri = ""; has = 0 }
      BEGIN { enabled = 1 }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1) }
      key == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      key == "enabled:" { if (tolower($2) == "no") enabled = 0 }
      key == "uris:" { uri = $2 }
      key == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
      END { if (!found) flush() }' "$f" 2>/dev/null) || uri=''
  done
  for f in "${lists[@]}"; do
    [[ -f $f && -z $uri ]] || continue
    uri=$(sed -E 's/#.*//; s/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }') || uri=''
  done
  uri=${uri:-$default}
  echo "${uri%/}"
}

# The extra CA files (sorted, relative to EXTRA_CA_DIR), as update-ca-certificates finds them.
extra_cas() { [[ -d $EXTRA_CA_DIR ]] && (cd "$EXTRA_CA_DIR" && find . -type f -name '*.crt' | sed 's|^\./||' | LC_ALL=C sort) || true; }

# Computed once per run: the apt lines of the Debian root, the hash of what makes the root (names its
# tarball), the label of the image (the root plus the image settings) and the label of the Node image.
debian_recipe() {
  [[ -z ${DEBIAN_LABEL:-} ]] || return 0
  local mirror security
  mirror=$(apt_uri "$DEBIAN_SUITE" http://deb.debian.org/debian)
  security=$(apt_uri "$DEBIAN_SUITE-security" http://deb.debian.org/debian-security)
  DEBIAN_APT_LINES=("deb $mirror $DEBIAN_SUITE main" "deb $mirror $DEBIAN_SUITE-updates main" "deb $security $DEBIAN_SUITE-security main")
  DEBIAN_CHANGES=(
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "ENV SSL_CERT_FILE=$CA_BUNDLE"
    "ENV NODE_EXTRA_CA_CERTS=$CA_BUNDLE"
    'CMD ["bash"]'
  )
  local root_recipe cas=''
  [[ -z $(extra_cas) ]] || cas=$(cd "$EXTRA_CA_DIR" && extra_cas | tr '\n' '\0' | xargs -0 sha256sum)
  # Bump the first word to force a new root when the way it is made changes.
  root_recipe=$(printf 'root-v1 mmdebstrap --variant=minbase --include=%s %s\n%s\n%s\n' \
    "$DEBIAN_INCLUDE" "$DEBIAN_SUITE" "$(printf '%s\n' "${DEBIAN_APT_LINES[@]}")" "$cas")
  DEBIAN_ROOT_HASH=$(printf '%s' "$root_recipe" | md5sum | cut -c1-12)
  DEBIAN_TARBALL=$STATE/images/debian-$DEBIAN_SUITE-$DEBIAN_ROOT_HASH.tar
  DEBIAN_LABEL="mmdebstrap/$(printf '%s\n' "$DEBIAN_ROOT_HASH" "${DEBIAN_CHANGES[@]}" | md5sum | cut -c1-12)"
  local npm_version
  npm_version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' /usr/lib/node_modules/npm/package.json 2>/dev/null | head -n1)
  NODE_LABEL="host-node/$(printf '%s\n' "$DEBIAN_LABEL" "$(stat -c '%s %Y' /usr/bin/node 2>/dev/null)" "$npm_version" | md5sum | cut -c1-12)"
}

# A customize hook that fails unless the root's bundle holds every extra CA (a line of each's base64).
ca_check_hook() {
  local ca
  printf 'set -e; '
  while IFS= read -r ca; do
    [[ -n $ca ]] || continue
    printf 'grep -qxF %q "$1%s" || { echo "%s is missing from the bundle" >&2; exit 1; }; ' \
      "$(sed -n 2p "$EXTRA_CA_DIR/$ca")" "$CA_BUNDLE" "$ca"
  done < <(extra_cas)
  printf 'true\n'
}

# Makes the Debian root with mmdebstrap into DEBIAN_TARBALL (written under a temporary name, then moved).
make_debian_root() {
  command -v mmdebstrap >/dev/null 2>&1 || fail "mmdebstrap is missing; install the Debian package mmdebstrap"
  [[ $(id -u) == 0 ]] || fail "making the Debian root with mmdebstrap needs root"
  mkdir -p "$STATE/images"
  local partial=$STATE/images/.partial-$$.tar log=$STATE/mmdebstrap.log
  local started=$SECONDS rc=0
  say "base image $DEBIAN_IMAGE: running mmdebstrap (first time on this machine, ~1-2 min; log $log)"
  # minbase plus ca-certificates; no docs, man pages or locales (as Docker's slim images); /dev is the
  # engine's. update-ca-certificates runs after the extra CAs are copied in, so the bundle has them.
  timeout "$MMDEBSTRAP_WAIT" mmdebstrap --mode=root --variant=minbase --format=tar \
    --include="$DEBIAN_INCLUDE" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --aptopt='Acquire::Retries "3"' \
    --customize-hook="mkdir -p \"\$1$EXTRA_CA_DIR\" && if [ -d $EXTRA_CA_DIR ]; then cp -a $EXTRA_CA_DIR/. \"\$1$EXTRA_CA_DIR/\"; fi" \
    --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null' \
    --customize-hook="$(ca_check_hook)" \
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
    --skip=output/dev \
    "$DEBIAN_SUITE" "$partial" "${DEBIAN_APT_LINES[@]}" >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    rm -f "$partial"
    log_tail "$log"
    fail "mmdebstrap of $DEBIAN_SUITE failed (exit $rc$( ((rc == 124)) && echo ", over ${MMDEBSTRAP_WAIT}s")); full output in $log"
  fi
  # One root per recipe is enough: older ones are of recipes no longer used.
  rm -f "$STATE/images/debian-$DEBIAN_SUITE-"*.tar
  mv "$partial" "$DEBIAN_TARBALL"
  say "base image $DEBIAN_IMAGE: mmdebstrap made $(du -h "$DEBIAN_TARBALL" | cut -f1) in $((SECONDS - started))s ($DEBIAN_TARBALL)"
}

# check_in IMAGE WHAT SCRIPT: runs SCRIPT (sh, no network) in a container of IMAGE and prints its
# output; fails when SCRIPT fails. An engine that cannot start containers at all (docker run exits
# 125, as inside fresh-check.sh's unprivileged container) gets a warning instead: nothing to check with.
check_in() {
  local out rc=0
  out=$(timeout 60 docker run --rm --network none "$1" sh -c "$3" 2>&1) || rc=$?
  if ((rc == 125)); then
    say "WARNING: $1 not checked ($2): this engine cannot start a container: $(tail -n1 <<<"$out")" >&2
    return 0
  fi
  ((rc == 0)) || fail "$1: $2 failed (exit $rc): $out"
  printf '%s\n' "$out"
}

import_debian_image() {
  local args=(--change "LABEL io.slipway.base=\"$DEBIAN_LABEL\"") change out
  for change in "${DEBIAN_CHANGES[@]}"; do args+=(--change "$change"); done
  out=$(timeout "$IMPORT_WAIT" docker import "${args[@]}" "$DEBIAN_TARBALL" "$DEBIAN_IMAGE" 2>&1) ||
    fail "docker import of $DEBIAN_IMAGE from $DEBIAN_TARBALL failed: $out"
  # apt runs and the CA bundle is there (mmdebstrap's hook checked that it holds the extra CAs).
  check_in "$DEBIAN_IMAGE" "apt-get and the CA bundle" 'apt-get --version >/dev/null && test -s "$SSL_CERT_FILE"' >/dev/null
}

# The host's Node (binary, npm, npm/npx links) committed on top of the Debian image.
build_node_image() {
  local node_version npm_version ctx cid out rc=0
  node_version=$(/usr/bin/node --version 2>/dev/null) || fail "/usr/bin/node does not run on this machine"
  [[ $node_version == v20.* ]] || fail "/usr/bin/node is $node_version, not Node 20"
  [[ -f /usr/lib/node_modules/npm/bin/npm-cli.js ]] || fail "npm is missing from /usr/lib/node_modules/npm"
  npm_version=$(/usr/bin/node /usr/lib/node_modules/npm/bin/npm-cli.js --version 2>/dev/null) || fail "the host's npm does not run"
  ctx=$(mktemp -d)
  mkdir -p "$ctx/usr/bin"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/bin/npx"
  cid=$(timeout 30 docker create "$DEBIAN_IMAGE" true 2>&1) || { rm -rf "$ctx"; fail "docker create from $DEBIAN_IMAGE failed: $cid"; }
  out=$(tar -c -C / usr/bin/node usr/lib/node_modules/npm -C "$ctx" usr/bin/npm usr/bin/npx |
    timeout "$IMPORT_WAIT" docker cp - "$cid:/" 2>&1) || rc=$?
  if ((rc == 0)); then
    out=$(timeout "$IMPORT_WAIT" docker commit \
      --change "LABEL io.slipway.base=\"$NODE_LABEL\"" --change 'CMD ["node"]' \
      "$cid" "$NODE_IMAGE" 2>&1) || rc=$?
  fi
  timeout 30 docker rm -f "$cid" >/dev/null 2>&1 || true
  rm -rf "$ctx"
  ((rc == 0)) || fail "building $NODE_IMAGE (host Node $node_version) failed: $out"
  out=$(check_in "$NODE_IMAGE" "node and npm" 'node --version && npm --version')
  [[ -z $out || $out == "$node_version"$'\n'"$npm_version" ]] ||
    fail "$NODE_IMAGE runs node/npm $(echo $out), expected $node_version $npm_version"
}

# push_image LOCAL REMOTE REPOSITORY TAG REBUILT: pushes when rebuilt or missing from the registry.
push_image() {
  local out
  if (($5)) || ! registry_has "$3" "$4"; then
    timeout 30 docker tag "$1" "$2"
    out=$(timeout "$PUSH_WAIT" docker push "$2" 2>&1) || fail "docker push $2 failed: $out"
    say "pushed $2"
  else
    say "registry already has $2"
  fi
}

up_debian_image() {
  debian_recipe
  local rebuilt=0
  if [[ $(image_label "$DEBIAN_IMAGE" || true) == "$DEBIAN_LABEL" ]]; then
    say "base image $DEBIAN_IMAGE already present"
  else
    local what="built base image $DEBIAN_IMAGE"
    timeout 10 docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 && what="rebuilt base image $DEBIAN_IMAGE: its recipe changed"
    if [[ -s $DEBIAN_TARBALL ]]; then
      say "base image $DEBIAN_IMAGE: importing the root made earlier ($DEBIAN_TARBALL)"
      what="$what (from the root kept in $STATE/images)"
    else
      make_debian_root
    fi
    import_debian_image
    rebuilt=1
    say "$what"
  fi
  push_image "$DEBIAN_IMAGE" "$DEBIAN_REMOTE" slipway/debian "$DEBIAN_SUITE" "$rebuilt"
}

up_node_image() {
  debian_recipe
  local rebuilt=0
  if [[ ! -e /usr/bin/node ]]; then
    # A bare machine (fresh-check.sh) has no Node yet: nothing to copy. Tests that need it will not run.
    say "WARNING: base image $NODE_IMAGE not built: this machine has no /usr/bin/node (install Node 20, then run up again)"
    return
  fi
  if [[ $(image_label "$NODE_IMAGE" || true) == "$NODE_LABEL" ]]; then
    say "base image $NODE_IMAGE already present"
  else
    local what="built base image $NODE_IMAGE"
    timeout 10 docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 && what="rebuilt base image $NODE_IMAGE: its recipe changed"
    build_node_image
    rebuilt=1
    say "$what (host Node $(/usr/bin/node --version) on $DEBIAN_IMAGE)"
  fi
  push_image "$NODE_IMAGE" "$NODE_REMOTE" slipway/node 20 "$rebuilt"
}

# --- commands ----------------------------------------------------------------------------------
cmd_up() {
  install_missing
  up_engine
  up_swarm
  up_registry
  up_redis
  up_base_image
  up_debian_image
  up_node_image
  say "services up (state $STATE)"
}

cmd_status() {
  local down=0
  if engine_up; then
    say "docker engine: up ($(timeout 10 docker info --format '{{.ServerVersion}}, {{.Driver}}' 2>/dev/null); $(started_by dockerd dockerd))"
  else
    say "docker engine: down"; down=1
  fi
  local swarm
  swarm=$(swarm_state)
  if [[ $swarm == active ]]; then say "swarm: up (active)"; else say "swarm: down ($swarm)"; down=1; fi
  if registry_up; then
    say "registry: up ($REGISTRY_ADDR; $(started_by registry docker-registry))"
  else
    say "registry: down ($REGISTRY_ADDR)"; down=1
  fi
  if redis_up; then
    say "redis: up (127.0.0.1:$REDIS_PORT; appendonly $(redis_conf appendonly), maxmemory-policy $(redis_conf maxmemory-policy); $(started_by redis redis-server))"
  else
    say "redis: down (127.0.0.1:$REDIS_PORT)"; down=1
  fi
  if [[ $(image_label "$BASE_IMAGE" || true) == "$BASE_LABEL" ]]; then
    say "base image: up ($BASE_IMAGE)"
  else
    say "base image: down ($BASE_IMAGE missing or outdated)"; down=1
  fi
  debian_recipe
  if [[ $(image_label "$DEBIAN_IMAGE" || true) == "$DEBIAN_LABEL" ]]; then
    say "debian base image: up ($DEBIAN_IMAGE)"
  else
    say "debian base image: down ($DEBIAN_IMAGE missing or outdated)"; down=1
  fi
  if [[ $(image_label "$NODE_IMAGE" || true) == "$NODE_LABEL" ]]; then
    say "node base image: up ($NODE_IMAGE)"
  else
    say "node base image: down ($NODE_IMAGE missing or outdated)"; down=1
  fi
  return $down
}

stop_ours() { # stop_ours NAME PROGRAM WAIT
  local name=$1 program=$2 limit=$3 pid i
  if ! ours_alive "$name" "$program"; then
    rm -f "$STATE/$name.pid"
    say "$name: not started by services.sh, left alone"
    return
  fi
  pid=$(cat "$STATE/$name.pid")
  kill -TERM "$pid"
  for ((i = 0; i < limit; i++)); do proc_alive "$pid" || break; sleep 1; done
  if proc_alive "$pid"; then
    fail "$name (pid $pid) did not stop within ${limit}s after SIGTERM"
  fi
  rm -f "$STATE/$name.pid"
  say "stopped $name (pid $pid)"
}

cmd_down() {
  stop_ours redis redis-server 20
  stop_ours registry docker-registry 20
  # Stopping a dockerd this script started also stops its Swarm tasks; a swarm is left joined.
  stop_ours dockerd dockerd 40
}

main() {
  local cmd=${1:-}
  case $cmd in
    up | down | status) ;;
    *) printf 'usage: %s up|down|status\n' "$0" >&2; exit 2 ;;
  esac
  mkdir -p "$STATE" 2>/dev/null || fail "cannot create state folder $STATE (set SLIPWAY_DEV_STATE)"
  if [[ $cmd == status ]]; then
    cmd_status
    return
  fi
  # Test suites and the demo may call `up` at the same time: one at a time per state folder.
  exec 9>"$STATE/services.lock"
  flock -w 300 9 || fail "another services.sh holds $STATE/services.lock for over 300s"
  "cmd_$cmd"
}

main "$@"
