//! Receiving a handoff from Apache's module: the data it carries and why one is rejected.
//!
//! The bytes and fds arrive through the reactor; this module only interprets them.
//!
//! | file | concern |
//! |---|---|
//! | `data.rs` | the handoff object: keys, defaults, the files it names |
//! | `fields.rs` | one value converted to the type its key needs |
//! | `content.rs` | `messages` and their string or content-parts content |
//! | `json.rs` | validated JSON text read one level at a time, order and duplicates kept |
//! | `response_headers.rs` | `response_headers` filtered into custom response headers |
//! | `error.rs` | why a handoff is rejected, and what the client is told |

mod content;
mod data;
mod error;
mod fields;
mod json;
mod response_headers;

pub use content::{ChatMessage, Content, ContentParts};
pub use data::{parse_handoff, parse_handoff_data, HandoffData, ParsedHandoff, StagedFiles};
pub use error::HandoffError;
pub use fields::InlineImage;
pub use json::RawJson;
pub use response_headers::{
    filter_response_headers, DropReason, ResponseHeaders, MAX_HEADERS, MAX_HEADER_BYTES,
};
