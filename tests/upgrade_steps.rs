//! The upgrade's time limit, stepped: a new process that never says `READY=1` is given 30 s of
//! the reactor's clock (skipped, never waited for), then killed and reaped, while the old
//! process serves throughout. The log is captured by a logger of this test binary's own: it
//! holds one test, so no other test's lines mix in.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::harness::Harness;
use common::*;
use log::kv::{Key, Value, VisitSource};
use streaming_daemon::reactor::UpgradeSource;

/// Every log line, as `LEVEL message key=value…`.
struct Capture(Mutex<Vec<String>>);

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

struct Fields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push_str(&format!(" {key}={value}"));
        Ok(())
    }
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut line = format!("{} {}", record.level(), record.args());
        let _ = record.key_values().visit(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

impl Capture {
    fn lines_with(&self, needle: &str) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    fn one_with(&self, needle: &str) -> String {
        let found = self.lines_with(needle);
        assert_eq!(found.len(), 1, "one line with {needle:?}: {found:?}");
        found[0].clone()
    }
}

fn pid_in(line: &str) -> i32 {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"))
}

/// Whether `pid` exists at all: a zombie (killed, not reaped) still does.
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn serves(h: &mut Harness) -> bool {
    let (mut client, server) = tcp_pair();
    h.hand_off(b"{}", &server);
    drop(server);
    h.collect(&mut client).ends_with("data: [DONE]\n\n")
}

#[test]
fn a_new_process_not_ready_within_30_s_is_killed_and_reaped_and_the_old_one_serves_on() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let mut h = Harness::new("upgrade-never-ready", |_| {});
    // The reactor's clock moves only when the test moves it.
    h.frozen = Some(Instant::now());
    // A "new version" that starts, holds the listeners and its pipe, and never says READY=1.
    h.reactor.set_upgrade_source(UpgradeSource {
        executable: "/bin/sh".into(),
        args: vec!["-c".into(), "exec sleep 60".into()],
    });
    let now = h.now();
    h.reactor.begin_upgrade(now);
    let pid = pid_in(&CAPTURE.one_with("new process started"));
    assert!(exists(pid));

    // Just short of the limit: still waiting for it, and still serving.
    h.skip(Duration::from_millis(29_900));
    assert!(serves(&mut h));
    assert!(exists(pid));
    assert!(CAPTURE.lines_with("upgrade failed").is_empty());

    // Past it: killed, with the reason logged as an error naming it.
    h.skip(Duration::from_millis(200));
    h.turn();
    let failed = CAPTURE.one_with("upgrade failed");
    assert!(failed.starts_with("ERROR "), "{failed}");
    assert!(failed.contains("not ready within 30 s"), "{failed}");
    assert_eq!(pid_in(&failed), pid, "{failed}");
    // Reaped by the loop on its own clock, without a new event or another upgrade (and not
    // under systemd, whose housekeeping would wake it anyway): no zombie is left.
    h.turn_until_skipping(Duration::from_millis(10), |_| !exists(pid));

    // The old process was never disturbed: its socket path is there and it serves.
    assert!(h.path.exists());
    assert!(serves(&mut h));
    assert!(CAPTURE.lines_with("handing over").is_empty());
}
