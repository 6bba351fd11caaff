//! Load mode (`-n`, `-c`): many handoffs, paced, with every response read and judged.
//!
//! Three threads: the pacer makes pairs and hands them off ([`pacer`]); the reader, this
//! thread, reads every client end from one mio loop ([`reader`]); with `-pid`, a sampler reads
//! the daemon's `/proc` entry ([`sample`]). Pacer and reader talk through two channels:
//! handed-off client ends one way (with a `mio::Waker`), a permit per ended stream the other.

pub mod fault;
mod pacer;
mod reader;
mod sample;
mod stream;
mod summary;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use mio::{Poll, Waker};
use streaming_daemon::sys::limits;

use crate::args::{LoadOptions, Options};
use pacer::Pacer;
use reader::Reader;
use sample::Sampler;
use summary::Run;

/// Descriptors the tool needs besides one per stream in flight: stdio, epoll, the waker, the
/// load listener, a pair and a daemon connection being made, `/proc` files being read.
const SPARE_FDS: u64 = 32;

/// Runs the load; `Ok(true)` when every stream succeeded. `Err` is for set-up failures and a
/// broken event loop, which leave no summary worth printing.
pub fn run(options: &Options, load: &LoadOptions) -> Result<bool, String> {
    let wanted = load.concurrency + SPARE_FDS;
    let (soft, hard) = limits::raise_open_files(wanted)
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    if soft < wanted {
        return Err(format!(
            "-c {} needs {wanted} open files, but the limit is {soft} (hard {hard}); lower -c or raise ulimit -n",
            load.concurrency
        ));
    }

    // The baseline comes before the first handoff, so that it is the daemon at rest.
    let sampling = match load.pid {
        Some(pid) => {
            let sampler = Sampler::new(pid).map_err(|e| format!("-pid {pid}: {e}"))?;
            let baseline = sampler.sample().map_err(|e| format!("-pid {pid}: {e}"))?;
            Some((sampler, baseline))
        }
        None => None,
    };

    let poll = Poll::new().map_err(|e| format!("cannot create the event loop: {e}"))?;
    // Held here too until the reader is done: dropping the last one closes the eventfd, and a
    // wake still pending on a closed eventfd is lost (the pacer may finish before the reader
    // first polls).
    let waker = Arc::new(
        Waker::new(poll.registry(), reader::WAKER)
            .map_err(|e| format!("cannot create the event loop's waker: {e}"))?,
    );
    let (handed_tx, handed_rx) = mpsc::channel();
    let (permit_tx, permit_rx) = mpsc::channel();
    let pacer = Pacer::new(options, load, handed_tx, Arc::clone(&waker), permit_rx)
        .map_err(|e| format!("cannot listen on loopback for client pairs: {e}"))?;

    let (stop_sampling, stop_rx) = mpsc::channel::<()>();
    let sampler = match sampling {
        Some((sampler, baseline)) => Some(
            sampler
                .spawn(baseline, stop_rx)
                .map_err(|e| format!("cannot start the sampling thread: {e}"))?,
        ),
        None => None,
    };
    let started = Instant::now();
    let pacer = std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || pacer.run())
        .map_err(|e| format!("cannot start the pacing thread: {e}"))?;

    let finished = Reader::new(
        poll,
        handed_rx,
        permit_tx,
        options.timeout,
        load.fault_bytes,
        load.streams,
    )
    .run();
    let wall = started.elapsed();
    drop(waker);
    // The reader is gone either way, so the pacer's next send or permit wait ends it.
    let pacer_panicked = pacer.join().is_err();
    drop(stop_sampling);
    let daemon = match sampler.map(|s| s.join()) {
        Some(Ok(daemon)) => Some(daemon),
        Some(Err(_)) => return Err("the sampling thread panicked".into()),
        None => None,
    };
    let finished = finished.map_err(|e| format!("the reader's event loop failed: {e}"))?;
    if pacer_panicked {
        return Err("the pacing thread panicked".into());
    }
    if let Some(lost) = daemon.as_ref().and_then(|d| d.lost.as_deref()) {
        eprintln!("handoff: sampling stopped early: {lost}");
    }

    let run = Run {
        records: &finished.records,
        concurrency: load.concurrency,
        peak_in_flight: finished.peak_in_flight,
        socketpair: options.socketpair,
        wall,
        daemon: daemon.as_ref(),
        faults: load.faults_given.then_some(&load.faults),
    };
    let json = format!("{:#}\n", run.json());
    match &load.output {
        Some(path) => std::fs::write(path, json)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{json}"),
    }
    eprintln!("{}", run.human_line());
    Ok(run.failed() == 0)
}
