//! The rendered exposition against the Go daemon's contract, through the strict checker.

use std::time::Duration;

use super::exposition_check::{check, Family};
use super::{render as render_all, Backend, Gauges, LabelValue, Metrics, ProcessStats};
use crate::end::{EndReason, GoReason, NotResumed, Outcome, Rejection, ResumeResult};

/// SPEC §7 and the Go client's process collector, letter for letter.
const CONTRACT: &[(&str, &str, &str)] = &[
    (
        "daemon_active_connections",
        "gauge",
        "Number of currently active Apache handoff connections",
    ),
    (
        "daemon_active_streams",
        "gauge",
        "Number of currently active client streaming connections",
    ),
    (
        "daemon_peak_streams",
        "gauge",
        "Peak number of concurrent streaming connections seen",
    ),
    (
        "daemon_connections_total",
        "counter",
        "Total number of connections accepted",
    ),
    (
        "daemon_connections_rejected_total",
        "counter",
        "Total number of connections rejected due to capacity limits",
    ),
    (
        "daemon_handoffs_total",
        "counter",
        "Total number of successful fd handoffs received",
    ),
    (
        "daemon_handoff_errors_total",
        "counter",
        "Total number of handoff receive errors",
    ),
    (
        "daemon_stream_errors_total",
        "counter",
        "Total number of stream errors",
    ),
    (
        "daemon_bytes_sent_total",
        "counter",
        "Total bytes sent to clients",
    ),
    (
        "daemon_handoff_duration_seconds",
        "histogram",
        "Time spent receiving fd handoff from Apache",
    ),
    (
        "daemon_stream_duration_seconds",
        "histogram",
        "Total time spent streaming response to client",
    ),
    (
        "daemon_backend_requests_total",
        "counter",
        "Total backend API requests made",
    ),
    (
        "daemon_backend_errors_total",
        "counter",
        "Total backend API errors",
    ),
    (
        "daemon_backend_duration_seconds",
        "histogram",
        "Backend request total duration",
    ),
    (
        "daemon_backend_ttfb_seconds",
        "histogram",
        "Time to first byte from backend",
    ),
    (
        "daemon_chunks_sent_total",
        "counter",
        "Total SSE chunks sent to clients",
    ),
    (
        "daemon_stream_outcomes_total",
        "counter",
        "Total number of client streams ended, by outcome",
    ),
    (
        "daemon_handoff_rejections_total",
        "counter",
        "Total number of handoffs rejected, by reason",
    ),
    (
        "daemon_config_reloads_total",
        "counter",
        "Total number of configuration reloads, by result",
    ),
    (
        "daemon_log_lines_dropped_total",
        "counter",
        "Total number of log lines dropped because the log queue was full",
    ),
    (
        "daemon_panics_total",
        "counter",
        "Total number of panics caught and isolated",
    ),
    (
        "daemon_buffered_bytes",
        "gauge",
        "Bytes held in connection buffers, counted against server.mem_limit",
    ),
    (
        "daemon_resumes_total",
        "counter",
        "Total number of resume handoffs, by result",
    ),
    (
        "daemon_detached_streams",
        "gauge",
        "Number of streams whose client left, kept for a resume",
    ),
    (
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
    ),
    (
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
    ),
    (
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
    ),
    (
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    ),
    (
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    ),
    (
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
    ),
];

const PROCESS: ProcessStats = ProcessStats {
    resident_memory_bytes: 8_388_608,
    virtual_memory_bytes: 123_456_789,
    open_fds: 12,
    max_fds: 1_048_576,
    cpu_nanos: 3_250_000_000,
    start_time_nanos: 1_700_009_876_540_000_000,
};

fn render(metrics: &Metrics, gauges: Gauges, process: Option<&ProcessStats>) -> String {
    let mut out = Vec::new();
    render_all(&[metrics], gauges, process, &mut out);
    String::from_utf8(out).unwrap()
}

fn checked(metrics: &Metrics, process: Option<&ProcessStats>) -> (String, Vec<Family>) {
    let text = render(metrics, Gauges::default(), process);
    let families = check(&text).unwrap_or_else(|problem| panic!("{problem}\n{text}"));
    (text, families)
}

fn label_values(family: &Family, label: &str) -> Vec<String> {
    let mut values: Vec<String> = family
        .samples
        .iter()
        .flat_map(|s| {
            s.labels
                .iter()
                .filter(|(n, _)| n == label)
                .map(|(_, v)| v.clone())
        })
        .collect();
    values.dedup();
    values
}

fn names<L: LabelValue>() -> Vec<String> {
    L::ALL.iter().map(|v| v.as_str().to_string()).collect()
}

#[test]
fn names_types_and_help_texts_are_the_contract_exactly() {
    let (_, families) = checked(&Metrics::new(), Some(&PROCESS));
    let rendered: Vec<_> = families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str(), f.help.as_str()))
        .collect();
    assert_eq!(rendered, CONTRACT);
}

#[test]
fn without_process_stats_only_the_daemon_series_are_rendered() {
    let (_, families) = checked(&Metrics::new(), None);
    assert_eq!(families.len(), 24);
    assert!(families.iter().all(|f| f.name.starts_with("daemon_")));
}

#[test]
fn a_fresh_daemon_renders_every_label_value_at_zero() {
    let (_, families) = checked(&Metrics::new(), None);
    let family = |name: &str| families.iter().find(|f| f.name == name).unwrap();
    assert_eq!(
        label_values(family("daemon_handoff_errors_total"), "reason"),
        names::<GoReason>()
    );
    assert_eq!(
        label_values(family("daemon_stream_errors_total"), "reason"),
        names::<GoReason>()
    );
    assert_eq!(
        label_values(family("daemon_stream_outcomes_total"), "outcome"),
        names::<Outcome>()
    );
    assert_eq!(
        label_values(family("daemon_handoff_rejections_total"), "reason"),
        names::<Rejection>()
    );
    assert_eq!(
        label_values(family("daemon_resumes_total"), "result"),
        ["resumed", "taken_over", "done", "unknown", "mismatch"]
    );
    assert!(names::<Outcome>().contains(&"resumed_elsewhere".to_string()));
    for name in [
        "daemon_backend_requests_total",
        "daemon_backend_errors_total",
        "daemon_backend_duration_seconds",
        "daemon_backend_ttfb_seconds",
    ] {
        assert_eq!(
            label_values(family(name), "backend"),
            names::<Backend>(),
            "{name}"
        );
    }
    assert!(families
        .iter()
        .flat_map(|f| &f.samples)
        .all(|s| s.value == 0.0));
}

#[test]
fn buckets_are_the_go_daemons_exponential_bounds() {
    let (_, families) = checked(&Metrics::new(), None);
    let bounds = |name: &str| {
        let family = families.iter().find(|f| f.name == name).unwrap();
        let mut les = label_values(family, "le");
        les.truncate(16);
        les.join(" ")
    };
    let upper = "+Inf";
    assert_eq!(
        bounds("daemon_handoff_duration_seconds"),
        format!("0.0001 0.0002 0.0004 0.0008 0.0016 0.0032 0.0064 0.0128 0.0256 0.0512 0.1024 0.2048 0.4096 0.8192 1.6384 {upper}")
    );
    let ten_ms = format!(
        "0.01 0.02 0.04 0.08 0.16 0.32 0.64 1.28 2.56 5.12 10.24 20.48 40.96 81.92 163.84 {upper}"
    );
    assert_eq!(bounds("daemon_stream_duration_seconds"), ten_ms);
    assert_eq!(bounds("daemon_backend_duration_seconds"), ten_ms);
    assert_eq!(
        bounds("daemon_backend_ttfb_seconds"),
        format!("0.001 0.002 0.004 0.008 0.016 0.032 0.064 0.128 0.256 0.512 1.024 2.048 4.096 8.192 16.384 {upper}")
    );
}

#[test]
fn a_known_sequence_of_events_renders_exact_numbers() {
    let m = Metrics::new();
    m.connection_accepted();
    m.connection_accepted();
    m.connection_accepted();
    m.connection_rejected();
    m.handoff_received(Duration::from_micros(100));
    m.handoff_received(Duration::from_micros(250));
    m.handoff_received(Duration::from_secs(3));
    m.ended(EndReason::Rejected(Rejection::BadJson), None);
    m.ended(
        EndReason::Stream(Outcome::Completed),
        Some(Duration::from_millis(1500)),
    );
    m.ended(
        EndReason::Stream(Outcome::ClientDisconnected),
        Some(Duration::from_millis(20)),
    );
    m.ended(EndReason::Rejected(Rejection::Timeout), None);
    m.panicked();
    m.bytes_sent(119);
    m.bytes_sent(4000);
    m.chunks_sent(18);
    m.backend_request(Backend::Openai);
    m.backend_error(Backend::Openai);
    m.backend_ttfb(Backend::Openai, Duration::from_millis(3));
    m.backend_duration(Backend::Openai, Duration::from_millis(1400));
    m.resumed(ResumeResult::TakenOver);
    m.resumed(ResumeResult::Not(NotResumed::Mismatch));
    m.resumed(ResumeResult::Not(NotResumed::Mismatch));
    let gauges = Gauges {
        active_connections: 2,
        active_streams: 1,
        peak_streams: 4,
        buffered_bytes: 4096,
        log_lines_dropped: 3,
        detached_streams: 5,
    };
    let text = render(&m, gauges, None);
    check(&text).unwrap_or_else(|problem| panic!("{problem}\n{text}"));

    for line in [
        "daemon_active_connections 2",
        "daemon_active_streams 1",
        "daemon_peak_streams 4",
        "daemon_connections_total 3",
        "daemon_connections_rejected_total 1",
        "daemon_handoffs_total 3",
        "daemon_handoff_errors_total{reason=\"timeout\"} 1",
        "daemon_handoff_errors_total{reason=\"other\"} 0",
        "daemon_stream_errors_total{reason=\"client_disconnected\"} 1",
        "daemon_stream_errors_total{reason=\"other\"} 1",
        "daemon_stream_errors_total{reason=\"canceled\"} 0",
        "daemon_stream_outcomes_total{outcome=\"completed\"} 1",
        "daemon_stream_outcomes_total{outcome=\"client_disconnected\"} 1",
        "daemon_handoff_rejections_total{reason=\"bad_json\"} 1",
        "daemon_handoff_rejections_total{reason=\"timeout\"} 1",
        "daemon_panics_total 1",
        "daemon_log_lines_dropped_total 3",
        "daemon_buffered_bytes 4096",
        "daemon_bytes_sent_total 4119",
        "daemon_chunks_sent_total 18",
        "daemon_stream_duration_seconds_bucket{le=\"0.01\"} 0",
        "daemon_stream_duration_seconds_bucket{le=\"0.02\"} 1",
        "daemon_stream_duration_seconds_bucket{le=\"1.28\"} 1",
        "daemon_stream_duration_seconds_bucket{le=\"2.56\"} 2",
        "daemon_stream_duration_seconds_sum 1.52",
        "daemon_stream_duration_seconds_count 2",
        "daemon_backend_requests_total{backend=\"openai\"} 1",
        "daemon_backend_requests_total{backend=\"mock\"} 0",
        "daemon_backend_errors_total{backend=\"openai\"} 1",
        "daemon_backend_ttfb_seconds_bucket{backend=\"openai\",le=\"0.002\"} 0",
        "daemon_backend_ttfb_seconds_bucket{backend=\"openai\",le=\"0.004\"} 1",
        "daemon_backend_ttfb_seconds_sum{backend=\"openai\"} 0.003",
        "daemon_backend_duration_seconds_bucket{backend=\"openai\",le=\"2.56\"} 1",
        "daemon_backend_duration_seconds_count{backend=\"openai\"} 1",
        "daemon_backend_duration_seconds_count{backend=\"langgraph\"} 0",
        "daemon_resumes_total{result=\"taken_over\"} 1",
        "daemon_resumes_total{result=\"mismatch\"} 2",
        "daemon_resumes_total{result=\"resumed\"} 0",
        "daemon_detached_streams 5",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    let handoff: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("daemon_handoff_duration_seconds"))
        .collect();
    let expected = [
        "daemon_handoff_duration_seconds_bucket{le=\"0.0001\"} 1",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0002\"} 1",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0004\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0008\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0016\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0032\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0064\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0128\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0256\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.0512\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.1024\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.2048\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.4096\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"0.8192\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"1.6384\"} 2",
        "daemon_handoff_duration_seconds_bucket{le=\"+Inf\"} 3",
        "daemon_handoff_duration_seconds_sum 3.00035",
        "daemon_handoff_duration_seconds_count 3",
    ];
    assert_eq!(handoff, expected);
}

#[test]
fn process_series_render_in_seconds_and_units() {
    let (text, _) = checked(&Metrics::new(), Some(&PROCESS));
    let tail: Vec<&str> = text.lines().filter(|l| l.starts_with("process_")).collect();
    assert_eq!(
        tail,
        [
            "process_cpu_seconds_total 3.25",
            "process_max_fds 1048576",
            "process_open_fds 12",
            "process_resident_memory_bytes 8388608",
            "process_start_time_seconds 1700009876.54",
            "process_virtual_memory_bytes 123456789",
        ]
    );
}

#[test]
fn huge_values_still_pass_the_checker() {
    let m = Metrics::new();
    m.bytes_sent(u64::MAX);
    m.ended(EndReason::Stream(Outcome::Other), Some(Duration::MAX));
    let process = ProcessStats {
        max_fds: u64::MAX,
        ..PROCESS
    };
    checked(&m, Some(&process));
}

#[test]
fn render_appends_and_is_repeatable() {
    let m = Metrics::new();
    let mut out = b"prefix".to_vec();
    render_all(&[&m], Gauges::default(), None, &mut out);
    let once = render(&m, Gauges::default(), None);
    assert_eq!(&out[6..], once.as_bytes());
}

#[test]
fn every_workers_numbers_are_summed() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.connection_accepted();
    b.connection_accepted();
    b.connection_accepted();
    a.backend_ttfb(Backend::Openai, Duration::from_millis(3));
    b.backend_ttfb(Backend::Openai, Duration::from_millis(5));
    let mut out = Vec::new();
    render_all(&[&a, &b], Gauges::default(), None, &mut out);
    let text = String::from_utf8(out).unwrap();
    check(&text).unwrap_or_else(|problem| panic!("{problem}\n{text}"));
    for line in [
        "daemon_connections_total 3",
        "daemon_backend_ttfb_seconds_count{backend=\"openai\"} 2",
        "daemon_backend_ttfb_seconds_sum{backend=\"openai\"} 0.008",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}
