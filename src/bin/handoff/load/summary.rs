//! What each stream came to, and the end-of-run summary: JSON for tools, one line for people.
//!
//! The JSON summary's fields:
//!
//! | field | meaning |
//! |---|---|
//! | `streams` | streams attempted (`-n`) |
//! | `succeeded` | status 200, `[DONE]` seen, no `event: error`, closed by the daemon in time |
//! | `failed` | `{total, pair, connect, handoff, status, incomplete, error_event, timeout, reset}`: streams per failure class (see [`Failure`]) |
//! | `statuses` | `{"<code>": count}` for every response whose head arrived, 200 included; `"0"` is a head that was not HTTP |
//! | `concurrency` | the most streams allowed in flight (`-c`) |
//! | `peak_in_flight` | the most streams that really were in flight at once |
//! | `transport` | `tcp` (loopback pairs) or `socketpair` |
//! | `wall_seconds` | first handoff to the end of the last stream |
//! | `streams_per_second` | `streams / wall_seconds` |
//! | `handoff_ms` | `{p50, p95, p99, max}`: connect to the daemon's socket until the handoff data is sent, over streams handed off |
//! | `ttfb_ms` | the same for start of handoff to the first response byte read, over streams that got one (never `noread` ones) |
//! | `ttfb_arrival_ms` | the same to the first bytes' arrival at the client socket (the kernel's receive stamp, loopback TCP only): `ttfb_ms` without the reader's delay in getting to the read |
//! | `daemon_ttfb_ms` | the same from the end of the handoff (data and fd sent) to that arrival: the daemon's own latency, without the load generator's connect and send |
//! | `duration_ms` | the same for start of handoff to the daemon's close, over streams the daemon closed |
//! | `bytes_total`, `events_total` | response bytes and SSE data events (`[DONE]` and `event: error` not counted) over all streams |
//! | `faults` | with `-faults` only: `{mix, <kind>: {streams, as_planned, late, failed}}` for each kind in the mix (see `fault`); `late` streams were completed by the daemon before the client's planned close |
//! | `daemon` | with `-pid` only: `{rss_baseline_kib, rss_peak_kib, peak_concurrent, rss_per_stream_bytes, cpu_seconds, cpu_seconds_per_1000_streams, threads_max, sampling_lost}` |
//!
//! `daemon.rss_per_stream_bytes` is `(rss_peak_kib - rss_baseline_kib) * 1024 / peak_concurrent`,
//! `daemon.cpu_seconds` the daemon's user plus system time from before the first handoff to
//! the end of the last stream, and `sampling_lost` says why sampling stopped early (or null).
//! Percentiles are nearest-rank; a distribution with no values is `null`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::fault::Fault;
use super::sample::DaemonUse;
use crate::mix::Mix;

/// Why a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The client pair could not be made here (out of fds, or of loopback ports).
    Pair,
    /// The daemon's socket could not be reached.
    Connect,
    /// `sendmsg` with the fd, or sending the rest of the data, failed.
    Handoff,
    /// A status other than 200 (0: a head that was not HTTP).
    Status(u16),
    /// Closed before a complete head, or after a 200 without `[DONE]`.
    Incomplete,
    /// The stream carried `event: error`.
    ErrorEvent,
    /// Not closed by the daemon within `-timeout` of its start.
    Timeout,
    /// Reading the client end failed (reset by the daemon, say).
    Reset,
}

const CLASSES: [&str; 8] = [
    "pair",
    "connect",
    "handoff",
    "status",
    "incomplete",
    "error_event",
    "timeout",
    "reset",
];

impl Failure {
    pub fn class(self) -> &'static str {
        match self {
            Failure::Pair => "pair",
            Failure::Connect => "connect",
            Failure::Handoff => "handoff",
            Failure::Status(_) => "status",
            Failure::Incomplete => "incomplete",
            Failure::ErrorEvent => "error_event",
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
        }
    }
}

/// One stream, as it ended.
#[derive(Debug, Clone)]
pub struct Record {
    /// How the client behaved (`-faults`).
    pub fault: Fault,
    /// A `close`, `reset` or `noread` stream that the daemon completed before the planned
    /// ending could happen: no failure, but the daemon counts it as completed.
    pub late: bool,
    /// Connect plus send; `None` when the handoff did not complete.
    pub handoff: Option<Duration>,
    pub ttfb: Option<Duration>,
    /// The same to the first bytes' arrival at the client socket (the kernel's stamp): without
    /// the load generator's own time to get to the read. `None` where the socket was not
    /// stamped (Unix socket pairs).
    pub ttfb_arrival: Option<Duration>,
    /// Until the daemon closed the stream; `None` for timeouts, resets and failed handoffs.
    pub duration: Option<Duration>,
    /// The status of the response head, if one arrived.
    pub status: Option<u16>,
    pub bytes: u64,
    pub events: u64,
    pub failure: Option<Failure>,
}

impl Record {
    /// From the end of the handoff to the first bytes' arrival: the daemon's part alone.
    pub fn daemon_ttfb(&self) -> Option<Duration> {
        let (arrival, handoff) = self.ttfb_arrival.zip(self.handoff)?;
        Some(arrival.saturating_sub(handoff))
    }

    /// A stream with nothing to read: it never reached the daemon (`failure`), or it had no
    /// client (`nofd`).
    pub fn unstreamed(fault: Fault, failure: Option<Failure>) -> Record {
        Record {
            fault,
            late: false,
            handoff: None,
            ttfb: None,
            ttfb_arrival: None,
            duration: None,
            status: None,
            bytes: 0,
            events: 0,
            failure,
        }
    }
}

/// Everything the summary is made from.
pub struct Run<'a> {
    pub records: &'a [Record],
    pub concurrency: u64,
    pub peak_in_flight: u64,
    pub socketpair: bool,
    pub wall: Duration,
    pub daemon: Option<&'a DaemonUse>,
    /// The `-faults` mix, when one was given.
    pub faults: Option<&'a Mix>,
}

/// One fault kind's streams, by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub streams: u64,
    pub as_planned: u64,
    pub late: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentiles of `values` (sorted here); `None` when there are none.
pub fn percentiles(values: &mut [f64]) -> Option<Percentiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let index = ((p / 100.0) * values.len() as f64).ceil() as usize;
        values[index.clamp(1, values.len()) - 1]
    };
    Some(Percentiles {
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
        max: values[values.len() - 1],
    })
}

impl Run<'_> {
    pub fn failures(&self) -> BTreeMap<&'static str, u64> {
        let mut counts: BTreeMap<&'static str, u64> = CLASSES.iter().map(|&c| (c, 0)).collect();
        for failure in self.records.iter().filter_map(|r| r.failure) {
            *counts.entry(failure.class()).or_default() += 1;
        }
        counts
    }

    pub fn failed(&self) -> u64 {
        self.records.iter().filter(|r| r.failure.is_some()).count() as u64
    }

    /// Per fault kind, in the order of `fault::NAMES`.
    pub fn fault_counts(&self) -> [FaultCounts; Fault::ALL.len()] {
        let mut counts = [FaultCounts::default(); Fault::ALL.len()];
        for record in self.records {
            let kind = &mut counts[record.fault.index()];
            kind.streams += 1;
            if record.failure.is_some() {
                kind.failed += 1;
            } else if record.late {
                kind.late += 1;
            } else {
                kind.as_planned += 1;
            }
        }
        counts
    }

    fn faults_json(&self, mix: &Mix) -> Value {
        let mut faults = json!({"mix": mix.spec()});
        for (fault, counts) in Fault::ALL.into_iter().zip(self.fault_counts()) {
            if mix.has(fault.index()) || counts.streams > 0 {
                faults[fault.name()] = json!({
                    "streams": counts.streams,
                    "as_planned": counts.as_planned,
                    "late": counts.late,
                    "failed": counts.failed,
                });
            }
        }
        faults
    }

    fn milliseconds(&self, pick: impl Fn(&Record) -> Option<Duration>) -> Option<Percentiles> {
        let mut values: Vec<f64> = self
            .records
            .iter()
            .filter_map(pick)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        percentiles(&mut values)
    }

    fn streams_per_second(&self) -> f64 {
        self.records.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn rss_per_stream_bytes(&self, daemon: &DaemonUse) -> u64 {
        let grown = daemon.rss_peak_kib.saturating_sub(daemon.baseline.rss_kib);
        grown * 1024 / self.peak_in_flight.max(1)
    }

    fn cpu_per_1000(&self, daemon: &DaemonUse) -> f64 {
        daemon.cpu_seconds() * 1000.0 / (self.records.len().max(1) as f64)
    }

    pub fn json(&self) -> Value {
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        for status in self.records.iter().filter_map(|r| r.status) {
            *statuses.entry(status.to_string()).or_default() += 1;
        }
        let mut failed = json!(self.failures());
        failed["total"] = json!(self.failed());
        let distribution = |p: Option<Percentiles>| match p {
            Some(p) => {
                json!({"p50": round3(p.p50), "p95": round3(p.p95), "p99": round3(p.p99), "max": round3(p.max)})
            }
            None => Value::Null,
        };
        let mut summary = json!({
            "streams": self.records.len(),
            "succeeded": self.records.len() as u64 - self.failed(),
            "failed": failed,
            "statuses": statuses,
            "concurrency": self.concurrency,
            "peak_in_flight": self.peak_in_flight,
            "transport": if self.socketpair { "socketpair" } else { "tcp" },
            "wall_seconds": round3(self.wall.as_secs_f64()),
            "streams_per_second": round3(self.streams_per_second()),
            "handoff_ms": distribution(self.milliseconds(|r| r.handoff)),
            "ttfb_ms": distribution(self.milliseconds(|r| r.ttfb)),
            "ttfb_arrival_ms": distribution(self.milliseconds(|r| r.ttfb_arrival)),
            "daemon_ttfb_ms": distribution(self.milliseconds(Record::daemon_ttfb)),
            "duration_ms": distribution(self.milliseconds(|r| r.duration)),
            "bytes_total": self.records.iter().map(|r| r.bytes).sum::<u64>(),
            "events_total": self.records.iter().map(|r| r.events).sum::<u64>(),
        });
        if let Some(mix) = self.faults {
            summary["faults"] = self.faults_json(mix);
        }
        if let Some(daemon) = self.daemon {
            summary["daemon"] = json!({
                "rss_baseline_kib": daemon.baseline.rss_kib,
                "rss_peak_kib": daemon.rss_peak_kib,
                "peak_concurrent": self.peak_in_flight,
                "rss_per_stream_bytes": self.rss_per_stream_bytes(daemon),
                "cpu_seconds": round3(daemon.cpu_seconds()),
                "cpu_seconds_per_1000_streams": round3(self.cpu_per_1000(daemon)),
                "threads_max": daemon.threads_max,
                "sampling_lost": daemon.lost,
            });
        }
        summary
    }

    /// E.g. `1000 streams: 998 ok, 2 failed (timeout 2) in 12.3 s (81/s); ttfb p50 0.21 ms
    /// p99 0.9 ms; daemon rss 312 B/stream at 1000 concurrent, cpu 0.061 s/1000 streams`.
    pub fn human_line(&self) -> String {
        let failed = self.failed();
        let mut line = format!(
            "{} streams: {} ok, {failed} failed",
            self.records.len(),
            self.records.len() as u64 - failed
        );
        if failed > 0 {
            let classes: Vec<String> = self
                .failures()
                .into_iter()
                .filter(|&(_, count)| count > 0)
                .map(|(class, count)| format!("{class} {count}"))
                .collect();
            line.push_str(&format!(" ({})", classes.join(", ")));
        }
        line.push_str(&format!(
            " in {:.1} s ({:.0}/s)",
            self.wall.as_secs_f64(),
            self.streams_per_second()
        ));
        if let Some(ttfb) = self.milliseconds(|r| r.ttfb) {
            line.push_str(&format!(
                "; ttfb p50 {} ms p99 {} ms",
                significant(ttfb.p50),
                significant(ttfb.p99)
            ));
        }
        if let Some(arrival) = self.milliseconds(|r| r.ttfb_arrival) {
            line.push_str(&format!(
                " (arrival p50 {} ms p99 {} ms",
                significant(arrival.p50),
                significant(arrival.p99)
            ));
            if let Some(daemon) = self.milliseconds(Record::daemon_ttfb) {
                line.push_str(&format!(
                    "; after the handoff p50 {} ms p99 {} ms",
                    significant(daemon.p50),
                    significant(daemon.p99)
                ));
            }
            line.push(')');
        }
        if let Some(mix) = self.faults {
            let kinds: Vec<String> = Fault::ALL
                .into_iter()
                .zip(self.fault_counts())
                .filter(|(fault, counts)| mix.has(fault.index()) || counts.streams > 0)
                .map(|(fault, counts)| match counts.late {
                    0 => format!("{} {}", fault.name(), counts.streams),
                    late => format!("{} {} ({late} late)", fault.name(), counts.streams),
                })
                .collect();
            line.push_str(&format!("; faults: {}", kinds.join(", ")));
        }
        if let Some(daemon) = self.daemon {
            line.push_str(&format!(
                "; daemon rss {} B/stream at {} concurrent, cpu {:.3} s/1000 streams",
                self.rss_per_stream_bytes(daemon),
                self.peak_in_flight,
                self.cpu_per_1000(daemon)
            ));
        }
        line
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Two significant digits, enough to read a latency at a glance.
fn significant(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::Sample;
    use super::*;

    fn ok(ms: u64) -> Record {
        Record {
            fault: Fault::Read,
            late: false,
            handoff: Some(Duration::from_micros(100)),
            ttfb: Some(Duration::from_millis(ms)),
            ttfb_arrival: Some(Duration::from_millis(ms) / 2),
            duration: Some(Duration::from_millis(ms * 10)),
            status: Some(200),
            bytes: 1000,
            events: 18,
            failure: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = percentiles(&mut values).unwrap();
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        let p = percentiles(&mut [7.0]).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (7.0, 7.0, 7.0));
        assert_eq!(percentiles(&mut []), None);
    }

    #[test]
    fn json_counts_failures_by_class_and_statuses_by_code() {
        let mut records: Vec<Record> = (1..=8).map(ok).collect();
        records.push(Record {
            status: Some(400),
            failure: Some(Failure::Status(400)),
            ..ok(1)
        });
        records.push(Record::unstreamed(Fault::Read, Some(Failure::Connect)));
        let run = Run {
            records: &records,
            concurrency: 4,
            peak_in_flight: 4,
            socketpair: false,
            wall: Duration::from_secs(2),
            daemon: None,
            faults: None,
        };
        let json = run.json();
        assert_eq!(json["streams"], 10);
        assert_eq!(json["succeeded"], 8);
        assert_eq!(json["failed"]["total"], 2);
        assert_eq!(json["failed"]["status"], 1);
        assert_eq!(json["failed"]["connect"], 1);
        assert_eq!(json["failed"]["timeout"], 0);
        assert_eq!(json["statuses"]["200"], 8);
        assert_eq!(json["statuses"]["400"], 1);
        assert_eq!(json["streams_per_second"], 5.0);
        assert_eq!(json["ttfb_ms"]["max"], 8.0);
        assert_eq!(json["ttfb_arrival_ms"]["max"], 4.0);
        assert_eq!(json["daemon_ttfb_ms"]["max"], 3.9);
        assert_eq!(json["handoff_ms"]["p50"], 0.1);
        assert_eq!(json["bytes_total"], 9000);
        assert!(json.get("daemon").is_none());
        assert!(json.get("faults").is_none());
        assert_eq!(
            run.human_line(),
            "10 streams: 8 ok, 2 failed (connect 1, status 1) in 2.0 s (5/s); ttfb p50 4.0 ms p99 8.0 ms (arrival p50 2.0 ms p99 4.0 ms; after the handoff p50 1.9 ms p99 3.9 ms)"
        );
    }

    #[test]
    fn daemon_figures_are_per_stream_at_peak() {
        let records: Vec<Record> = (0..2000).map(|_| ok(1)).collect();
        let sample = |rss_kib, cpu_seconds| Sample {
            rss_kib,
            threads: 1,
            cpu_seconds,
        };
        let daemon = DaemonUse {
            baseline: sample(2000, 1.0),
            rss_peak_kib: 3000,
            threads_max: 2,
            last: sample(2500, 1.5),
            lost: None,
        };
        let run = Run {
            records: &records,
            concurrency: 1000,
            peak_in_flight: 1000,
            socketpair: true,
            wall: Duration::from_secs(1),
            daemon: Some(&daemon),
            faults: None,
        };
        let json = run.json();
        assert_eq!(json["daemon"]["rss_per_stream_bytes"], 1024);
        assert_eq!(json["daemon"]["cpu_seconds"], 0.5);
        assert_eq!(json["daemon"]["cpu_seconds_per_1000_streams"], 0.25);
        assert_eq!(json["daemon"]["threads_max"], 2);
        assert_eq!(json["transport"], "socketpair");
        assert!(run
            .human_line()
            .ends_with("daemon rss 1024 B/stream at 1000 concurrent, cpu 0.250 s/1000 streams"));
    }

    #[test]
    fn faults_are_counted_per_kind_as_planned_late_or_failed() {
        let with = |fault, late, failure| Record {
            fault,
            late,
            failure,
            ..ok(1)
        };
        let records = vec![
            with(Fault::Read, false, None),
            with(Fault::Close, false, None),
            with(Fault::Close, true, None),
            with(Fault::Close, false, Some(Failure::Incomplete)),
            with(Fault::NoRead, false, Some(Failure::Timeout)),
            Record::unstreamed(Fault::NoFd, None),
        ];
        let mix = Mix::parse(
            "read=3,close=1,noread=1,nofd=1,badjson=0",
            super::super::fault::NAMES,
        )
        .unwrap();
        let run = Run {
            records: &records,
            concurrency: 4,
            peak_in_flight: 4,
            socketpair: false,
            wall: Duration::from_secs(1),
            daemon: None,
            faults: Some(&mix),
        };
        let json = run.json();
        let faults = &json["faults"];
        assert_eq!(
            faults["mix"],
            "read=3,close=1,reset=0,noread=1,halfclose=0,badjson=0,nofd=1"
        );
        assert_eq!(
            faults["close"],
            json!({"streams": 3, "as_planned": 1, "late": 1, "failed": 1})
        );
        assert_eq!(faults["read"]["as_planned"], 1);
        assert_eq!(faults["noread"]["failed"], 1);
        assert_eq!(faults["nofd"]["as_planned"], 1);
        // Kinds outside the mix with no streams are left out.
        assert!(faults.get("reset").is_none() && faults.get("badjson").is_none());
        assert_eq!(json["failed"]["total"], 2);
        assert!(
            run.human_line()
                .contains("; faults: read 1, close 3 (1 late), noread 1, nofd 1"),
            "{}",
            run.human_line()
        );
    }
}
