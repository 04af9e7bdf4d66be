#!/bin/sh
# Make sure redis-server and mosquitto exist: the tests start their own on free loopback ports.
# mosquitto_pub (mosquitto-clients) too: benchmarks/live.py publishes with it. And promtool
# (package prometheus): the tests check and unit-test monitoring/prometheus-rules.yaml with it.
# Idempotent: does nothing when all are installed; installs them with apt when root; otherwise
# says what to install and fails, so `make test` stops with a clear reason.
set -eu

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]; }

missing=""
have redis-server || missing="$missing redis-server"
have mosquitto || missing="$missing mosquitto"
have mosquitto_pub || missing="$missing mosquitto-clients"
have promtool || missing="$missing prometheus"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y $missing
    # Debian starts the packaged services on their standard ports; tests never use those.
    # Of prometheus only promtool is wanted: stop the server it starts, where systemd runs.
    case "$missing" in *prometheus*)
        systemctl disable --now prometheus >/dev/null 2>&1 || true ;;
    esac
    exit 0
fi

echo "ensure-servers: missing:$missing" >&2
echo "install them, e.g.: sudo apt-get install -y$missing (or brew install redis mosquitto prometheus)" >&2
exit 1
