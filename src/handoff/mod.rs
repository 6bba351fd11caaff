//! Receiving a handoff from Apache's module: the data it carries and why one is rejected.
//!
//! The bytes and fds arrive through the reactor; this module only interprets them.

mod data;
mod error;

pub use data::{parse_handoff_data, ChatMessage, HandoffData};
pub use error::HandoffError;
