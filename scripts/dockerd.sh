#!/usr/bin/env bash
# Dev/CI helper: run a Docker engine without systemd.
#   dockerd.sh start   - nothing if `docker info` answers; else start dockerd in the background
#   dockerd.sh stop    - stop only a dockerd this script started (its own pidfile)
#   dockerd.sh restart - stop then start a dockerd this script started (same options: none);
#                        refuses one it did not start (its owner restarts that one)
#   dockerd.sh status  - say whether the engine answers and who started it
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd-charm-dev.log}
PIDFILE=${DOCKERD_PIDFILE:-/run/dockerd-charm-dev.pid}
DOCKER_PIDFILE=/var/run/docker.pid   # dockerd's own pidfile (default --pidfile)
WAIT=${DOCKERD_WAIT:-30}

log() { echo "dockerd: $*"; }
die() { echo "dockerd: ERROR: $*" >&2; exit 1; }

answers() { timeout 10 docker info >/dev/null 2>&1; }

# pid_is_dockerd PID: the process exists and is a dockerd
pid_is_dockerd() {
    [ -n "${1:-}" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ]
}

our_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if pid_is_dockerd "$pid"; then echo "$pid"; return 0; fi
    rm -f "$PIDFILE"    # stale
    return 1
}

start() {
    if answers; then
        log "engine already answering"
        return 0
    fi
    command -v dockerd >/dev/null || die "dockerd not found (run scripts/setup-host.sh)"
    command -v docker >/dev/null || die "docker CLI not found (run scripts/setup-host.sh)"

    local pid
    if pid=$(our_pid); then
        log "dockerd (pid $pid) started earlier is not answering yet; waiting"
    else
        if [ -f "$DOCKER_PIDFILE" ]; then
            local other
            other=$(cat "$DOCKER_PIDFILE" 2>/dev/null || true)
            if pid_is_dockerd "$other"; then
                log "a dockerd (pid $other, not ours) exists but is not answering; waiting for it"
                pid=$other
            else
                log "removing stale $DOCKER_PIDFILE (pid ${other:-?} is not a dockerd)"
                rm -f "$DOCKER_PIDFILE"
            fi
        fi
        if [ -z "${pid:-}" ]; then
            mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
            log "starting dockerd (log: $LOG)"
            echo "=== $(date -Is) dockerd.sh start" >>"$LOG"
            setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
            pid=$!
            echo "$pid" >"$PIDFILE"
        fi
    fi

    local t0=$SECONDS
    while (( SECONDS - t0 < WAIT )); do
        if answers; then
            log "engine answering (pid $pid, $((SECONDS - t0))s)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            tail -n 20 "$LOG" >&2 || true
            die "dockerd (pid $pid) exited; see $LOG"
        fi
        sleep 0.2
    done
    tail -n 20 "$LOG" >&2 || true
    die "dockerd (pid $pid) did not answer \`docker info\` within ${WAIT}s; see $LOG"
}

stop() {
    local pid
    if ! pid=$(our_pid); then
        log "no dockerd started by this script is running; nothing to stop"
        return 0
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "dockerd did not stop within 30s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

status() {
    local pid
    if answers; then
        if pid=$(our_pid); then
            log "running, started by this script (pid $pid)"
        else
            log "running (not started by this script)"
        fi
        return 0
    fi
    if pid=$(our_pid); then
        log "started by this script (pid $pid) but not answering"
    else
        log "not running"
    fi
    return 1
}

restart() {
    our_pid >/dev/null || die "the running dockerd was not started by this script: not restarting it"
    stop
    start
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) restart ;;
    status) status ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
