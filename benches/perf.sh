#!/usr/bin/env bash
# Reruns the performance figures of the README: a fresh daemon per scenario, driven by the
# `handoff` load generator, which samples the daemon's RSS and CPU from /proc. Loopback only.
#
#   bash benches/perf.sh [OUT_DIR]      (default: bench-out)
#
# Writes one JSON summary per scenario and prints the human summary lines. Then
#   python3 benches/chart.py OUT_DIR/mock-c{1000,2500,5000,10000,15000}.json > NEW.svg
# draws a new chart (committed charts stay as they were measured). Open files are capped at
# 20,000 per process here: a mock stream costs the daemon one fd and the load generator one, so
# 15,000 concurrent streams is the top.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out}
mkdir -p "$out"
cargo build --release --bins --example fake_openai --quiet
bin=target/release
socket=$(mktemp -u /tmp/sd-perf-XXXXXX.sock)

run() { # name, daemon flags..., --, handoff flags...
    local name=$1; shift
    local daemon_args=()
    while [ "$1" != "--" ]; do daemon_args+=("$1"); shift; done
    shift
    # One worker unless the scenario asks for more (a later flag wins).
    "$bin/streaming-daemon" -socket "$socket" -metrics-addr= -log-level warn \
        -max-connections 20000 -workers 1 "${daemon_args[@]}" 2>"$out/$name.daemon.log" &
    local pid=$!
    for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
    "$bin/handoff" -socket "$socket" -pid "$pid" -output "$out/$name.json" "$@" 2>&1 | tail -n 1
    kill -TERM "$pid"
    wait "$pid" || true
}

# A local fake OpenAI-compatible upstream: 100 content chunks 100 ms apart per request.
start_upstream() { # extra flags...
    rm -f "$out/upstream.addr"
    "$bin/examples/fake_openai" -listen 127.0.0.1:0 -events 100 -delay-ms 100 "$@" >"$out/upstream.addr" &
    upstream=$!
    for _ in $(seq 1 200); do [ -s "$out/upstream.addr" ] && break; sleep 0.05; done
    port=$(cut -d: -f2 "$out/upstream.addr")
}

echo "== $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
# (a) long mock streams (~15 s: 17 gaps of 833 ms), ramped up over 10 s.
for c in 1000 2500 5000 10000 15000; do
    run "mock-c$c" -message-delay 833ms -- -n "$c" -c "$c" -ramp-up 10s -timeout 60s
done
# (b) throughput: 50,000 short streams, 200 at a time, no delay between events.
run mock-burst -message-delay 0 -- -n 50000 -c 200 -socketpair -timeout 30s
# (c) 2,000 concurrent relayed openai streams (~10 s each) over plain HTTP, then over TLS.
start_upstream
run relay-http -backend openai -openai-base "http://127.0.0.1:$port/v1" -- -n 2000 -c 2000 -ramp-up 5s -timeout 60s
kill "$upstream"
start_upstream -tls
SSL_CERT_FILE=tests/certs/ca.pem run relay-tls -backend openai -openai-base "https://localhost:$port/v1" -- -n 2000 -c 2000 -ramp-up 5s -timeout 60s
kill "$upstream"
# ... and 2,000 started within 1 s from an upstream that takes 3 s before each answer's head
# (10 chunks then), as a model does before its first token: all wait for their heads at once.
start_upstream -head-delay-ms 3000 -events 10
run relay-wait -backend openai -openai-base "http://127.0.0.1:$port/v1" -- -n 2000 -c 2000 -ramp-up 1s -timeout 60s
kill "$upstream"
rm -f "$out/upstream.addr"
# (d) Two workers against one: the burst and the 10,000 long streams again.
run mock-burst-w2 -workers 2 -message-delay 0 -- -n 50000 -c 200 -socketpair -timeout 30s
run mock-c10000-w2 -workers 2 -message-delay 833ms -- -n 10000 -c 10000 -ramp-up 10s -timeout 60s
for pair in "mock-burst mock-burst-w2" "mock-c10000 mock-c10000-w2"; do
    set -- $pair
    python3 -c "
import json, sys
one, two = (json.load(open(f'{sys.argv[1]}/{n}.json')) for n in sys.argv[2:4])
per = lambda s: s['daemon']['cpu_seconds_per_1000_streams']
print(f'{sys.argv[2]}: CPU s per 1000 streams {per(one):.3f} (1 worker), {per(two):.3f} (2 workers): '
      f'{per(two) / per(one):.2f}x; TTFB p99 {one[\"ttfb_ms\"][\"p99\"]:.2f} / {two[\"ttfb_ms\"][\"p99\"]:.2f} ms; '
      f'RSS per stream {one[\"daemon\"][\"rss_per_stream_bytes\"]} / {two[\"daemon\"][\"rss_per_stream_bytes\"]} B')
" "$out" "$1" "$2"
done
# CPU per 1,000 relayed events, from the summaries.
for name in relay-http relay-tls relay-wait; do
    python3 -c "import json,sys; s=json.load(open(sys.argv[1])); d=s['daemon']; print(sys.argv[2] + ': %.4f daemon CPU s per 1000 relayed events, %d B RSS per stream' % (d['cpu_seconds'] * 1000 / s['events_total'], d['rss_per_stream_bytes']))" "$out/$name.json" "$name"
done
# Where the long streams' time to first byte goes: the generator's handoff, the daemon, the
# generator's read (the kernel's arrival stamps split them; see `handoff`'s summary fields).
for c in 1000 2500 5000 10000 15000; do
    python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
p99 = lambda k: s[k]['p99'] if s.get(k) else float('nan')
print(f'{sys.argv[2]}: TTFB p99 read {p99(\"ttfb_ms\"):.2f} ms, arrival {p99(\"ttfb_arrival_ms\"):.2f} ms, '
      f'after the handoff (the daemon) {p99(\"daemon_ttfb_ms\"):.2f} ms; handoff send {p99(\"handoff_ms\"):.2f} ms')
" "$out/mock-c$c.json" "mock-c$c"
done
