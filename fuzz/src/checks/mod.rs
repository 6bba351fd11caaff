//! What each fuzz target checks, one file per target, each with `pub fn check(data: &[u8])` that
//! panics when a property fails. A panic is what libFuzzer reports as a crash, and what the
//! replay test (`tests/fuzz_corpus.rs`, stable `cargo test`) reports as a failing corpus file.
//!
//! This module is compiled twice: as `streaming_daemon_fuzz::checks` for the fuzz targets, and
//! inside the daemon's replay test through a `#[path]` module. So it names its siblings with
//! `super::` and the daemon as `streaming_daemon`, and uses only what both have (the daemon's
//! `serde_json` and `httparse`).
//!
//! Beyond "no panic", a check tests what it can:
//! - split input gives the same result as whole input (a read can end anywhere);
//! - what the daemon encodes parses back to what it encoded;
//! - nothing grows past its limit;
//! - an input padded, re-encoded or with line ends changed the way the format allows gives the
//!   same result.
//!
//! ## Adding a target for a new parser
//! 1. `src/checks/<name>.rs` with `pub fn check(data: &[u8])`; [`wire`] has the shared helpers
//!    (`splits` for feeding an input in pieces, `complete_response` for a response we wrote).
//! 2. `pub mod <name>;` below and a row in [`TARGETS`].
//! 3. `fuzz_targets/<name>.rs` (three lines, copy one) and a `[[bin]]` in `fuzz/Cargo.toml`.
//! 4. A few small seed files in `corpus/<name>/`, written by hand in the wire shapes the parser
//!    meets.
//!
//! The replay test fails until all four agree, and then replays the new corpus in `cargo test`.

pub mod wire;

pub mod attachments;
pub mod config_yaml;
pub mod error_body;
pub mod flags;
pub mod handoff_data;
pub mod http_body;
pub mod http_head;
pub mod langgraph_relay;
pub mod openai_relay;
mod relay;
pub mod response_headers;
pub mod resume_id;
pub mod scrape_request;
pub mod sse_encode;
pub mod sse_parser;
pub mod typing_api;
pub mod upstream_json;
pub mod upstream_request;

/// A check: returns when every property holds for the input, panics otherwise.
pub type Check = fn(&[u8]);

/// A target's name (its `fuzz_targets/<name>.rs`, `corpus/<name>/` and `artifacts/<name>/`)
/// and its check.
pub type Target = (&'static str, Check);

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    ("handoff_data", handoff_data::check),
    ("upstream_request", upstream_request::check),
    ("config_yaml", config_yaml::check),
    ("flags", flags::check),
    ("sse_parser", sse_parser::check),
    ("sse_encode", sse_encode::check),
    ("http_head", http_head::check),
    ("http_body", http_body::check),
    ("scrape_request", scrape_request::check),
    ("openai_relay", openai_relay::check),
    ("langgraph_relay", langgraph_relay::check),
    ("upstream_json", upstream_json::check),
    ("error_body", error_body::check),
    ("response_headers", response_headers::check),
    ("attachments", attachments::check),
    ("typing_api", typing_api::check),
    ("resume_id", resume_id::check),
];
