#!/usr/bin/env bash
# The soak (SPEC §10): a million streams with faults against fresh release daemons, then checks
# that nothing leaked and every handoff is accounted for. Loopback only.
#
#   bash benches/soak.sh [STREAMS [OUT_DIR]]    (default 1000000 streams; OUT_DIR a new /tmp dir)
#   SOAK_TLS=1 bash benches/soak.sh ...         (the openai half over TLS, test CA trusted)
#
# Two daemons run side by side, each with its own socket under /tmp and metrics on a free
# loopback port, so that each one's counters answer for one kind of fault and their expected
# values are exact (a client fault and an upstream fault on the same stream would race):
#   mock    -backend mock, 18 events 10 ms apart. Half the streams, from `handoff -faults`:
#           clients that read everything, close after 128 bytes, reset after 128 bytes, never
#           read (ended by the daemon's 2 s -write-timeout), half-close at once, plus handoffs
#           whose data is not JSON and handoffs without an fd. The 10 ms gaps keep a stream
#           going long after a closing client has gone, so the daemon always sees it go.
#   openai  -backend openai against examples/fake_openai (5 events per answer). The other half,
#           clients that read everything; the upstream answers by request number: 429, 500,
#           a body cut mid-way, a stall past the 250 ms idle_gap_timeout_ms, malformed events.
# Each daemon first takes a warm-up run (a twentieth of its streams, at least 25,000) at the same
# concurrency; its open fds and RSS after that, once idle and settled, are the baseline.
#
# It passes (exit 0) when, for each daemon: it is alive at the end and exits 0 on SIGTERM; its
# open fds and RSS are back within ±5% of the baseline; /metrics shows every handoff accounted
# for (SPEC §7.3: connections = handoffs + receive-stage rejections, handoffs = outcomes +
# after-receipt rejections, none over capacity); each fault landed on its outcome with the
# expected count; daemon_panics_total is 0 and its log has no "panic". The last line starts
# with `soak:` and gives the figures (or says FAILED and why).
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-1000000}
out=${2:-$(mktemp -d /tmp/soak-XXXXXX)}
mkdir -p "$out"
if ! [ "$streams" -ge 2 ] 2>/dev/null; then
    echo "usage: bash benches/soak.sh [STREAMS (at least 2) [OUT_DIR]]" >&2
    exit 2
fi

# The mixes. Weights are per cycle of their sum; see `handoff -help`.
client_mix=read=80,close=5,reset=5,noread=1,halfclose=5,badjson=2,nofd=2
upstream_mix=ok=84,429=3,500=3,cut=3,stall=3,malformed=4
mock_concurrency=400
openai_concurrency=100
# Seconds from the last stream's end to reading fds and RSS: idle pooled upstream connections
# expire after 1 s (soak.yaml), but the pool is swept only every 5 s.
settle=6

cargo build --release --bins --example fake_openai --quiet
bin=${CARGO_TARGET_DIR:-target}/release
started=$(date +%s.%N)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # A daemon removes its socket when it drains; not one that died.
    rm -f "/tmp/soak-mock-$$.sock" "/tmp/soak-openai-$$.sock"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 10 s) for a file to be non-empty or a socket to appear.
wait_for() { # test flag, path
    for _ in $(seq 1 200); do
        if [ "$1" "$2" ]; then return 0; fi
        sleep 0.05
    done
    echo "soak: FAILED: $2 did not appear" >&2
    exit 1
}

cat >"$out/soak.yaml" <<'EOF'
# The soak's daemon settings beyond its flags: an upstream silence of 250 ms ends a stream (the
# fake upstream stalls for 1 s), and idle pooled connections go after 1 s, so that a settled
# daemon holds none and its open fds can be compared exactly.
backend:
  upstream:
    idle_gap_timeout_ms: 250
    pool_idle_timeout_ms: 1000
EOF

tls_flags=() scheme=http
if [ -n "${SOAK_TLS:-}" ]; then
    tls_flags=(-tls) scheme=https
    export SSL_CERT_FILE=$PWD/tests/certs/ca.pem
fi
"$bin/examples/fake_openai" -listen 127.0.0.1:0 -events 5 -delay-ms 0 -mix "$upstream_mix" \
    -stall-ms 1000 "${tls_flags[@]}" >"$out/upstream.addr" 2>"$out/upstream.log" &
pids+=($!)
wait_for -s "$out/upstream.addr"
upstream=$(cat "$out/upstream.addr")

start_daemon() { # name, flags...
    local name=$1; shift
    local socket=/tmp/soak-$name-$$.sock port
    port=$(free_port)
    rm -f "$socket"
    "$bin/streaming-daemon" -config "$out/soak.yaml" -socket "$socket" -metrics-addr "127.0.0.1:$port" \
        -log-level warn -data-dir= -write-timeout 2s -max-connections 5000 "$@" 2>"$out/$name.log" &
    local pid=$!
    pids+=("$pid")
    wait_for -S "$socket"
    printf '%s %s %s\n' "$pid" "$socket" "$port" >"$out/$name.daemon"
}
start_daemon mock -backend mock -message-delay 10ms
start_daemon openai -backend openai -openai-base "$scheme://$upstream/v1"
read -r mock_pid mock_socket mock_port <"$out/mock.daemon"
read -r openai_pid openai_socket openai_port <"$out/openai.daemon"

load() { # name, socket, streams, concurrency, extra flags...
    local name=$1 socket=$2 n=$3 c=$4; shift 4
    "$bin/handoff" -socket "$socket" -n "$n" -c "$c" -timeout 30s -output "$out/$name.json" "$@" \
        2>"$out/$name.load.log" || true  # judged from its summary below
    tail -n 1 "$out/$name.load.log"
}

# Waits (at most 60 s) until the daemon holds no connection, then lets it settle, then prints
# "open_fds rss_kib cpu_seconds" from /proc.
rest_sample() { # pid, metrics port
    local pid=$1 port=$2 i
    for i in $(seq 1 600); do
        if curl -sf "http://127.0.0.1:$port/healthz" | grep -q '"active_connections":0'; then break; fi
        sleep 0.1
    done
    sleep "$settle"
    local fds rss ticks
    fds=$(ls "/proc/$pid/fd" | wc -l)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "$fds $rss $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')"
}

mock_n=$((streams / 2))
openai_n=$((streams - mock_n))
# Enough for each daemon's RSS to reach its plateau: at rest after 25,000 streams it stays within
# a few per cent over 300,000 more, while after 5,000 it could still be 10% lower.
warm() { local n=$(($1 / 20)); echo $((n < 25000 ? 25000 : n)); }

echo "== warm-up: $(warm "$mock_n") mock and $(warm "$openai_n") openai streams"
load mock-warm "$mock_socket" "$(warm "$mock_n")" "$mock_concurrency" -faults "$client_mix" &
first=$!
load openai-warm "$openai_socket" "$(warm "$openai_n")" "$openai_concurrency" &
wait "$first" "$!"
rest_sample "$mock_pid" "$mock_port" >"$out/mock.baseline" &
first=$!
rest_sample "$openai_pid" "$openai_port" >"$out/openai.baseline" &
wait "$first" "$!"

echo "== soak: $mock_n mock and $openai_n openai streams"
load_started=$(date +%s.%N)
load mock "$mock_socket" "$mock_n" "$mock_concurrency" -faults "$client_mix" -pid "$mock_pid" &
first=$!
load openai "$openai_socket" "$openai_n" "$openai_concurrency" -pid "$openai_pid" &
wait "$first" "$!"
load_seconds=$(awk -v a="$load_started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
rest_sample "$mock_pid" "$mock_port" >"$out/mock.after" &
first=$!
rest_sample "$openai_pid" "$openai_port" >"$out/openai.after" &
wait "$first" "$!"
for name in mock openai; do
    read -r pid _ port <"$out/$name.daemon"
    if kill -0 "$pid" 2>/dev/null; then echo alive >"$out/$name.alive"; else echo dead >"$out/$name.alive"; fi
    curl -sf "http://127.0.0.1:$port/metrics" >"$out/$name.metrics" || true
done
curl -sf --cacert tests/certs/ca.pem "$scheme://$upstream/stats" >"$out/upstream.stats" \
    || echo '{}' >"$out/upstream.stats"

# A clean exit after SIGTERM (nothing in flight, so the drain is immediate).
for name in mock openai; do
    read -r pid _ _ <"$out/$name.daemon"
    kill -TERM "$pid" 2>/dev/null || true
    status=0
    wait "$pid" || status=$?
    echo "$status" >"$out/$name.exit"
done

seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
python3 - "$out" "$streams" "$seconds" "$load_seconds" <<'EOF'
import json, os, re, sys

out, streams, seconds, load_seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
problems = []

def read(name, default=""):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read()
    except OSError:
        problems.append(f"{name} missing")
        return default

def summary(name):
    try:
        return json.loads(read(name + ".json", "{}"))
    except ValueError:
        problems.append(f"{name}.json is not JSON")
        return {}

def metrics(name):
    values = {}
    for line in read(name + ".metrics").splitlines():
        match = re.match(r'^([a-z_]+)(\{[^}]*\})? (\S+)$', line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    if not values:
        problems.append(f"{name}: no metrics scraped")
    return values

RECEIVE = ["too_large", "no_fd", "bad_fd", "ctrunc", "timeout", "network", "other"]
AFTER = ["bad_json", "bad_attachment", "unknown_profile", "unknown_backend"]
OUTCOMES = ["completed", "client_disconnected", "resumed_elsewhere", "write_timeout", "max_duration", "canceled",
            "upstream_unreachable", "upstream_status", "upstream_timeout", "upstream_cut",
            "upstream_error", "upstream_incomplete", "panic", "network", "other"]

GO_REASONS = ["client_disconnected", "timeout", "canceled", "network", "other"]
GO_OUTCOME = {"completed": None, "client_disconnected": "client_disconnected", "resumed_elsewhere": None,
              "write_timeout": "timeout",
              "max_duration": "timeout", "canceled": "canceled", "upstream_unreachable": "network",
              "upstream_status": "other", "upstream_timeout": "timeout", "upstream_cut": "network",
              "upstream_error": "other", "upstream_incomplete": "other", "panic": "other",
              "network": "network", "other": "other"}
# A `network` receive rejection may be Go's client_disconnected too; none is expected here.
GO_RECEIVE = {"too_large": "other", "no_fd": "other", "bad_fd": "other", "ctrunc": "other",
              "timeout": "timeout", "network": "network", "other": "other"}

def check(name, m, outcomes, rejections, extra):
    """Accounting (SPEC 7.3) and the expected count of every outcome and rejection."""
    get = lambda key: int(m.get(key, -1))
    if not m:  # already said: nothing to compare
        return {o: -1 for o in OUTCOMES}, {r: -1 for r in RECEIVE + AFTER}, m
    outcome = {o: get(f'daemon_stream_outcomes_total{{outcome="{o}"}}') for o in OUTCOMES}
    rejection = {r: get(f'daemon_handoff_rejections_total{{reason="{r}"}}') for r in RECEIVE + AFTER}
    connections, handoffs = get("daemon_connections_total"), get("daemon_handoffs_total")
    receive = sum(rejection[r] for r in RECEIVE)
    # Resume handoffs answered 204 end as neither (SPEC 2.1); 0 unless resuming is on.
    after = sum(rejection[r] for r in AFTER) + sum(
        max(get(f'daemon_resumes_total{{result="{r}"}}'), 0) for r in ("done", "unknown", "mismatch"))
    if connections != handoffs + receive:
        problems.append(f"{name}: connections_total {connections} != handoffs_total {handoffs} + receive-stage rejections {receive}")
    if handoffs != sum(outcome.values()) + after:
        problems.append(f"{name}: handoffs_total {handoffs} != outcomes {sum(outcome.values())} + after-receipt rejections and refused resumes {after}")
    for key, want in [("daemon_connections_rejected_total", 0), ("daemon_panics_total", 0),
                      ("daemon_active_connections", 0)] + extra:
        if get(key) != want:
            problems.append(f"{name}: {key} is {get(key)}, expected {want}")
    # Go's two counters carry the same endings in Go's words (SPEC 7.2), and each handoff
    # and stream is timed once.
    stream_errors = {r: 0 for r in GO_REASONS}
    handoff_errors = {r: 0 for r in GO_REASONS}
    for o, count in outcome.items():
        if GO_OUTCOME[o]:
            stream_errors[GO_OUTCOME[o]] += count
    for r in AFTER:
        stream_errors["other"] += rejection[r]
    for r in RECEIVE:
        handoff_errors[GO_RECEIVE[r]] += rejection[r]
    for counter, want in [("daemon_stream_errors_total", stream_errors), ("daemon_handoff_errors_total", handoff_errors)]:
        for r in GO_REASONS:
            key = f'{counter}{{reason="{r}"}}'
            if get(key) != want[r]:
                problems.append(f"{name}: {key} is {get(key)}, expected {want[r]} from the outcomes and rejections")
    for key, want in [("daemon_handoff_duration_seconds_count", handoffs),
                      ("daemon_stream_duration_seconds_count", sum(outcome.values()))]:
        if get(key) != want:
            problems.append(f"{name}: {key} is {get(key)}, expected {want}")
    for o in OUTCOMES:
        if outcome[o] != outcomes.get(o, 0):
            problems.append(f"{name}: outcome {o} is {outcome[o]}, expected {outcomes.get(o, 0)}")
    for r in RECEIVE + AFTER:
        if rejection[r] != rejections.get(r, 0):
            problems.append(f"{name}: rejection {r} is {rejection[r]}, expected {rejections.get(r, 0)}")
    return outcome, rejection, m

def daemon_state(name):
    if read(name + ".alive").strip() != "alive":
        problems.append(f"{name}: the daemon was not alive at the end")
    if read(name + ".exit").strip() != "0":
        problems.append(f"{name}: the daemon exited {read(name + '.exit').strip()} on SIGTERM")
    log = read(name + ".log")
    if "panic" in log.lower():
        problems.append(f"{name}: its log mentions a panic")
    before = read(name + ".baseline").split() or ["0", "0", "0"]
    after = read(name + ".after").split() or ["0", "0", "0"]
    fds = (int(before[0]), int(after[0]))
    rss = (int(before[1]), int(after[1]))
    for what, (b, a) in [("open fds", fds), ("RSS KiB", rss)]:
        if not (0.95 * b <= a <= 1.05 * b):
            problems.append(f"{name}: {what} {b} after the warm-up, {a} after the soak (over ±5%)")
    return fds, rss, float(after[2]) - float(before[2])

# mock: every client fault from the load generator's own tally, warm-up included.
faults = {}
for part in ["mock-warm", "mock"]:
    s = summary(part)
    if s.get("failed", {}).get("total", 1) != 0:
        problems.append(f"{part}: {s.get('failed')} streams did not end as their fault should")
    for kind, counts in s.get("faults", {}).items():
        if kind != "mix":
            for key, value in counts.items():
                faults.setdefault(kind, {}).setdefault(key, 0)
                faults[kind][key] += value
f = lambda kind, key="as_planned": faults.get(kind, {}).get(key, 0)
mock_streams = sum(f(k, "streams") for k in faults)
late = f("close", "late") + f("reset", "late") + f("noread", "late")
mock_want = {
    "completed": f("read") + f("halfclose") + late,
    "client_disconnected": f("close") + f("reset"),
    "write_timeout": f("noread"),
}
mock_outcome, mock_rejection, mock_metrics = check(
    "mock", metrics("mock"), mock_want, {"bad_json": f("badjson"), "no_fd": f("nofd")},
    [('daemon_backend_requests_total{backend="mock"}', sum(mock_want.values())),
     ('daemon_backend_errors_total{backend="mock"}', 0)])

# openai: every upstream fault from the fake upstream's own tally of what it answered.
try:
    served = json.loads(read("upstream.stats", "{}"))
except ValueError:
    served = {}
    problems.append("upstream.stats is not JSON")
u = lambda kind: int(served.get(kind, 0))
openai_streams = 0
client = {"succeeded": 0, "429": 0, "502": 0, "error_event": 0, "other": 0}
for part in ["openai-warm", "openai"]:
    s = summary(part)
    openai_streams += s.get("streams", 0)
    client["succeeded"] += s.get("succeeded", 0)
    client["429"] += s.get("statuses", {}).get("429", 0)
    client["502"] += s.get("statuses", {}).get("502", 0)
    client["error_event"] += s.get("failed", {}).get("error_event", 0)
    client["other"] += sum(v for k, v in s.get("failed", {}).items() if k not in ("total", "status", "error_event"))
if u("requests") != openai_streams:
    problems.append(f"openai: the upstream answered {u('requests')} requests for {openai_streams} streams")
want_client = {"succeeded": u("ok") + u("malformed"), "429": u("429"), "502": u("500"),
               "error_event": u("cut") + u("stall"), "other": 0}
if client != want_client:
    problems.append(f"openai: the clients saw {client}, expected {want_client}")
errors = u("429") + u("500") + u("cut") + u("stall") + 2 * u("malformed")
openai_outcome, _, openai_metrics = check("openai", metrics("openai"), {
    "completed": u("ok") + u("malformed"),
    "upstream_status": u("429") + u("500"),
    "upstream_cut": u("cut"),
    "upstream_timeout": u("stall"),
}, {}, [('daemon_backend_requests_total{backend="openai"}', openai_streams),
        ('daemon_backend_errors_total{backend="openai"}', errors)])

mock_fds, mock_rss, mock_cpu = daemon_state("mock")
openai_fds, openai_rss, openai_cpu = daemon_state("openai")
main_streams = summary("mock").get("streams", 0) + summary("openai").get("streams", 0)
if main_streams != streams:
    problems.append(f"{main_streams} streams ran, {streams} were asked for")

backend_errors = int(openai_metrics.get('daemon_backend_errors_total{backend="openai"}', -1))
nonzero = lambda counts: " ".join(f"{k}={v}" for k, v in counts.items() if v)
mib = lambda kib: f"{kib / 1024:.1f}"
figures = (
    f"{main_streams} streams (+{mock_streams + openai_streams - main_streams} warm-up) in {seconds} s "
    f"(load {load_seconds} s); mock {mock_streams}: {nonzero(mock_outcome)} "
    f"{nonzero({'bad_json': mock_rejection['bad_json'], 'no_fd': mock_rejection['no_fd']})}; "
    f"openai {openai_streams}: {nonzero(openai_outcome)} "
    f"backend_errors={backend_errors}; "
    f"fds mock {mock_fds[0]}->{mock_fds[1]} openai {openai_fds[0]}->{openai_fds[1]}; "
    f"rss MiB mock {mib(mock_rss[0])}->{mib(mock_rss[1])} openai {mib(openai_rss[0])}->{mib(openai_rss[1])}; "
    f"daemon cpu s (after the warm-up) mock {mock_cpu:.1f} openai {openai_cpu:.1f}; "
    f"panics {int(mock_metrics.get('daemon_panics_total', -1)) + int(openai_metrics.get('daemon_panics_total', -1))}"
)
if problems:
    for problem in problems:
        print("  " + problem)
    print(f"soak: FAILED ({len(problems)} problems; logs in {out}): {figures}")
    sys.exit(1)
print(f"soak: ok: {figures}")
EOF
