//! The one function that turns the daemon's numbers into a `/metrics` body.
//!
//! Names, types, labels and help texts are the Go daemon's, letter for letter: Grafana
//! dashboards and alerts built on it must keep working.

use super::counter::{total, totals, Counter};
use super::histogram::{Histogram, HistogramTotals};
use super::labels::{Backend, LabelValue, ReloadResult};
use super::process::ProcessStats;
use super::record::{Gauges, Metrics};
use super::text::{self, Family, Kind, Seconds, Value};
use crate::end::{GoReason, Outcome, Rejection, ResumeResult};
use std::fmt::Write;

const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family { name, help, kind }
}

pub const ACTIVE_CONNECTIONS: Family = family(
    "daemon_active_connections",
    Kind::Gauge,
    "Number of currently active Apache handoff connections",
);
pub const ACTIVE_STREAMS: Family = family(
    "daemon_active_streams",
    Kind::Gauge,
    "Number of currently active client streaming connections",
);
pub const PEAK_STREAMS: Family = family(
    "daemon_peak_streams",
    Kind::Gauge,
    "Peak number of concurrent streaming connections seen",
);
pub const CONNECTIONS: Family = family(
    "daemon_connections_total",
    Kind::Counter,
    "Total number of connections accepted",
);
pub const CONNECTIONS_REJECTED: Family = family(
    "daemon_connections_rejected_total",
    Kind::Counter,
    "Total number of connections rejected due to capacity limits",
);
pub const HANDOFFS: Family = family(
    "daemon_handoffs_total",
    Kind::Counter,
    "Total number of successful fd handoffs received",
);
pub const HANDOFF_ERRORS: Family = family(
    "daemon_handoff_errors_total",
    Kind::Counter,
    "Total number of handoff receive errors",
);
pub const STREAM_ERRORS: Family = family(
    "daemon_stream_errors_total",
    Kind::Counter,
    "Total number of stream errors",
);
pub const BYTES_SENT: Family = family(
    "daemon_bytes_sent_total",
    Kind::Counter,
    "Total bytes sent to clients",
);
pub const HANDOFF_DURATION: Family = family(
    "daemon_handoff_duration_seconds",
    Kind::Histogram,
    "Time spent receiving fd handoff from Apache",
);
pub const STREAM_DURATION: Family = family(
    "daemon_stream_duration_seconds",
    Kind::Histogram,
    "Total time spent streaming response to client",
);
pub const BACKEND_REQUESTS: Family = family(
    "daemon_backend_requests_total",
    Kind::Counter,
    "Total backend API requests made",
);
pub const BACKEND_ERRORS: Family = family(
    "daemon_backend_errors_total",
    Kind::Counter,
    "Total backend API errors",
);
pub const BACKEND_DURATION: Family = family(
    "daemon_backend_duration_seconds",
    Kind::Histogram,
    "Backend request total duration",
);
pub const BACKEND_TTFB: Family = family(
    "daemon_backend_ttfb_seconds",
    Kind::Histogram,
    "Time to first byte from backend",
);
pub const CHUNKS_SENT: Family = family(
    "daemon_chunks_sent_total",
    Kind::Counter,
    "Total SSE chunks sent to clients",
);

pub const STREAM_OUTCOMES: Family = family(
    "daemon_stream_outcomes_total",
    Kind::Counter,
    "Total number of client streams ended, by outcome",
);
pub const HANDOFF_REJECTIONS: Family = family(
    "daemon_handoff_rejections_total",
    Kind::Counter,
    "Total number of handoffs rejected, by reason",
);
pub const CONFIG_RELOADS: Family = family(
    "daemon_config_reloads_total",
    Kind::Counter,
    "Total number of configuration reloads, by result",
);
pub const LOG_LINES_DROPPED: Family = family(
    "daemon_log_lines_dropped_total",
    Kind::Counter,
    "Total number of log lines dropped because the log queue was full",
);
pub const PANICS: Family = family(
    "daemon_panics_total",
    Kind::Counter,
    "Total number of panics caught and isolated",
);
pub const RESUMES: Family = family(
    "daemon_resumes_total",
    Kind::Counter,
    "Total number of resume handoffs, by result",
);
pub const DETACHED_STREAMS: Family = family(
    "daemon_detached_streams",
    Kind::Gauge,
    "Number of streams whose client left, kept for a resume",
);
pub const BUFFERED_BYTES: Family = family(
    "daemon_buffered_bytes",
    Kind::Gauge,
    "Bytes held in connection buffers, counted against server.mem_limit",
);

// The Go client's process collector help texts.
pub const PROCESS_RESIDENT_MEMORY: Family = family(
    "process_resident_memory_bytes",
    Kind::Gauge,
    "Resident memory size in bytes.",
);
pub const PROCESS_VIRTUAL_MEMORY: Family = family(
    "process_virtual_memory_bytes",
    Kind::Gauge,
    "Virtual memory size in bytes.",
);
pub const PROCESS_OPEN_FDS: Family = family(
    "process_open_fds",
    Kind::Gauge,
    "Number of open file descriptors.",
);
pub const PROCESS_MAX_FDS: Family = family(
    "process_max_fds",
    Kind::Gauge,
    "Maximum number of open file descriptors.",
);
pub const PROCESS_CPU: Family = family(
    "process_cpu_seconds_total",
    Kind::Counter,
    "Total user and system CPU time spent in seconds.",
);
pub const PROCESS_START_TIME: Family = family(
    "process_start_time_seconds",
    Kind::Gauge,
    "Start time of the process since unix epoch in seconds.",
);

/// Appends the whole exposition to `out`: every worker's numbers summed (`workers`), the
/// daemon-wide gauges, and `process` (`None` when `/proc` could not be read: the daemon's own
/// series are rendered regardless).
pub fn render(
    workers: &[&Metrics],
    gauges: Gauges,
    process: Option<&ProcessStats>,
    out: &mut Vec<u8>,
) {
    let count = |counter: fn(&Metrics) -> &Counter| Value::Count(total(workers, counter));
    single(
        out,
        &ACTIVE_CONNECTIONS,
        Value::Count(gauges.active_connections),
    );
    single(out, &ACTIVE_STREAMS, Value::Count(gauges.active_streams));
    single(out, &PEAK_STREAMS, Value::Count(gauges.peak_streams));
    single(out, &CONNECTIONS, count(|m| &m.connections));
    single(
        out,
        &CONNECTIONS_REJECTED,
        count(|m| &m.connections_rejected),
    );
    single(out, &HANDOFFS, count(|m| &m.handoffs));
    let handoff_errors = totals(workers, |m| &m.handoff_errors);
    labelled_counter::<GoReason>(out, &HANDOFF_ERRORS, &handoff_errors);
    let stream_errors = totals(workers, |m| &m.stream_errors);
    labelled_counter::<GoReason>(out, &STREAM_ERRORS, &stream_errors);
    single(out, &BYTES_SENT, count(|m| &m.bytes_sent));
    text::header(out, &HANDOFF_DURATION);
    let handoff_duration = HistogramTotals::of(workers, |m| &m.handoff_duration);
    histogram(out, HANDOFF_DURATION.name, None, &handoff_duration);
    text::header(out, &STREAM_DURATION);
    let stream_duration = HistogramTotals::of(workers, |m| &m.stream_duration);
    histogram(out, STREAM_DURATION.name, None, &stream_duration);
    let backend_requests = totals(workers, |m| &m.backend_requests);
    labelled_counter::<Backend>(out, &BACKEND_REQUESTS, &backend_requests);
    let backend_errors = totals(workers, |m| &m.backend_errors);
    labelled_counter::<Backend>(out, &BACKEND_ERRORS, &backend_errors);
    labelled_histogram::<Backend>(out, &BACKEND_DURATION, workers, |m, i| {
        &m.backend_duration[i]
    });
    labelled_histogram::<Backend>(out, &BACKEND_TTFB, workers, |m, i| &m.backend_ttfb[i]);
    single(out, &CHUNKS_SENT, count(|m| &m.chunks_sent));
    let outcomes = totals(workers, |m| &m.stream_outcomes);
    labelled_counter::<Outcome>(out, &STREAM_OUTCOMES, &outcomes);
    let rejections = totals(workers, |m| &m.handoff_rejections);
    labelled_counter::<Rejection>(out, &HANDOFF_REJECTIONS, &rejections);
    let reloads = totals(workers, |m| &m.reloads);
    labelled_counter::<ReloadResult>(out, &CONFIG_RELOADS, &reloads);
    single(
        out,
        &LOG_LINES_DROPPED,
        Value::Count(gauges.log_lines_dropped),
    );
    single(out, &PANICS, count(|m| &m.panics));
    single(out, &BUFFERED_BYTES, Value::Count(gauges.buffered_bytes));
    let resumes = totals(workers, |m| &m.resumes);
    labelled_counter::<ResumeResult>(out, &RESUMES, &resumes);
    single(
        out,
        &DETACHED_STREAMS,
        Value::Count(gauges.detached_streams),
    );
    if let Some(process) = process {
        render_process(out, process);
    }
}

fn render_process(out: &mut Vec<u8>, process: &ProcessStats) {
    single(out, &PROCESS_CPU, Value::Nanos(process.cpu_nanos));
    single(out, &PROCESS_MAX_FDS, Value::Count(process.max_fds));
    single(out, &PROCESS_OPEN_FDS, Value::Count(process.open_fds));
    single(
        out,
        &PROCESS_RESIDENT_MEMORY,
        Value::Count(process.resident_memory_bytes),
    );
    single(
        out,
        &PROCESS_START_TIME,
        Value::Nanos(process.start_time_nanos),
    );
    single(
        out,
        &PROCESS_VIRTUAL_MEMORY,
        Value::Count(process.virtual_memory_bytes),
    );
}

/// A family with one unlabelled sample.
fn single(out: &mut Vec<u8>, family: &Family, value: Value) {
    text::header(out, family);
    text::sample(out, family.name, "", &[], value);
}

/// A counter with one sample per label value, every value present even at 0.
fn labelled_counter<L: LabelValue>(out: &mut Vec<u8>, family: &Family, counts: &[u64]) {
    text::header(out, family);
    for (value, &count) in L::ALL.iter().zip(counts) {
        text::sample(
            out,
            family.name,
            "",
            &[(L::NAME, value.as_str())],
            Value::Count(count),
        );
    }
}

/// A histogram per label value (the `i`-th of each worker's for `L::ALL[i]`), summed.
fn labelled_histogram<L: LabelValue>(
    out: &mut Vec<u8>,
    family: &Family,
    workers: &[&Metrics],
    histogram_of: impl Fn(&Metrics, usize) -> &Histogram,
) {
    text::header(out, family);
    for (i, value) in L::ALL.iter().enumerate() {
        let totals = HistogramTotals::of(workers, |m| histogram_of(m, i));
        histogram(out, family.name, Some((L::NAME, value.as_str())), &totals);
    }
}

/// The `_bucket` lines (cumulative, then `+Inf`), `_sum` and `_count` of one histogram.
fn histogram(out: &mut Vec<u8>, name: &str, label: Option<(&str, &str)>, h: &HistogramTotals) {
    let mut le = String::with_capacity(16);
    for (i, &count) in h.cumulative().iter().enumerate() {
        le.clear();
        // Writing into a String cannot fail.
        let _ = write!(le, "{}", Seconds(u128::from(h.bound_nanos(i))));
        bucket(out, name, label, &le, count);
    }
    bucket(out, name, label, "+Inf", h.count());
    text::sample(
        out,
        name,
        "_sum",
        label.as_slice(),
        Value::Nanos(h.sum_nanos()),
    );
    text::sample(
        out,
        name,
        "_count",
        label.as_slice(),
        Value::Count(h.count()),
    );
}

fn bucket(out: &mut Vec<u8>, name: &str, label: Option<(&str, &str)>, le: &str, count: u64) {
    match label {
        Some(pair) => text::sample(
            out,
            name,
            "_bucket",
            &[pair, ("le", le)],
            Value::Count(count),
        ),
        None => text::sample(out, name, "_bucket", &[("le", le)], Value::Count(count)),
    }
}
