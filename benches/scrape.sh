#!/usr/bin/env bash
# What a metrics scrape costs while many streams run, for the README's Performance section.
# Loopback only.
#
#   bash benches/scrape.sh [STREAMS [SCRAPES]]      (defaults: 10000, 20)
#
# Starts the daemon (one worker) with its metrics endpoint, ramps up STREAMS long mock streams
# (perf.sh scenario (a)), waits until all of them are active, then scrapes /metrics SCRAPES
# times, one after another, and prints curl's total time per scrape (p50 and max) and the
# streams' TTFB from the load generator, which ran through the scrapes.
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-10000}
scrapes=${2:-20}
out=bench-out/scrape
mkdir -p "$out"
cargo build --release --bins --quiet
bin=target/release
socket=$(mktemp -u /tmp/sd-scrape-XXXXXX.sock)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"$bin/streaming-daemon" -socket "$socket" -metrics-addr "127.0.0.1:$port" -log-level warn \
    -max-connections 20000 -workers 1 -message-delay 833ms 2>"$out/daemon.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done

"$bin/handoff" -socket "$socket" -pid "$pid" -output "$out/load.json" -n "$streams" -c "$streams" \
    -ramp-up 5s -timeout 60s >"$out/load.txt" 2>&1 &
load=$!
active() { curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "daemon_active_streams" {print $2}'; }
for _ in $(seq 1 200); do
    [ "$(active)" -ge "$streams" ] 2>/dev/null && break
    sleep 0.05
done
echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(active) active streams"
for _ in $(seq 1 "$scrapes"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics"
done | sort -n | awk '{ t[NR] = $1 * 1000 } END {
    printf "scrape with streams active: p50 %.1f ms, max %.1f ms over %d scrapes\n", t[int((NR + 1) / 2)], t[NR], NR }'
wait "$load" || true
tail -n 1 "$out/load.txt"
