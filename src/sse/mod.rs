//! Server-Sent Events: encoding what we send to clients.

mod encode;

pub use encode::{done, error_event, push_json_string, EventSink, DONE};
