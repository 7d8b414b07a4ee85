#!/bin/sh
# nodemesh container entrypoint.
#
# Builds the node name from the container's address at start (it is only known then),
# takes the cookie from the environment or a secret file, and execs the node so that it
# runs in the foreground as PID 1 and receives SIGTERM from `docker stop` or the kubelet.
#
#   node name  $NODEMESH_NAME, else $NODEMESH_BASENAME@<host> (basename default "nodemesh")
#   host       $NODEMESH_HOST (e.g. a StatefulSet pod's DNS name), else $POD_IP (Kubernetes
#              downward API), else the text at $NODEMESH_HOST_URL (e.g. Rancher's metadata
#              http://rancher-metadata/latest/self/container/primary_ip), else the first
#              non-loopback address of `hostname -i` (Docker)
#   cookie     $NODEMESH_COOKIE, else the file $NODEMESH_COOKIE_FILE
#              (default /run/secrets/nodemesh_cookie, where Docker mounts secrets)
#   port       $NODEMESH_DIST_PORT: fixed distribution port (so firewalls can allow it)
#
# Arguments: none or options (`--strategy gossip`) -> `nodemesh run --name NAME ...`;
# `run ...` and `doctor ...` get --name too; other nodemesh commands (discover, ping,
# names, epmd) run as given; anything else (`sh`) is executed as is.
set -eu

EX_CONFIG=78

die() {
    printf 'nodemesh-entrypoint: %s\n' "$*" >&2
    exit "$EX_CONFIG"
}

first_address() {
    # `hostname -i` prints the addresses the container's host name resolves to.
    for address in $(hostname -i 2>/dev/null || true); do
        case "$address" in
            127.* | ::1 | fe80:* | FE80:*) continue ;;
        esac
        printf '%s\n' "$address"
        return 0
    done
    return 1
}

fetch() {
    "${NODEMESH_PYTHON:-python3}" -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
    print(answer.read().decode().strip())
' "$1"
}

node_host() {
    if [ -n "${NODEMESH_HOST:-}" ]; then
        printf '%s\n' "$NODEMESH_HOST"
    elif [ -n "${POD_IP:-}" ]; then
        printf '%s\n' "$POD_IP"
    elif [ -n "${NODEMESH_HOST_URL:-}" ]; then
        host=$(fetch "$NODEMESH_HOST_URL") || die "cannot read the host from $NODEMESH_HOST_URL"
        [ -n "$host" ] || die "$NODEMESH_HOST_URL answered nothing"
        printf '%s\n' "$host"
    else
        first_address || die "cannot tell this container's address: set POD_IP (Kubernetes" \
            "downward API: status.podIP) or NODEMESH_HOST"
    fi
}

node_name() {
    if [ -n "${NODEMESH_NAME:-}" ]; then
        printf '%s\n' "$NODEMESH_NAME"
        return 0
    fi
    basename=${NODEMESH_BASENAME:-nodemesh}
    case "$basename" in
        "" | *[!A-Za-z0-9_-]*)
            die "NODEMESH_BASENAME='$basename' may only hold letters, digits, '_' and '-'" ;;
    esac
    host=$(node_host) || exit "$EX_CONFIG"
    printf '%s@%s\n' "$basename" "$host"
}

load_cookie() {
    # $1 = "optional": leave the cookie unset instead of failing (doctor reports it).
    if [ -n "${NODEMESH_COOKIE:-}" ]; then
        return 0
    fi
    file=${NODEMESH_COOKIE_FILE:-/run/secrets/nodemesh_cookie}
    if [ -r "$file" ]; then
        NODEMESH_COOKIE=$(cat "$file")
        [ -n "$NODEMESH_COOKIE" ] || die "the cookie file $file is empty"
        export NODEMESH_COOKIE
    elif [ "${1:-}" = optional ]; then
        return 0
    elif [ -n "${NODEMESH_COOKIE_FILE:-}" ]; then
        die "cannot read the cookie file NODEMESH_COOKIE_FILE=$file"
    else
        die "no cookie: set NODEMESH_COOKIE (from a Kubernetes Secret) or mount the cookie" \
            "at $file (a Docker secret named nodemesh_cookie)"
    fi
}

case "${1:-}" in
    "" | -*) set -- run "$@" ;;
esac

case "$1" in
    run)
        shift
        load_cookie
        NODEMESH_NAME=$(node_name) || exit "$EX_CONFIG"
        export NODEMESH_NAME
        if [ -n "${NODEMESH_DIST_PORT:-}" ]; then
            set -- --port "$NODEMESH_DIST_PORT" "$@"
        fi
        exec nodemesh run --name "$NODEMESH_NAME" "$@"
        ;;
    doctor)
        shift
        load_cookie optional
        if NODEMESH_NAME=$(node_name 2>/dev/null); then
            export NODEMESH_NAME
            exec nodemesh doctor --name "$NODEMESH_NAME" "$@"
        fi
        exec nodemesh doctor "$@"
        ;;
    discover | ping | names | epmd)
        exec nodemesh "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
