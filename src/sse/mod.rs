//! Server-Sent Events: encoding what we send to clients.

mod encode;

pub use encode::{done, error_event, EventSink};
