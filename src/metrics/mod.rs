//! Metrics and health: the daemon's numbers, their Prometheus rendering, and the sans-I/O half
//! of the scrape endpoint.
//!
//! The reactor owns one [`Metrics`] and calls its event methods where things happen; a scrape
//! renders it with the reactor's own gauges and a fresh [`ProcessStats`]. Nothing here does
//! I/O except [`ProcessStats::read`], which reads `/proc`.

mod histogram;
mod labels;
mod process;
mod record;
mod render;
mod text;

#[cfg(test)]
mod exposition_check;
#[cfg(test)]
mod render_tests;

pub use histogram::BUCKETS;
pub use labels::{Backend, HandoffErrorReason, LabelValue, StreamErrorReason};
pub use process::ProcessStats;
pub use record::{Gauges, Metrics, Totals};
