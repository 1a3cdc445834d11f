#!/usr/bin/env bash
# Stop everything tests/harness/up.sh started (by the PIDs it recorded), idempotently.
#
#   bash tests/harness/down.sh          # E2E_DIR defaults to /tmp/rp-e2e
#
# Each server was started with setsid, so its PID is also its process-group id: the group
# gets SIGTERM, then SIGKILL after a grace period. A PID is only signalled while its start
# time still matches the one recorded (no stray kill after PID reuse). Leftover mounts of
# containerd/dockerd under $E2E_DIR are unmounted. Keeps certificates, images and logs.
set -euo pipefail

E2E_DIR="${E2E_DIR:-/tmp/rp-e2e}"
PIDS="$E2E_DIR/pids"
log() { printf 'down: %s\n' "$*"; }

starttime() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }
state() { awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null; }
# alive PID STARTTIME: the recorded process still exists (not a zombie) and is the same one
alive() {
  local s; s="$(state "$1")" || return 1
  [[ -n "$s" && "$s" != Z && "$(starttime "$1")" == "$2" ]]
}
group_alive() {  # any non-zombie member of process group $1
  local p
  for p in $(pgrep -g "$1" 2>/dev/null); do
    [[ "$(state "$p")" != Z ]] && return 0
  done
  return 1
}

# stop NAME GRACE_SECONDS
stop() {
  local name="$1" grace="$2" f="$PIDS/$1.pid" pid start
  [[ -f "$f" ]] || return 0
  read -r pid start <"$f" || true
  if [[ -n "${pid:-}" ]] && alive "$pid" "${start:-}"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < grace * 10; i++)); do
      group_alive "$pid" || alive "$pid" "$start" || break
      sleep 0.1
    done
    if group_alive "$pid" || alive "$pid" "$start"; then
      log "$name (pid $pid) still running after ${grace}s, sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        group_alive "$pid" || alive "$pid" "$start" || break
        sleep 0.1
      done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

if [[ -d "$PIDS" ]]; then
  # dockerd before containerd (it uses containerd); the rest in any order
  stop dockerd 15
  stop containerd 10
  # containerd shims run in their own sessions: find them by their -address argument,
  # which names this E2E_DIR's socket, and stop them by PID
  if [[ -d "$E2E_DIR/containerd" ]]; then
    for d in /proc/[0-9]*; do
      p="${d#/proc/}"
      cmd="$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null || true)"
      if [[ "$cmd" == *containerd-shim*"$E2E_DIR/containerd/"* ]]; then
        log "stopping leftover shim $p"
        kill -KILL "$p" 2>/dev/null || true
      fi
    done
  fi
  for f in "$PIDS"/*.pid; do
    [[ -e "$f" ]] || continue
    n="$(basename "$f" .pid)"
    stop "$n" 5
  done
fi

# unmount anything left under $E2E_DIR (deepest first)
if [[ -d "$E2E_DIR" ]]; then
  awk -v d="$E2E_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    log "unmounting $m"
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
fi
rm -f "$E2E_DIR/env"
exit 0
