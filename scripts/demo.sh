#!/usr/bin/env bash
# `make run`: the daemon on its built-in defaults (memory state, HTTP ingest on 127.0.0.1:8080,
# alerts printed on the console), fed six hours of a generated stream played in about a minute.
# The board is at http://127.0.0.1:8080/ ; Ctrl-C stops the daemon (it drains, then exits).
# WATCHTOWER_CONFIG=FILE runs it on that config; WATCHTOWER_DEMO_PORT is then its http.port.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${WATCHTOWER_DEMO_PORT:-8080}
CONFIG=${WATCHTOWER_CONFIG:-}

args=(run)
if [[ -n "$CONFIG" ]]; then args+=(--config "$CONFIG"); fi
"$BIN/watchtower" "${args[@]}" &
daemon=$!
stop() { kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" || true; }
trap stop EXIT
trap 'exit 130' INT TERM

ready=no
for _ in $(seq 100); do  # wait until it is ready (up to 10 s)
    if "$BIN/python" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)" \
        "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then ready=yes; break; fi
    if ! kill -0 "$daemon" 2>/dev/null; then echo "demo: the daemon did not start" >&2; exit 1; fi
    sleep 0.1
done
if [[ $ready != yes ]]; then
    echo "demo: nothing ready at http://127.0.0.1:$PORT/readyz after 10 s (a config with another" \
        "http.port needs WATCHTOWER_DEMO_PORT set to it)" >&2
    exit 1
fi

echo "demo: board at http://127.0.0.1:$PORT/ , feeding ${HOURS:-6} h of mentions at ${SPEED:-360}x"
"$BIN/watchtower" feed --url "http://127.0.0.1:$PORT/v1/mentions" --speed "${SPEED:-360}" \
    --seed "${SEED:-1}" --threads "${THREADS:-2000}" --hours "${HOURS:-6}"
echo "demo: feed done; the daemon keeps running (quiet threads resolve live). Ctrl-C to stop."
wait "$daemon"
