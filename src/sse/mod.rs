//! Server-Sent Events: encoding what we send to clients, parsing what upstreams send us.

mod encode;
pub mod parse;
mod raw;

pub use encode::{done, error_event, push_json_string, EventSink, DONE};
pub use parse::{SseError, SseItem, SseParser, DEFAULT_MAX_LINE};
pub use raw::RawEvents;
