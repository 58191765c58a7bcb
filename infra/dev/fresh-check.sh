#!/usr/bin/env bash
# Manual check that services.sh works on a machine that has none of the services: runs
# `services.sh up`, `up` again, `status`, `down`, `up` inside a fresh Debian bookworm container
# (its own network namespace, so its dockerd never touches the host's docker0). The rootfs comes
# from debootstrap (installed when missing) and is cached in $SLIPWAY_FRESH_DIR. Takes minutes and
# downloads ~300 MB of Debian packages: it is not part of `npm test`.
# Unprivileged on purpose (gVisor and many CI hosts refuse --privileged): its dockerd runs, with vfs,
# but cannot start containers, which the script never needs to.
set -euo pipefail
DIR=${SLIPWAY_FRESH_DIR:-/var/tmp/slipway-fresh}
IMAGE=slipway-dev/bookworm-fresh:latest
NAME=slipway-fresh-check-$$
SCRIPT=$(cd "$(dirname "$0")" && pwd)/services.sh

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  if [[ ! -x $DIR/rootfs/bin/bash ]]; then
    rm -rf "$DIR/rootfs"
    mkdir -p "$DIR"
    echo "fresh-check: debootstrap bookworm into $DIR/rootfs"
    debootstrap --variant=minbase bookworm "$DIR/rootfs" http://deb.debian.org/debian >"$DIR/debootstrap.log" 2>&1
  fi
  tar -C "$DIR/rootfs" -c . | docker import --change 'LABEL io.slipway.kind=fresh-check' - "$IMAGE" >/dev/null
fi

docker run -d --name "$NAME" --label io.slipway.kind=fresh-check --cap-add SYS_ADMIN --cap-add NET_ADMIN \
  -v "$SCRIPT:/services.sh:ro" "$IMAGE" sleep 3600 >/dev/null
trap 'docker rm -f "$NAME" >/dev/null' EXIT
step() { printf '\n=== fresh-check: services.sh %s\n' "$1"; docker exec "$NAME" bash /services.sh "$1" 2>&1 | grep -v '^time=' ; }
step up
step up
step status
step down
step up
step status
echo; echo "fresh-check: all steps passed"
