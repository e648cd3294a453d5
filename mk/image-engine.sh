#!/usr/bin/env bash
# A private Docker engine for `make test-image`: install, start, stop, and the locally built base image.
#
# The engine runs in its own network namespace that holds nothing but loopback, so a `--network host`
# container (and every build step) provably has no network beyond 127.0.0.1. Its data root lives under
# IMAGE_CACHE and survives between runs: the base image is built once (debootstrap) and reused.
set -euo pipefail

CACHE=${IMAGE_CACHE:?IMAGE_CACHE is not set: the directory that holds the engine data and the base image}
BASE_IMAGE=${IMAGE_BASE:?IMAGE_BASE is not set: the name of the local base image (the Dockerfile PYTHON_IMAGE)}
SUITE=${IMAGE_BASE_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUN_DIR=$CACHE/run
SOCKET=$RUN_DIR/docker.sock
PIDFILE=$RUN_DIR/docker.pid
LOG=$CACHE/dockerd.log
export DOCKER_HOST=unix://$SOCKET DOCKER_BUILDKIT=0

die() { echo "image-engine: $*" >&2; exit 1; }

# dockerd leaves its network namespace bind-mounted under the exec root (which also keeps it alive)
release_exec_root() {
  local target
  for target in $(findmnt -rn -o TARGET | grep "^$CACHE/exec/" | sort -r || true); do umount "$target"; done
  rm -rf "$CACHE/exec"
}

engine_pid() {
  [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"
}

install_tools() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run 'sudo apt-get install ${missing[*]}' (or make test-image as root)"
  echo "image-engine: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
  [ "$(id -u)" = 0 ] || die "dockerd needs root: run make test-image as root (CI runs as root)"
  if pid=$(engine_pid); then die "an engine from an earlier run is still up (pid $pid): run '$0 stop'"; fi
  mkdir -p "$CACHE/data" "$RUN_DIR"
  release_exec_root
  rm -f "$SOCKET" "$PIDFILE"
  # unshare execs sh, which execs dockerd: the background PID is dockerd's. No bridge, no iptables: the
  # namespace has no interface besides lo, and nothing may leave it.
  unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh \
    dockerd --bridge=none --iptables=false --ip-masq=false \
      --data-root "$CACHE/data" --exec-root "$CACHE/exec" --pidfile "$PIDFILE" \
      -H "unix://$SOCKET" >"$LOG" 2>&1 &
  local deadline=$((SECONDS + 60))
  until docker version >/dev/null 2>&1; do
    kill -0 $! 2>/dev/null || { tail -n 20 "$LOG" >&2; die "dockerd exited while starting (log: $LOG)"; }
    [ $SECONDS -lt $deadline ] || { tail -n 20 "$LOG" >&2; die "dockerd did not answer on $SOCKET within 60 s"; }
    sleep 0.5
  done
  echo "image-engine: dockerd $(docker version --format '{{.Server.Version}}') up (pid $!, $SOCKET)"
}

stop() {
  local pid
  pid=$(engine_pid) || { release_exec_root; rm -f "$PIDFILE" "$SOCKET"; return 0; }
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid"; break; fi
    sleep 0.5
  done
  release_exec_root
  rm -f "$SOCKET"
  echo "image-engine: dockerd stopped"
}

# The official python images are not reachable: a Debian root with Python, pip and CA certificates plays
# their part. Like theirs, its Python is not "externally managed" and /usr/local/bin/python exists.
base() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "image-engine: base image $BASE_IMAGE is cached"
    return 0
  fi
  local rootfs=$CACHE/rootfs-$SUITE started=$SECONDS
  rm -rf "$rootfs"
  echo "image-engine: building $BASE_IMAGE with debootstrap $SUITE (about 80 s)"
  debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap $SUITE from $MIRROR failed"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["python3"]' \
    -m "debootstrap --variant=minbase $SUITE + python3, python3-pip, ca-certificates" \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  echo "image-engine: $BASE_IMAGE built in $((SECONDS - started)) s"
}

case "${1:-}" in
  install) install_tools ;;
  start) start ;;
  stop) stop ;;
  base) base ;;
  *) die "usage: $0 install|start|stop|base" ;;
esac
