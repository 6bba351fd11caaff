//! streaming-daemon: takes client connections handed off by Apache's `mod_socket_handoff` and
//! streams LLM responses to them as Server-Sent Events from one epoll event loop.

pub mod config;
pub mod http;
pub mod logging;
pub mod sse;

/// Runs the daemon with a validated configuration until it has drained; returns the process
/// exit code (0 after a clean shutdown, 1 on a runtime error).
pub fn run(config: config::Config) -> i32 {
    log::info!(
        "streaming-daemon would listen on {}",
        config.server.socket_path.display()
    );
    0
}
