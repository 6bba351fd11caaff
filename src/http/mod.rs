//! HTTP/1.1 as the daemon speaks it: the response heads it writes to clients, and the requests
//! it sends upstream with the responses it reads back.
//!
//! | file | concern |
//! |---|---|
//! | `respond.rs` | success head and error responses written to clients, with custom headers |
//! | `request.rs` | one complete upstream request in a buffer |
//! | `response.rs` | upstream response heads |
//! | `body.rs` | upstream body framing: length, chunked, until close |

pub mod body;
pub mod request;
mod respond;
pub mod response;

pub use body::{Body, BodyError};
pub use request::{build_request, build_request_head, RequestError};
pub use respond::{
    error_response, error_response_with_headers, line_len, write_success_head, CustomHeaders,
    ErrorStatus, HeaderRefusal, NO_HEADERS, SSE_HEAD,
};
pub use response::{parse_head, Head, HeadError, HeadParse};
