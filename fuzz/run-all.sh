#!/usr/bin/env bash
# Runs fuzz targets one after another (the machine's cores are shared: one at a time), each
# until RUNS executions or MAX_SECONDS seconds, whichever comes first, and prints one line per
# target: executions, seconds, and the crash files left in artifacts/<target>/ with each
# distinct panic site among them. Usage: fuzz/run-all.sh [target...] (default: every target).
#
# - New inputs go to work/<target>/ (not committed); corpus/<target>/ is only read.
# - `-s none`: the code under test is safe Rust (the daemon's `unsafe` is all in src/sys/, which
#   no target reaches), so AddressSanitizer would only make it ~3x slower. Debug assertions,
#   overflow checks included, stay on (cargo fuzz's default).
# - Fork mode with `-ignore_crashes=1`: a crash is saved and fuzzing goes on, so one run shows
#   every kind of crash a target has, not only the first.
# - An input that takes over 10 s is saved as a timeout: a parser must be fast on any input.
set -euo pipefail
cd "$(dirname "$0")"

runs=${RUNS:-10000000}
max_seconds=${MAX_SECONDS:-1800}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -s none

for target in "${targets[@]}"; do
    mkdir -p "work/$target" "artifacts/$target"
    log="work/$target.log"
    start=$(date +%s)
    cargo +nightly fuzz run -s none "$target" "work/$target" "corpus/$target" -- \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=10 \
        -runs="$runs" -max_total_time="$max_seconds" -rss_limit_mb=2048 >"$log" 2>&1 || true
    seconds=$(($(date +%s) - start))
    executions=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    binary=target/x86_64-unknown-linux-gnu/release/$target
    sites=$(for file in "artifacts/$target"/*; do
        [ -e "$file" ] || continue
        case $(basename "$file") in
            timeout-*) echo timeout; continue ;;
            oom-*) echo out-of-memory; continue ;;
        esac
        output=$("$binary" "$file" 2>&1 || true)
        grep -m1 -oE 'panicked at [^ ]+|deadly signal|timeout|out-of-memory' <<<"$output" || echo "no panic"
    done | sort | uniq -c | tr -s ' ' | paste -sd ';' -)
    files=$(find "artifacts/$target" -type f | wc -l)
    echo "$target: ${executions:-0} executions in ${seconds}s; $files crash file(s)${sites:+: $sites}"
done
