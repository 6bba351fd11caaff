#!/usr/bin/env bash
# The attachments figures of the README (SPEC §10): rounds of 50 concurrent requests with a
# 10 MB image each, streamed upstream as base64 while it is read, and alongside them short mock
# streams on the same daemon whose time to first byte says whether the loop stayed responsive.
# Loopback only; the upstream is the local fake, which reads and drops each body.
#
#   bash benches/attachments.sh [OUT_DIR]      (default: bench-out/attachments)
#
# Phase 1: the mock streams alone (their baseline TTFB). Phase 2: the same load while rounds of
# 50 image requests run back to back. The daemon's peak RSS (VmHWM, reset before phase 2) is
# compared with its RSS after phase 1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out/attachments}
mkdir -p "$out"
cargo build --release --bins --example fake_openai --quiet
bin=target/release
work=$(mktemp -d /tmp/sd-attach-bench-XXXXXX)
socket=$work/daemon.sock
data=$work/data
images=50
image_bytes=10000000
alongside=(-n 3000 -c 30 -timeout 60s -data '{"backend":"mock","prompt":"hi"}')

cleanup() {
    kill "${daemon:-}" "${upstream:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin/examples/fake_openai" -listen 127.0.0.1:0 -events 20 -delay-ms 10 >"$work/upstream.addr" &
upstream=$!
for _ in $(seq 1 200); do [ -s "$work/upstream.addr" ] && break; sleep 0.05; done
port=$(cut -d: -f2 "$work/upstream.addr")

cat >"$work/config.yaml" <<EOF
server:
  data_dir: $data
backend:
  provider: openai
  allowed: [openai, mock]
  openai:
    api_base: http://127.0.0.1:$port/v1
  mock:
    message_delay_ms: 20
EOF
"$bin/streaming-daemon" -config "$work/config.yaml" -socket "$socket" -metrics-addr= \
    -log-level warn 2>"$out/daemon.log" &
daemon=$!
for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done

echo "== $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
head -c "$image_bytes" /dev/urandom >"$work/image.png"

# Phase 1: the mock streams alone.
"$bin/handoff" -socket "$socket" -pid "$daemon" -output "$out/alone.json" "${alongside[@]}" 2>&1 | tail -n 1
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$daemon/status")
# Peak RSS counts from here.
echo 5 >"/proc/$daemon/clear_refs"

# Phase 2: the same, with rounds of image requests until it is done.
"$bin/handoff" -socket "$socket" -pid "$daemon" -output "$out/alongside.json" "${alongside[@]}" \
    2>"$out/alongside.txt" &
side=$!
rounds=0
sent=0
failed=0
while kill -0 "$side" 2>/dev/null; do
    for i in $(seq 1 "$images"); do cp "$work/image.png" "$data/img-$i.png"; done
    pids=()
    for i in $(seq 1 "$images"); do
        "$bin/handoff" -socket "$socket" -timeout 60s \
            -data "{\"prompt\":\"What is in this image?\",\"attachments\":{\"p\":\"img-$i.png\"}}" \
            >/dev/null 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        if wait "$pid"; then sent=$((sent + 1)); else failed=$((failed + 1)); fi
    done
    rounds=$((rounds + 1))
done
wait "$side" || true
tail -n 1 "$out/alongside.txt"
peak=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
left=$(find "$data" -type f | wc -l)

python3 - "$out" "$rss_before" "$peak" "$rounds" "$sent" "$failed" "$left" "$images" "$image_bytes" <<'PY'
import json, sys
out, before, peak, rounds, sent, failed, left, images, size = sys.argv[1:]
alone = json.load(open(f"{out}/alone.json"))["ttfb_ms"]
side = json.load(open(f"{out}/alongside.json"))["ttfb_ms"]
extra = (int(peak) - int(before)) / 1024
print(f"image requests: {sent} completed, {failed} failed, in {rounds} rounds of {images} "
      f"concurrent ({int(size) / 1e6:.0f} MB each); files left in data_dir: {left}")
print(f"daemon RSS: {int(before) / 1024:.1f} MiB before, peak {int(peak) / 1024:.1f} MiB: "
      f"{extra:.1f} MiB extra (target <= 64)")
print(f"mock TTFB alone:          p50 {alone['p50']:.2f} ms, p99 {alone['p99']:.2f} ms, max {alone['max']:.2f} ms")
print(f"mock TTFB with the images: p50 {side['p50']:.2f} ms, p99 {side['p99']:.2f} ms, max {side['max']:.2f} ms (target p99 <= 5)")
PY
