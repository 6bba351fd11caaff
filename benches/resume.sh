#!/usr/bin/env bash
# What resumable streams cost (SPEC 2.1), for the README's Performance section. Loopback only.
#
#   bash benches/resume.sh [OUT_DIR] [STREAMS]      (defaults: bench-out, 10000)
#
# (a) The long mock streams of perf.sh scenario (a) (18 events 833 ms apart, ramped up over
#     10 s), with resuming off and on (-resume-window 30s): every event then carries its id and
#     every stream keeps its events in a replay buffer. RSS per stream, CPU, TTFB, from the load
#     generator's summaries.
# (b) Detached streams: the same streams, each client leaving after about four events (the
#     load generator's `close` fault). Each stream goes on into its replay buffer, completes,
#     and is kept until its window ends (60 s here). The daemon's RSS when all of them are held,
#     complete, minus its RSS before the load, per stream; and daemon_buffered_bytes per stream
#     (what mem_limit counts).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out}
streams=${2:-10000}
mkdir -p "$out"
cargo build --release --bins --quiet
bin=target/release
socket=$(mktemp -u /tmp/sd-resume-XXXXXX.sock)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

start() { # log name, daemon flags...
    local name=$1; shift
    "$bin/streaming-daemon" -socket "$socket" -metrics-addr "127.0.0.1:$port" -log-level warn \
        -max-connections 20000 -workers 1 -message-delay 833ms "$@" 2>"$out/$name.daemon.log" &
    pid=$!
    for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
metric() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v s="$1" '$1 == s {print $2}'; }

echo "== $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
for mode in off on; do
    flags=()
    [ "$mode" = on ] && flags=(-resume-window 30s)
    start "resume-$mode" "${flags[@]}"
    "$bin/handoff" -socket "$socket" -pid "$pid" -output "$out/resume-$mode.json" \
        -n "$streams" -c "$streams" -ramp-up 10s -timeout 60s 2>&1 | tail -n 1
    stop
done
python3 -c "
import json, sys
off, on = (json.load(open(f'{sys.argv[1]}/resume-{m}.json')) for m in ('off', 'on'))
for name, s in (('off', off), ('on', on)):
    d = s['daemon']
    print(f'(a) resuming {name}: {s[\"succeeded\"]} streams, RSS per stream {d[\"rss_per_stream_bytes\"]} B, '
          f'CPU {d[\"cpu_seconds\"]:.2f} s ({d[\"cpu_seconds_per_1000_streams\"]:.3f} per 1000 streams), '
          f'TTFB p50/p99 {s[\"ttfb_ms\"][\"p50\"]:.2f}/{s[\"ttfb_ms\"][\"p99\"]:.2f} ms')
" "$out"

start resume-detached -resume-window 60s
idle=$(rss_kib)
"$bin/handoff" -socket "$socket" -n "$streams" -c "$streams" -ramp-up 10s -timeout 60s \
    -faults close=1 -fault-bytes 700 -output "$out/resume-detached.json" 2>&1 | tail -n 1 || true
# Every stream produces its 18 events whether its client is there or not: wait until all are
# in the replay buffers (about 14 s after the last stream began), sampling the RSS.
peak=0
buffered=0
for _ in $(seq 1 120); do
    sleep 0.5
    rss=$(rss_kib)
    [ "$rss" -gt "$peak" ] && peak=$rss
    buffered=$(metric daemon_buffered_bytes)
    [ "$(metric daemon_chunks_sent_total)" -ge $((18 * streams)) ] && break
done
sleep 1
rss=$(rss_kib)
[ "$rss" -gt "$peak" ] && peak=$rss
detached=$(metric daemon_detached_streams)
echo "(b) $detached detached streams held complete: RSS $idle -> $peak KiB," \
    "$(( (peak - idle) * 1024 / streams )) B per stream;" \
    "daemon_buffered_bytes $buffered, $(( buffered / streams )) B per stream"
stop
rm -f "$socket"
