//! Metrics and health: the daemon's numbers, their Prometheus rendering, and the sans-I/O half
//! of the scrape endpoint.

mod process;

pub use process::ProcessStats;
