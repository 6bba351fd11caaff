//! HTTP/1.1 as the daemon speaks it: the response heads it writes to clients.

mod respond;

pub use respond::{error_response, ErrorStatus, SSE_HEAD};
