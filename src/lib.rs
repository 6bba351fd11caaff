//! streaming-daemon: takes client connections handed off by Apache's `mod_socket_handoff` and
//! streams LLM responses to them as Server-Sent Events from one epoll event loop.

pub mod config;
pub mod http;
pub mod sse;
