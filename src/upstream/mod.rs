//! Calls to upstream APIs: TLS settings, name resolution, connections and the keep-alive pool.
//! The protocol itself (requests, response heads, bodies, SSE) lives in `http`, `sse` and the
//! backends; this module moves bytes.

pub mod pool;
pub mod prepare;
pub mod resolve;
mod session;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod transport;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rustls::ClientConfig;

use crate::backends::upstream::{Scheme, Target};
use crate::config::UpstreamTimeouts;
use pool::Pool;
use resolve::{Host, Resolver};
use transport::Transport;

/// The backend's upstream as the reactor runs it: where it is, how to reach it, and the
/// connections kept for it.
pub struct Upstream {
    target: Target,
    tls: Option<Arc<ClientConfig>>,
    addresses: Vec<SocketAddr>,
    /// Rotates through `addresses`, so a dead address does not take every request.
    next_address: usize,
    resolver: Option<Resolver>,
    pool: Pool,
    next_sweep: Option<Instant>,
    pub timeouts: UpstreamTimeouts,
    /// Which upstream this is: a reload replaces it, and a connection opened by the one
    /// before (other settings, other trust) must not land in this one's pool.
    generation: u64,
}

#[derive(Debug)]
pub enum OpenError {
    /// The host has no known address yet (or its lookup failed).
    Unresolved(String),
    Connect(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Unresolved(reason) => write!(f, "no address for the upstream: {reason}"),
            OpenError::Connect(e) => write!(f, "cannot connect to the upstream: {e}"),
        }
    }
}

impl Upstream {
    /// Sets up TLS and the first lookup; `resolver` keeps the addresses fresh afterwards.
    pub fn new(
        target: Target,
        tls: Option<Arc<ClientConfig>>,
        timeouts: UpstreamTimeouts,
        resolver: Option<Resolver>,
        addresses: Vec<SocketAddr>,
        generation: u64,
    ) -> Upstream {
        let pool = Pool::new(
            1,
            timeouts.pool_max_idle_per_origin,
            timeouts.pool_idle_timeout,
        );
        Upstream {
            target,
            tls,
            addresses,
            next_address: 0,
            resolver,
            pool,
            next_sweep: None,
            timeouts,
            generation,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The host the resolver looks up (none for a Unix socket).
    pub fn host(target: &Target) -> Option<Host> {
        if target.origin.unix_socket.is_some() {
            return None;
        }
        Some(Host {
            name: target.origin.host.clone(),
            port: target.origin.port,
        })
    }

    pub fn needs_tls(target: &Target) -> bool {
        target.origin.scheme == Scheme::Https
    }

    /// A connection for one request: a pooled one (`true`) or a new one still connecting.
    pub fn open(&mut self, now: Instant, fresh: bool) -> Result<(Transport, bool), OpenError> {
        if !fresh {
            if let Some(transport) = self.pool.take(0, now) {
                return Ok((transport, true));
            }
        }
        let tls = self
            .tls
            .as_ref()
            .map(|config| (config, self.target.origin.host.as_str()));
        let transport = match &self.target.origin.unix_socket {
            Some(path) => Transport::connect_unix(path, tls).map_err(OpenError::Connect)?,
            None => {
                if self.addresses.is_empty() {
                    self.refresh();
                    return Err(OpenError::Unresolved(format!(
                        "{} is not resolved yet",
                        self.target.origin.host
                    )));
                }
                let address = self.addresses[self.next_address % self.addresses.len()];
                self.next_address = self.next_address.wrapping_add(1);
                Transport::connect_tcp(address, tls).map_err(OpenError::Connect)?
            }
        };
        Ok((transport, false))
    }

    /// Keeps a connection whose response was read completely, if this upstream opened it.
    pub fn release(&mut self, transport: Transport, generation: u64, now: Instant) {
        if generation != self.generation {
            return;
        }
        self.pool.put(0, transport, now);
        if self.next_sweep.is_none() && self.pool.idle() > 0 {
            self.next_sweep = Some(now + self.pool.sweep_interval());
        }
    }

    /// A connect failed: the addresses may be stale.
    pub fn refresh(&self) {
        if let Some(resolver) = &self.resolver {
            resolver.refresh(0);
        }
    }

    /// Takes what the resolver found since last time.
    pub fn take_resolved(&mut self) {
        let Some(resolver) = &self.resolver else {
            return;
        };
        for resolved in resolver.take() {
            match resolved.addresses {
                Ok(addresses) => {
                    if addresses != self.addresses {
                        let list: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                        log::info!(
                            host = self.target.origin.host.as_str(),
                            addresses = list.join(" ").as_str();
                            "upstream name resolved"
                        );
                    }
                    self.addresses = addresses;
                }
                // Keep the last good addresses: a failed lookup is more often DNS than a move.
                Err(reason) => log::warn!(
                    error:% = reason,
                    kept = self.addresses.len();
                    "upstream name lookup failed; keeping the known addresses"
                ),
            }
        }
    }

    /// When the pool wants its next sweep.
    pub fn sweep_at(&self) -> Option<Instant> {
        self.next_sweep
    }

    pub fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now >= at) {
            self.next_sweep = self.pool.sweep(now);
        }
    }

    pub fn idle_connections(&self) -> usize {
        self.pool.idle()
    }
}
