//! Getting a backend's upstream ready, in two halves: what may block (reading CA files, the
//! first name lookup), done at start-up or on a reload's helper thread, and then, in the loop,
//! the [`Upstream`] with its resolver thread.

use std::net::SocketAddr;
use std::sync::Arc;

use mio::Waker;
use rustls::ClientConfig;

use super::resolve::{self, Host, Resolver};
use super::tls::{self, Trust};
use super::Upstream;
use crate::backends::upstream::Target;
use crate::config::UpstreamTimeouts;

/// The upstream API checked and looked up, ready for the loop.
pub struct PreparedUpstream {
    target: Target,
    tls: Option<Arc<ClientConfig>>,
    host: Option<Host>,
    addresses: Vec<SocketAddr>,
}

/// Every target prepared, in order (see [`prepare`]). Blocks: never call it from the loop.
pub fn prepare_all(targets: &[Target]) -> Result<Vec<PreparedUpstream>, String> {
    targets.iter().map(prepare).collect()
}

/// TLS trust (a bad `ca_file` or `SSL_CERT_FILE` is a configuration error) and a first lookup,
/// so that the first requests need not wait. Blocks: never call it from the loop.
pub fn prepare(target: &Target) -> Result<PreparedUpstream, String> {
    let target = target.clone();
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
            log::warn!(error = reason.as_str(); "upstream name lookup failed; requests get 502 until it resolves");
            Vec::new()
        }),
    };
    Ok(PreparedUpstream {
        target,
        tls,
        host,
        addresses,
    })
}

impl PreparedUpstream {
    /// The upstream for the loop, with the resolver thread that keeps its addresses fresh
    /// (it wakes the loop through `waker`). `generation` tells its pooled connections from
    /// those of an upstream a reload replaced.
    pub fn into_upstream(
        self,
        timeouts: UpstreamTimeouts,
        waker: Arc<Waker>,
        generation: u64,
    ) -> Result<Upstream, String> {
        let PreparedUpstream {
            target,
            tls,
            host,
            addresses,
        } = self;
        let resolver = match host {
            None => None,
            Some(host) => Some(
                Resolver::start(vec![host], waker)
                    .map_err(|e| format!("cannot start the resolver thread: {e}"))?,
            ),
        };
        let origin = &target.origin;
        log::info!(
            scheme = if tls.is_some() { "https" } else { "http" },
            host = origin.host.as_str(),
            port = origin.port,
            path = origin.base_path.as_str(),
            socket = origin.unix_socket.as_ref().map(|p| p.display().to_string());
            "upstream"
        );
        Ok(Upstream::new(
            target, tls, timeouts, resolver, addresses, generation,
        ))
    }
}
