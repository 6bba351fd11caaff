//! Calls to upstream APIs: TLS settings, name resolution, connections and the keep-alive pool.
//! The protocol itself (requests, response heads, bodies, SSE) lives in `http`, `sse` and the
//! backends; this module moves bytes.

pub mod pool;
pub mod resolve;
pub mod tls;
pub mod transport;
