#!/usr/bin/env bash
# Checks the systemd units in config/: `systemd-analyze verify` on both, and the service's
# `systemd-analyze security` exposure (at most 2.0, SPEC §9).
#
#   bash packaging/check-units.sh [BINARY]
#
# verify insists that ExecStart='s program exists, so it checks a copy of the service whose
# ExecStart= names BINARY (default: a release build under the cargo target directory) instead of
# /usr/local/bin/streaming-daemon. Without systemd-analyze it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null; then
    echo "check-units: systemd-analyze not found; skipped"
    exit 0
fi
target=${CARGO_TARGET_DIR:-target}
binary=${1:-}
if [ -z "$binary" ]; then
    for candidate in "$target/x86_64-unknown-linux-musl/release/streaming-daemon" "$target/release/streaming-daemon"; do
        if [ -x "$candidate" ]; then binary=$candidate; break; fi
    done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "check-units: no streaming-daemon binary to check against; build one (cargo build --release) or pass its path" >&2
    exit 1
fi
binary=$(realpath "$binary")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
installed=/usr/local/bin/streaming-daemon
sed "s#^ExecStart=$installed #ExecStart=$binary #" config/streaming-daemon.service >"$work/streaming-daemon.service"
if ! grep -q "^ExecStart=$binary " "$work/streaming-daemon.service"; then
    echo "check-units: ExecStart= no longer starts with $installed; update this script" >&2
    exit 1
fi
cp config/streaming-daemon.socket "$work/"

# verify exits 0 on unknown keys and bad values ("…, ignoring"): any line about our units fails.
output=$(cd "$work" && systemd-analyze verify ./streaming-daemon.service ./streaming-daemon.socket 2>&1) || {
    echo "$output" >&2
    echo "check-units: systemd-analyze verify failed" >&2
    exit 1
}
ours=$(grep -E 'streaming-daemon\.(service|socket)' <<<"$output" || true)
if [ -n "$ours" ]; then
    echo "$ours" >&2
    echo "check-units: systemd-analyze verify has complaints about the units" >&2
    exit 1
fi

report=$(systemd-analyze security --offline=true "$work/streaming-daemon.service" 2>&1) || true
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
if [ -z "$exposure" ]; then
    echo "$report" >&2
    echo "check-units: no exposure figure from systemd-analyze security (systemd 250 or later is needed for --offline)" >&2
    exit 1
fi
if ! awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
    grep '✗' <<<"$report" >&2 || true
    echo "check-units: exposure $exposure is above 2.0" >&2
    exit 1
fi
echo "check-units: verify passed on both units; service exposure $exposure (at most 2.0)"
