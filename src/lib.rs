//! streaming-daemon: takes client connections handed off by Apache's `mod_socket_handoff` and
//! streams LLM responses to them as Server-Sent Events from one epoll event loop.

pub mod attachments;
pub mod backends;
pub mod config;
pub mod conn;
mod daemon;
pub mod deadline;
pub mod end;
pub mod handoff;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod reactor;
pub mod resume;
#[cfg(test)]
mod splits;
pub mod sse;
pub mod stats;
pub mod sys;
pub mod upstream;

pub use daemon::{run, Startup};
