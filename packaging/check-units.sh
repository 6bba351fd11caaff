#!/usr/bin/env bash
# Checks the systemd units in config/: `systemd-analyze verify` on both, and the service's
# `systemd-analyze security` exposure (at most 2.0, SPEC §9). The service ships as Type=notify
# (Debian 12's systemd 252 knows no better); its comments tell systemd 253+ users to switch to
# Type=notify-reload and drop ExecReload=, so that variant is generated and verified too.
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

# The Type=notify-reload variant, made as the service's comments say: the type changed and
# ExecReload= dropped (systemd sends SIGHUP itself and waits for RELOADING=1 ... READY=1).
mkdir "$work/reload"
sed -e 's/^Type=notify$/Type=notify-reload/' -e '/^ExecReload=/d' \
    "$work/streaming-daemon.service" >"$work/reload/streaming-daemon.service"
if ! grep -qx 'Type=notify-reload' "$work/reload/streaming-daemon.service" \
    || grep -q '^ExecReload=' "$work/reload/streaming-daemon.service"; then
    echo "check-units: the service no longer has one Type=notify and an ExecReload= line; update this script" >&2
    exit 1
fi
cp config/streaming-daemon.socket "$work/reload/"
output=$(cd "$work/reload" && systemd-analyze verify ./streaming-daemon.service ./streaming-daemon.socket 2>&1) || {
    echo "$output" >&2
    echo "check-units: systemd-analyze verify failed on the Type=notify-reload variant" >&2
    exit 1
}
ours=$(grep -E 'streaming-daemon\.(service|socket)' <<<"$output" || true)
version=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
reload_note="verify passed on the Type=notify-reload variant"
if [ -n "$version" ] && [ "$version" -lt 253 ]; then
    # Before 253 the type is unknown: that one line is expected, and nothing else may appear.
    unknown='Failed to parse service type, ignoring: notify-reload'
    if ! grep -qF "$unknown" <<<"$ours"; then
        echo "$ours" >&2
        echo "check-units: systemd $version should not know Type=notify-reload; the variant was not checked as intended" >&2
        exit 1
    fi
    ours=$(grep -vF "$unknown" <<<"$ours" || true)
    reload_note="the Type=notify-reload variant verified apart from its type (systemd $version predates it)"
fi
if [ -n "$ours" ]; then
    echo "$ours" >&2
    echo "check-units: systemd-analyze verify has complaints about the Type=notify-reload variant" >&2
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
echo "check-units: verify passed on both units; $reload_note; service exposure $exposure (at most 2.0)"
