#!/usr/bin/env bash
# The static-binary CPU figure of SPEC §10: 20,000 mock streams, 200 in flight, no delay, for
# the glibc and the musl release builds, alternated so that both see the same machine load.
#
#   bash benches/static-cpu.sh [RUNS]     (default 3 runs of each)
#
# Prints one line per run and the ratio of the medians (target: musl <= 1.3x glibc).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
musl=x86_64-unknown-linux-musl
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bins --quiet
cargo build --release --target "$musl" --bin streaming-daemon --quiet
out=$(mktemp -d /tmp/sd-static-cpu-XXXXXX)
trap 'rm -rf "$out"' EXIT

run() { # label, daemon binary
    local socket="$out/$1.sock"
    "$2" -socket "$socket" -message-delay 0 -metrics-addr= -log-level warn 2>"$out/$1.log" &
    local pid=$!
    for _ in $(seq 1 200); do [ -S "$socket" ] && break; sleep 0.05; done
    "$target/release/handoff" -socket "$socket" -n 20000 -c 200 -socketpair -pid "$pid" \
        -output "$out/$1.json" 2>/dev/null
    kill -TERM "$pid"
    wait "$pid" || true
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["daemon"]["cpu_seconds"])' "$out/$1.json"
}

glibc=() musl_cpu=()
for i in $(seq 1 "$runs"); do
    g=$(run "glibc-$i" "$target/release/streaming-daemon")
    m=$(run "musl-$i" "$target/$musl/release/streaming-daemon")
    echo "run $i: glibc ${g} s, musl ${m} s CPU"
    glibc+=("$g") musl_cpu+=("$m")
done
python3 - "${glibc[*]}" "${musl_cpu[*]}" <<'PY'
import statistics, sys
g = [float(x) for x in sys.argv[1].split()]
m = [float(x) for x in sys.argv[2].split()]
print("static-cpu: glibc median %.2f s, musl median %.2f s, musl/glibc %.2fx"
      % (statistics.median(g), statistics.median(m), statistics.median(m) / statistics.median(g)))
PY
