#!/usr/bin/env bash
# Reruns the performance figures of the README: a fresh daemon per scenario, driven by the
# `handoff` load generator, which samples the daemon's RSS and CPU from /proc. Loopback only.
#
#   bash benches/perf.sh [OUT_DIR]      (default: bench-out)
#
# Writes one JSON summary per scenario and prints the human summary lines. Then
#   python3 benches/chart.py OUT_DIR/mock-c*.json > benches/mock-scaling.svg
# redraws the chart. Open files are capped at 20,000 per process here: a mock stream costs the
# daemon one fd and the load generator one, so 15,000 concurrent streams is the top.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out}
mkdir -p "$out"
cargo build --release --bins --quiet
bin=target/release
socket=$(mktemp -u /tmp/sd-perf-XXXXXX.sock)

run() { # name, daemon flags..., --, handoff flags...
    local name=$1; shift
    local daemon_args=()
    while [ "$1" != "--" ]; do daemon_args+=("$1"); shift; done
    shift
    "$bin/streaming-daemon" -socket "$socket" -metrics-addr= -log-level warn \
        -max-connections 20000 "${daemon_args[@]}" 2>"$out/$name.daemon.log" &
    local pid=$!
    for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
    "$bin/handoff" -socket "$socket" -pid "$pid" -output "$out/$name.json" "$@" 2>&1 | tail -n 1
    kill -TERM "$pid"
    wait "$pid" || true
}

echo "== $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
# (a) long mock streams (~15 s: 17 gaps of 833 ms), ramped up over 10 s.
for c in 1000 2500 5000 10000 15000; do
    run "mock-c$c" -message-delay 833ms -- -n "$c" -c "$c" -ramp-up 10s -timeout 60s
done
# (b) throughput: 50,000 short streams, 200 at a time, no delay between events.
run mock-burst -message-delay 0 -- -n 50000 -c 200 -socketpair -timeout 30s
