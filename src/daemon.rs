//! Start-up and shutdown around the reactor, in the order SPEC §6 gives: the configuration
//! (already validated), what systemd or the process we replace passed us, logging, the backend
//! and its upstream, file limits, signals, the listeners, the loop, readiness.

use std::backtrace::Backtrace;
use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::backends::{Backends, DaemonWide};
use crate::config::Config;
use crate::reactor::{Follower, Listener, Reactor, ReloadSource, UpgradeSource};
use crate::stats::Tally;
use crate::sys::activation::{self, Activation, ActivationError};
use crate::sys::notify::{self, Notifier};
use crate::sys::{limits, signals::SignalFd, spawn};
use crate::upstream::prepare;

/// Exit code for errors found before serving (configuration, backend set-up, a passed
/// listener of the wrong kind).
pub const EXIT_CONFIG: i32 = 2;
/// Exit code for failures while starting to serve or while serving.
const EXIT_RUNTIME: i32 = 1;

/// What must be taken from the process's start before any thread exists.
pub struct Startup {
    /// Listeners passed by systemd (socket activation) or by the daemon we replace.
    activation: Option<Activation>,
    /// Where an upgrade starts the new version from; `None` (with why) when it cannot be found.
    executable: Result<PathBuf, String>,
    /// The command line, without the program name: for reloads and upgrades.
    args: Vec<OsString>,
}

impl Startup {
    /// Reads and removes `LISTEN_*` and takes the fds they name (SPEC §6.4); finds the path we
    /// were started from. Call it before any thread starts: the environment is changed.
    pub fn take(config: &Config, args: Vec<OsString>) -> Result<Startup, ActivationError> {
        Ok(Startup {
            activation: activation::take_from_env(config.server.socket_type)?,
            executable: spawn::startup_executable().map_err(|e| e.to_string()),
            args,
        })
    }
}

/// Runs the daemon with a validated configuration until it has drained; returns the process
/// exit code (0 after a clean shutdown).
pub fn run(config: Config, startup: Startup) -> i32 {
    install_panic_logger();
    // What every worker's backends share (the fortune rate limit), now and after reloads.
    let wide = DaemonWide::default();
    let backends = match Backends::create_with(&config, &wide) {
        Ok(backends) => backends,
        Err(e) => {
            log::error!(error:% = e; "cannot set up the backend");
            return EXIT_CONFIG;
        }
    };
    let prepared_upstreams = match prepare::prepare_all(backends.targets()) {
        Ok(prepared) => prepared,
        Err(message) => {
            log::error!(error = message.as_str(); "cannot set up the upstream API");
            return EXIT_CONFIG;
        }
    };
    // Each further worker gets backends and upstreams of its own (never shared).
    let mut others = Vec::new();
    for _ in 1..config.server.worker_count() {
        let made = Backends::create_with(&config, &wide)
            .map_err(|e| e.to_string())
            .and_then(|backends| {
                let prepared = prepare::prepare_all(backends.targets())?;
                Ok((backends, prepared))
            });
        match made {
            Ok(made) => others.push(made),
            Err(message) => {
                log::error!(error = message.as_str(); "cannot set up a worker's backend");
                return EXIT_CONFIG;
            }
        }
    }

    // Each stream holds a client fd and possibly an upstream one; handoffs hold one more.
    let wanted = 2 * config.server.max_connections as u64 + 2000;
    match limits::raise_open_files(wanted) {
        Ok((soft, _)) if soft < wanted => log::warn!(
            limit = soft,
            wanted = wanted;
            "the open-file limit is below what max_connections may need; raise LimitNOFILE"
        ),
        Ok(_) => {}
        Err(e) => log::warn!(error:% = e; "cannot read or raise the open-file limit"),
    }

    // Before the loop's helper threads exist, so that every one inherits the blocked signals.
    let signals = match SignalFd::new() {
        Ok(signals) => signals,
        Err(e) => {
            log::error!(error:% = e; "cannot set up signal handling");
            return EXIT_RUNTIME;
        }
    };

    let Startup {
        activation,
        executable,
        args,
    } = startup;
    let (handoff_fd, metrics_fd, upgrade_pipe, socket_owner) = match activation {
        Some(passed) => (
            Some(passed.handoff),
            passed.metrics,
            passed.upgrade,
            passed.socket_owner,
        ),
        None => (None, None, None, false),
    };
    let server = &config.server;
    let listener = match take_listener(&config, handoff_fd, socket_owner) {
        Ok(listener) => listener,
        Err((code, message)) => {
            log::error!(error = message.as_str(); "cannot take the handoff socket");
            return code;
        }
    };
    let now = Instant::now();
    // The path it really listens on: a passed socket's own, not `socket_path`.
    let listening_on = listener.path().display().to_string();
    let mut listener_for_workers = Vec::new();
    for _ in 0..others.len() {
        match listener.for_another_worker() {
            Ok(copy) => listener_for_workers.push(copy),
            Err(e) => {
                log::error!(error:% = e; "cannot share the handoff socket with the workers");
                return EXIT_RUNTIME;
            }
        }
    }
    let (metrics_listener, metrics_retry) = take_metrics(&config, metrics_fd);
    let mut reactor =
        match Reactor::new(&config, listener, metrics_listener, Some(signals), backends) {
            Ok(reactor) => reactor,
            Err(e) => {
                log::error!(error:% = e; "cannot start the event loop");
                return EXIT_RUNTIME;
            }
        };
    if let Some(address) = metrics_retry {
        reactor.retry_metrics_bind(address, now);
    }
    reactor.open_data_dir(now);
    if let Err(message) = reactor.attach_upstreams(prepared_upstreams, &config.backend.upstream) {
        log::error!(error = message.as_str(); "cannot start the upstream API");
        return EXIT_RUNTIME;
    }
    let workers = match start_followers(&config, &reactor, listener_for_workers, others, now) {
        Ok(workers) => workers,
        Err(message) => {
            log::error!(error = message.as_str(); "cannot start the workers");
            return EXIT_RUNTIME;
        }
    };
    reactor.lead(workers.iter().map(|w| w.handle.clone()).collect());
    reactor.share_backends(wide);
    reactor.announce_backends();
    reactor.set_reload_source(ReloadSource { args: args.clone() });
    match executable {
        Ok(executable) => reactor.set_upgrade_source(UpgradeSource { executable, args }),
        Err(why) => log::warn!(error = why.as_str(); "SIGUSR2 upgrades are not available"),
    }
    log::info!(
        socket = listening_on.as_str(),
        socket_type = server.socket_type.as_str(),
        socket_mode = format!("{:04o}", server.socket_mode).as_str(),
        backend = config.backend.provider.as_str(),
        workers = config.server.worker_count(),
        max_connections = server.max_connections,
        max_stream_duration_ms = server.max_stream_duration.as_millis() as u64,
        mem_limit = server.mem_limit;
        "streaming-daemon started"
    );
    announce_ready(&mut reactor, upgrade_pipe, now);

    let result = reactor.run();
    let tallies: Vec<Tally> = workers
        .into_iter()
        .filter_map(|worker| worker.thread.join().ok().flatten())
        .collect();
    if config.benchmark {
        let mut all = vec![reactor.tally()];
        all.extend(tallies.iter());
        print!("{}", Tally::benchmark_summary(&all));
    }
    match result {
        Ok(()) => {
            log::info!("drained; exiting");
            0
        }
        Err(e) => {
            log::error!(error:% = e; "event loop failed");
            EXIT_RUNTIME
        }
    }
}

/// A follower's thread, and the leader's handle on it.
struct Worker {
    handle: Follower,
    /// Its tally at the end (`None` if it could not run).
    thread: JoinHandle<Option<Tally>>,
}

/// Starts one follower thread per listener copy, each with its own backends and upstreams,
/// and waits until each loop is ready to serve.
fn start_followers(
    config: &Config,
    leader: &Reactor,
    listeners: Vec<Listener>,
    backends: Vec<(Backends, Vec<prepare::PreparedUpstream>)>,
    now: Instant,
) -> Result<Vec<Worker>, String> {
    let mut workers = Vec::new();
    for (index, (listener, (backends, prepared))) in listeners.into_iter().zip(backends).enumerate()
    {
        let config = config.clone();
        let shared = leader.tally().shared().clone();
        let leader_waker = leader.waker();
        let (control, orders) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("worker-{}", index + 1))
            .spawn(move || {
                let made = Reactor::worker(&config, listener, backends, shared)
                    .map_err(|e| e.to_string())
                    .and_then(|mut reactor| {
                        reactor.attach_upstreams(prepared, &config.backend.upstream)?;
                        reactor.open_data_dir(now);
                        reactor.follow(orders, leader_waker);
                        Ok(reactor)
                    });
                let mut reactor = match made {
                    Ok(reactor) => reactor,
                    Err(message) => {
                        let _ = ready.send(Err(message));
                        return None;
                    }
                };
                let _ = ready.send(Ok(reactor.waker()));
                if let Err(e) = reactor.run() {
                    log::error!(error:% = e; "a worker's event loop failed");
                }
                Some(reactor.into_tally())
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        let waker = started
            .recv()
            .map_err(|_| "a worker thread ended before it started".to_string())??;
        workers.push(Worker {
            handle: Follower::new(control, waker),
            thread,
        });
    }
    Ok(workers)
}

/// The handoff listener: passed to us, or bound at `socket_path`.
fn take_listener(
    config: &Config,
    passed: Option<OwnedFd>,
    socket_owner: bool,
) -> Result<Listener, (i32, String)> {
    let server = &config.server;
    let Some(fd) = passed else {
        return Listener::bind(&server.socket_path, server.socket_type, server.socket_mode)
            .map_err(|e| (EXIT_RUNTIME, e.to_string()));
    };
    // A passed socket of the wrong type is a configuration error (SPEC §6.4).
    let mut listener =
        Listener::inherited(fd, server.socket_type).map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    if socket_owner {
        listener
            .claim_path(&server.socket_path)
            .map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    } else {
        log::info!(
            bound:% = listener.path().display();
            "listening on a socket passed to us: socket_path and socket_mode are not used"
        );
    }
    Ok(listener)
}

/// The metrics listener: passed to us, bound at `listen_addr`, or none (metrics off). A bind
/// that fails is not fatal (as in the Go daemon): it is logged and retried (the address).
fn take_metrics(
    config: &Config,
    passed: Option<OwnedFd>,
) -> (Option<mio::net::TcpListener>, Option<SocketAddr>) {
    if let Some(fd) = passed {
        let listener = std::net::TcpListener::from(fd);
        return (Some(mio::net::TcpListener::from_std(listener)), None);
    }
    let metrics = &config.metrics;
    if !metrics.enabled || metrics.listen_addr.is_empty() {
        return (None, None);
    }
    let address: SocketAddr = match metrics.listen_addr.parse() {
        Ok(address) => address,
        Err(e) => {
            log::error!(
                address = metrics.listen_addr.as_str(),
                error:% = e;
                "metrics.listen_addr is not host:port; metrics are off"
            );
            return (None, None);
        }
    };
    match mio::net::TcpListener::bind(address) {
        Ok(listener) => {
            // The bound address: with port 0 in the configuration, the one the kernel picked.
            let bound = listener.local_addr().unwrap_or(address);
            log::info!(url = format!("http://{bound}/metrics").as_str(); "metrics listening");
            (Some(listener), None)
        }
        Err(e) => {
            log::error!(
                address:% = address,
                error:% = e;
                "cannot listen for metrics; serving handoffs and retrying every 30 s"
            );
            (None, Some(address))
        }
    }
}

/// Ready: the process we replace hears it on its pipe (and stops accepting), systemd on its
/// socket (with our pid as the service's main pid after an upgrade); the watchdog starts.
fn announce_ready(reactor: &mut Reactor, upgrade_pipe: Option<OwnedFd>, now: Instant) {
    let notifier = Notifier::from_env();
    match upgrade_pipe {
        Some(pipe) => {
            let mut pipe = std::fs::File::from(pipe);
            if let Err(e) = pipe.write_all(b"READY=1\n") {
                log::error!(error:% = e; "cannot tell the process we replace that we are ready");
            }
            drop(pipe);
            notifier.main_pid_ready(std::process::id());
        }
        None => {
            notifier.ready();
        }
    }
    if let Some(interval) = notify::watchdog_interval_from_env() {
        reactor.set_watchdog(interval, now);
    }
    reactor.set_notifier(notifier);
}

/// A panic in one connection is caught by the reactor; this makes sure it is logged with its
/// backtrace through `log` rather than printed raw to stderr.
fn install_panic_logger() {
    std::panic::set_hook(Box::new(|info| {
        log::error!("panic: {info}\n{}", Backtrace::force_capture());
    }));
}
