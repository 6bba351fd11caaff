//! Start-up and shutdown around the reactor, in the order SPEC §6 gives.

use std::backtrace::Backtrace;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::backends;
use crate::backends::upstream::Target;
use crate::config::Config;
use crate::reactor::{Listener, Reactor};
use crate::sys::{limits, signals::SignalFd};
use crate::upstream::resolve::{self, Host, Resolver};
use crate::upstream::tls::{self, Trust};
use crate::upstream::Upstream;

/// Exit code for errors found before serving (configuration, backend set-up).
const EXIT_CONFIG: i32 = 2;
/// Exit code for failures while starting to serve or while serving.
const EXIT_RUNTIME: i32 = 1;

/// Runs the daemon with a validated configuration until it has drained; returns the process
/// exit code (0 after a clean shutdown).
pub fn run(config: Config) -> i32 {
    install_panic_logger();
    let backend = match backends::create(&config) {
        Ok(backend) => backend,
        Err(e) => {
            log::error!("{e}");
            return EXIT_CONFIG;
        }
    };
    let prepared_upstream = match prepare_upstream(backend.upstream()) {
        Ok(prepared) => prepared,
        Err(message) => {
            log::error!("{message}");
            return EXIT_CONFIG;
        }
    };

    // Each stream holds a client fd and possibly an upstream one; handoffs hold one more.
    let wanted = 2 * config.server.max_connections as u64 + 2000;
    match limits::raise_open_files(wanted) {
        Ok((soft, _)) if soft < wanted => log::warn!(
            "open-file limit is {soft}, below the {wanted} that {} connections may need; raise LimitNOFILE",
            config.server.max_connections
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot read or raise the open-file limit: {e}"),
    }

    // Before any thread exists, so that every thread inherits the blocked signal mask.
    let signals = match SignalFd::new() {
        Ok(signals) => signals,
        Err(e) => {
            log::error!("cannot set up signal handling: {e}");
            return EXIT_RUNTIME;
        }
    };

    let server = &config.server;
    let listener = match Listener::bind(&server.socket_path, server.socket_type, server.socket_mode)
    {
        Ok(listener) => listener,
        Err(e) => {
            log::error!("{e}");
            return EXIT_RUNTIME;
        }
    };
    let metrics_listener = match bind_metrics(&config) {
        Ok(metrics_listener) => metrics_listener,
        Err(message) => {
            log::error!("{message}");
            return EXIT_RUNTIME;
        }
    };
    let mut reactor =
        match Reactor::new(&config, listener, metrics_listener, Some(signals), backend) {
            Ok(reactor) => reactor,
            Err(e) => {
                log::error!("cannot start the event loop: {e}");
                return EXIT_RUNTIME;
            }
        };
    if let Some(prepared) = prepared_upstream {
        if let Err(message) = attach_upstream(&mut reactor, prepared, &config) {
            log::error!("{message}");
            return EXIT_RUNTIME;
        }
    }
    log::info!(
        "listening on {} ({}, mode {:04o}); backend {}; max_connections {}; max_stream_duration {:?}",
        server.socket_path.display(),
        server.socket_type.as_str(),
        server.socket_mode,
        config.backend.provider,
        server.max_connections,
        server.max_stream_duration
    );

    let result = reactor.run();
    if config.benchmark {
        print!("{}", reactor.tally().benchmark_summary());
    }
    match result {
        Ok(()) => {
            log::info!("drained; exiting");
            0
        }
        Err(e) => {
            log::error!("event loop failed: {e}");
            EXIT_RUNTIME
        }
    }
}

/// The backend's upstream API, checked before anything binds: TLS trust (a bad `ca_file` or
/// `SSL_CERT_FILE` is a configuration error) and a first lookup, so that the first requests
/// need not wait.
struct PreparedUpstream {
    target: Target,
    tls: Option<Arc<ClientConfig>>,
    host: Option<Host>,
    addresses: Vec<SocketAddr>,
}

fn prepare_upstream(target: Option<&Target>) -> Result<Option<PreparedUpstream>, String> {
    let Some(target) = target.cloned() else {
        return Ok(None);
    };
    let tls = if Upstream::needs_tls(&target) {
        let trust = Trust {
            cert_file: std::env::var_os("SSL_CERT_FILE")
                .filter(|v| !v.is_empty())
                .map(Into::into),
            ca_file: target.ca_file.clone(),
            insecure: target.insecure_ssl,
        };
        Some(tls::client_config(&trust).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let host = Upstream::host(&target);
    let addresses = match &host {
        None => Vec::new(),
        Some(host) => resolve::lookup(host).unwrap_or_else(|reason| {
            log::warn!("{reason}; requests get 502 until it resolves");
            Vec::new()
        }),
    };
    Ok(Some(PreparedUpstream {
        target,
        tls,
        host,
        addresses,
    }))
}

/// Hands the upstream to the loop, with the resolver thread that keeps its addresses fresh.
fn attach_upstream(
    reactor: &mut Reactor,
    prepared: PreparedUpstream,
    config: &Config,
) -> Result<(), String> {
    let PreparedUpstream {
        target,
        tls,
        host,
        addresses,
    } = prepared;
    let resolver = match host {
        None => None,
        Some(host) => {
            let waker = reactor.waker();
            let resolver = Resolver::start(vec![host], waker)
                .map_err(|e| format!("cannot start the resolver thread: {e}"))?;
            Some(resolver)
        }
    };
    let origin = &target.origin;
    log::info!(
        "upstream {}://{}:{}{}{}",
        if tls.is_some() { "https" } else { "http" },
        origin.host,
        origin.port,
        origin.base_path,
        origin
            .unix_socket
            .as_ref()
            .map(|p| format!(" via {}", p.display()))
            .unwrap_or_default()
    );
    let timeouts = config.backend.upstream.clone();
    reactor.attach_upstream(Upstream::new(target, tls, timeouts, resolver, addresses));
    Ok(())
}

/// The metrics listener, unless metrics are off. In `-benchmark` mode it still answers health
/// checks; its counters stay at zero because they are not kept.
fn bind_metrics(config: &Config) -> Result<Option<mio::net::TcpListener>, String> {
    let metrics = &config.metrics;
    if !metrics.enabled || metrics.listen_addr.is_empty() {
        return Ok(None);
    }
    let address: std::net::SocketAddr = metrics.listen_addr.parse().map_err(|e| {
        format!(
            "metrics.listen_addr {:?} is not host:port: {e}",
            metrics.listen_addr
        )
    })?;
    let listener = mio::net::TcpListener::bind(address).map_err(|e| {
        format!("cannot listen for metrics on {address}: {e}; set -metrics-addr= to disable")
    })?;
    // The bound address: with port 0 in the configuration, the one the kernel picked.
    let bound = listener.local_addr().unwrap_or(address);
    log::info!("metrics on http://{bound}/metrics");
    Ok(Some(listener))
}

/// A panic in one connection is caught by the reactor; this makes sure it is logged with its
/// backtrace through `log` rather than printed raw to stderr.
fn install_panic_logger() {
    std::panic::set_hook(Box::new(|info| {
        log::error!("panic: {info}\n{}", Backtrace::force_capture());
    }));
}
