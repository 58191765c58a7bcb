#!/usr/bin/env bash
# The real services slipway's tests, demo and development need, on one Debian bookworm machine:
#   Docker Engine (+ a one-node Swarm), a registry on 127.0.0.1:5000, a Redis with AOF,
#   and the local base image slipway/busybox:latest (no image can be pulled here).
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
chromium:chromium"

ENGINE_WAIT=60 REGISTRY_WAIT=20 REDIS_WAIT=20

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
base_label() { timeout 10 docker image inspect "$BASE_IMAGE" --format '{{index .Config.Labels "io.slipway.base"}}' 2>/dev/null; }
registry_has_base() {
  curl -fsS -m 5 -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/slipway/busybox/manifests/latest" 2>/dev/null
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
  label=$(base_label || true)
  if [[ $label == "$BASE_LABEL" ]]; then
    say "base image $BASE_IMAGE already present"
  else
    local what="built base image $BASE_IMAGE"
    timeout 10 docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && what="rebuilt base image $BASE_IMAGE: the old one lacked applets"
    build_base_image
    rebuilt=1
    say "$what"
  fi
  if ((rebuilt)) || ! registry_has_base; then
    local out
    timeout 30 docker tag "$BASE_IMAGE" "$BASE_REMOTE"
    out=$(timeout 120 docker push "$BASE_REMOTE" 2>&1) || fail "docker push $BASE_REMOTE failed: $out"
    say "pushed $BASE_REMOTE"
  else
    say "registry already has $BASE_REMOTE"
  fi
}

# --- commands ----------------------------------------------------------------------------------
cmd_up() {
  install_missing
  up_engine
  up_swarm
  up_registry
  up_redis
  up_base_image
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
  if [[ $(base_label || true) == "$BASE_LABEL" ]]; then
    say "base image: up ($BASE_IMAGE)"
  else
    say "base image: down ($BASE_IMAGE missing or outdated)"; down=1
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
