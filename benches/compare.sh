#!/usr/bin/env bash
# Side by side, in one run: this checkout's daemon against another build of it (an older
# commit, say), on five of perf.sh's scenarios (the relay over TLS, and from an upstream slow to
# answer, too), with the same load generator. Loopback only.
#
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release --bins)
#   bash benches/compare.sh /tmp/old/target/release/streaming-daemon [OUT_DIR]
#
# The other build must take the flags used here (mock, openai, -message-delay, -max-connections);
# this checkout's runs with -workers 1, the other as it comes (one loop before workers existed)
# plus OTHER_FLAGS (e.g. OTHER_FLAGS="-workers 1" for a build that has workers).
set -euo pipefail
cd "$(dirname "$0")/.."
other=${1:?usage: compare.sh OTHER_DAEMON [OUT_DIR]}
out=${2:-bench-out/compare}
mkdir -p "$out"
cargo build --release --bins --example fake_openai --quiet
bin=target/release
socket=$(mktemp -u /tmp/sd-compare-XXXXXX.sock)

run() { # name, daemon binary, daemon flags..., --, handoff flags...
    local name=$1 daemon=$2
    shift 2
    local daemon_args=()
    while [ "$1" != "--" ]; do daemon_args+=("$1"); shift; done
    shift
    "$daemon" -socket "$socket" -metrics-addr= -log-level warn -max-connections 20000 \
        "${daemon_args[@]}" 2>"$out/$name.daemon.log" &
    local pid=$!
    for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
    "$bin/handoff" -socket "$socket" -pid "$pid" -output "$out/$name.json" "$@" 2>&1 | tail -n 1
    kill -TERM "$pid"
    wait "$pid" || true
}

# Two local fake OpenAI-compatible upstreams, plain and TLS: 100 chunks 100 ms apart each.
start_upstream() { # name, extra flags...
    local name=$1; shift
    "$bin/examples/fake_openai" -listen 127.0.0.1:0 -events 100 -delay-ms 100 "$@" >"$out/$name.addr" &
    upstreams+=($!)
    for _ in $(seq 1 200); do [ -s "$out/$name.addr" ] && break; sleep 0.05; done
    cut -d: -f2 "$out/$name.addr"
}
upstreams=()
trap 'kill "${upstreams[@]}" 2>/dev/null || true' EXIT
start_upstream plain >"$out/plain.port"
start_upstream tls -tls >"$out/tls.port"
# A third that takes 3 s before each answer's head, as a model does before its first token.
start_upstream wait -head-delay-ms 3000 >"$out/wait.port"
port=$(cat "$out/plain.port")
tls_port=$(cat "$out/tls.port")
wait_port=$(cat "$out/wait.port")

echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for who in other this; do
    if [ "$who" = this ]; then daemon=$bin/streaming-daemon; extra=(-workers 1); else daemon=$other; read -ra extra <<<"${OTHER_FLAGS:-}"; fi
    run "$who-long" "$daemon" "${extra[@]}" -message-delay 833ms -- -n 10000 -c 10000 -ramp-up 10s -timeout 60s
    run "$who-burst" "$daemon" "${extra[@]}" -message-delay 0 -- -n 50000 -c 200 -socketpair -timeout 30s
    run "$who-relay" "$daemon" "${extra[@]}" -backend openai -openai-base "http://127.0.0.1:$port/v1" \
        -- -n 2000 -c 2000 -ramp-up 5s -timeout 60s
    SSL_CERT_FILE=tests/certs/ca.pem run "$who-relay-tls" "$daemon" "${extra[@]}" -backend openai \
        -openai-base "https://localhost:$tls_port/v1" -- -n 2000 -c 2000 -ramp-up 5s -timeout 60s
    run "$who-relay-wait" "$daemon" "${extra[@]}" -backend openai \
        -openai-base "http://127.0.0.1:$wait_port/v1" -- -n 2000 -c 2000 -ramp-up 1s -timeout 60s
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'scenario':<10} {'daemon':<6} {'CPU s/1k':>9} {'RSS B/stream':>13} {'TTFB p50':>9} {'TTFB p99':>9}")
for scenario in ("long", "burst", "relay", "relay-tls", "relay-wait"):
    for who in ("other", "this"):
        s = json.load(open(f"{out}/{who}-{scenario}.json"))
        d = s["daemon"]
        print(f"{scenario:<10} {who:<6} {d['cpu_seconds_per_1000_streams']:>9.3f} "
              f"{d['rss_per_stream_bytes']:>13} {s['ttfb_ms']['p50']:>9.2f} {s['ttfb_ms']['p99']:>9.2f}")
PY
