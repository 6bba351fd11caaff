//! Metrics and health: the daemon's numbers, their Prometheus rendering, and the sans-I/O half
//! of the scrape endpoint.
//!
//! The reactor owns one [`Metrics`], calls its event methods where things happen, and serves
//! `/metrics` and `/healthz` from a bounded scrape connection that uses [`scrape`]'s pure
//! functions. Nothing here does I/O except [`ProcessReader`], which reads `/proc` (counting
//! descriptors on a thread of its own).

mod counter;
mod histogram;
mod labels;
mod process;
mod record;
mod render;
pub mod scrape;
mod text;

#[cfg(test)]
mod exposition_check;
#[cfg(test)]
mod render_tests;

pub use histogram::BUCKETS;
pub use labels::{Backend, LabelValue, ReloadResult};
pub use process::{parse_stat, ticks_per_second, ProcessReader, ProcessStats, StatFields};
pub use record::{Gauges, Metrics};
pub use render::render;
