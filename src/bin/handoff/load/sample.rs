//! The daemon's resource use, read from `/proc/PID` while the load runs (`-pid`).
//!
//! A thread samples every `INTERVAL` and keeps the peaks; the CPU time is the difference
//! between the baseline (taken before the first handoff) and the last sample (taken when the
//! last stream has ended). Parsing is kept apart from reading so that it is tested on fixed text.

use std::io;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use streaming_daemon::metrics::{parse_stat, ticks_per_second};

const INTERVAL: Duration = Duration::from_millis(100);

/// One reading of the daemon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub rss_kib: u64,
    pub threads: u64,
    /// User plus system CPU time since the daemon started.
    pub cpu_seconds: f64,
}

/// What the sampling saw over the whole run.
#[derive(Debug, Clone)]
pub struct DaemonUse {
    pub baseline: Sample,
    pub rss_peak_kib: u64,
    pub threads_max: u64,
    /// The last successful sample; its CPU time ends the run's CPU delta.
    pub last: Sample,
    /// Why sampling stopped early (the daemon exited, say), if it did.
    pub lost: Option<String>,
}

pub struct Sampler {
    pid: u32,
    ticks_per_second: u64,
}

impl Sampler {
    pub fn new(pid: u32) -> io::Result<Sampler> {
        Ok(Sampler {
            pid,
            ticks_per_second: ticks_per_second()?,
        })
    }

    pub fn sample(&self) -> io::Result<Sample> {
        let read = |file: &str| {
            let path = format!("/proc/{}/{file}", self.pid);
            std::fs::read_to_string(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))
        };
        let malformed = |file: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{}/{file} has an unexpected format", self.pid),
            )
        };
        let (rss_kib, threads) =
            parse_status(&read("status")?).ok_or_else(|| malformed("status"))?;
        let stat = parse_stat(&read("stat")?).ok_or_else(|| malformed("stat"))?;
        let ticks = stat.utime_ticks + stat.stime_ticks;
        Ok(Sample {
            rss_kib,
            threads,
            cpu_seconds: ticks as f64 / self.ticks_per_second.max(1) as f64,
        })
    }

    /// Samples on a thread until `stop` is dropped or sent to, then once more.
    pub fn spawn(self, baseline: Sample, stop: Receiver<()>) -> io::Result<JoinHandle<DaemonUse>> {
        std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let mut seen = DaemonUse {
                    baseline,
                    rss_peak_kib: baseline.rss_kib,
                    threads_max: baseline.threads,
                    last: baseline,
                    lost: None,
                };
                loop {
                    let stopping =
                        !matches!(stop.recv_timeout(INTERVAL), Err(RecvTimeoutError::Timeout));
                    match self.sample() {
                        Ok(sample) => seen.add(sample),
                        Err(e) => {
                            seen.lost = Some(e.to_string());
                            break;
                        }
                    }
                    if stopping {
                        break;
                    }
                }
                seen
            })
    }
}

impl DaemonUse {
    fn add(&mut self, sample: Sample) {
        self.rss_peak_kib = self.rss_peak_kib.max(sample.rss_kib);
        self.threads_max = self.threads_max.max(sample.threads);
        self.last = sample;
    }

    pub fn cpu_seconds(&self) -> f64 {
        (self.last.cpu_seconds - self.baseline.cpu_seconds).max(0.0)
    }
}

/// `VmRSS` (in KiB, as the kernel prints it) and `Threads` from `/proc/PID/status`.
pub fn parse_status(text: &str) -> Option<(u64, u64)> {
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((value("VmRSS")?, value("Threads")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tstreaming-daem\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t   30600 kB\nVmHWM:\t    9000 kB\nVmRSS:\t    8123 kB\nRssAnon:\t     112 kB\n\
        Threads:\t2\nSigQ:\t0/96551\n";

    #[test]
    fn status_gives_rss_in_kib_and_threads() {
        assert_eq!(parse_status(STATUS), Some((8123, 2)));
    }

    #[test]
    fn status_without_rss_is_rejected() {
        // A zombie's status has no Vm lines at all.
        let zombie = "Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n";
        assert_eq!(parse_status(zombie), None);
        assert_eq!(parse_status(""), None);
        assert_eq!(parse_status(&STATUS.replace("8123", "lots")), None);
    }

    #[test]
    fn lookalike_names_do_not_match() {
        let text = "VmRSSx:\t1 kB\nVmRSS:\t2 kB\nThreadsy:\t3\nThreads:\t4\n";
        assert_eq!(parse_status(text), Some((2, 4)));
    }

    #[test]
    fn cpu_time_is_measured_from_the_baseline_and_peaks_are_kept() {
        let sample = |rss_kib, threads, cpu_seconds| Sample {
            rss_kib,
            threads,
            cpu_seconds,
        };
        let mut seen = DaemonUse {
            baseline: sample(1000, 1, 2.0),
            rss_peak_kib: 1000,
            threads_max: 1,
            last: sample(1000, 1, 2.0),
            lost: None,
        };
        seen.add(sample(5000, 3, 2.5));
        seen.add(sample(4000, 2, 3.25));
        assert_eq!((seen.rss_peak_kib, seen.threads_max), (5000, 3));
        assert_eq!(seen.cpu_seconds(), 1.25);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sampler = Sampler::new(std::process::id()).unwrap();
        let sample = sampler.sample().unwrap();
        assert!(sample.rss_kib > 0 && sample.threads >= 1, "{sample:?}");
    }
}
