//! The label values the daemon's metrics can carry. Every value is rendered from the first scrape
//! on (at 0 until it happens), so dashboards can `rate()` and alert on it from the start.
//!
//! The values come from the one vocabulary of endings in [`crate::end`] (SPEC §7.2):
//! - `daemon_handoff_errors_total{reason}` and `daemon_stream_errors_total{reason}` carry the Go
//!   daemon's five words ([`GoReason`]), with its meaning, so that Go dashboards keep working;
//! - `daemon_stream_outcomes_total{outcome}` ([`Outcome`]) and
//!   `daemon_handoff_rejections_total{reason}` ([`Rejection`]) carry our finer words, the same as
//!   the log's `outcome=`;
//! - `daemon_resumes_total{result}` ([`ResumeResult`]) says how each `resume` handoff was
//!   answered (SPEC §2.1).
//!
//! `backend` on `daemon_backend_*`: `mock`, `typing`, `openai`, `langgraph`. A daemon runs one
//! backend, yet all four are rendered: the set of series then never changes with the
//! configuration, and a dashboard shared by daemons running different backends needs no
//! `absent()` guards. It costs about 150 lines per scrape.

use crate::end::{GoReason, Outcome, Rejection, ResumeResult};

/// A label value set: a small enum that indexes fixed arrays of numbers, so that updating a
/// labelled series is an array index and never a string or a map lookup.
pub trait LabelValue: Copy + 'static {
    /// The label's name in the exposition, e.g. `reason`.
    const NAME: &'static str;
    /// Every value, in the order of `index`.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// The position of `self` in `ALL`.
    fn index(self) -> usize;
}

impl LabelValue for GoReason {
    const NAME: &'static str = "reason";
    const ALL: &'static [Self] = &GoReason::ALL;

    fn as_str(self) -> &'static str {
        GoReason::as_str(self)
    }

    fn index(self) -> usize {
        GoReason::index(self)
    }
}

impl LabelValue for Outcome {
    const NAME: &'static str = "outcome";
    const ALL: &'static [Self] = &Outcome::ALL;

    fn as_str(self) -> &'static str {
        Outcome::as_str(self)
    }

    fn index(self) -> usize {
        Outcome::index(self)
    }
}

impl LabelValue for Rejection {
    const NAME: &'static str = "reason";
    const ALL: &'static [Self] = &Rejection::ALL;

    fn as_str(self) -> &'static str {
        Rejection::as_str(self)
    }

    fn index(self) -> usize {
        Rejection::index(self)
    }
}

impl LabelValue for ResumeResult {
    const NAME: &'static str = "result";
    const ALL: &'static [Self] = &ResumeResult::ALL;

    fn as_str(self) -> &'static str {
        ResumeResult::as_str(self)
    }

    fn index(self) -> usize {
        ResumeResult::index(self)
    }
}

/// How a configuration reload (SIGHUP) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Ok,
    Error,
}

impl ReloadResult {
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Ok, ReloadResult::Error];
}

impl LabelValue for ReloadResult {
    const NAME: &'static str = "result";
    const ALL: &'static [Self] = &ReloadResult::ALL;

    fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The backend a request went to, by its configured name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Mock,
    Typing,
    Openai,
    Langgraph,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Mock,
        Backend::Typing,
        Backend::Openai,
        Backend::Langgraph,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Mock => "mock",
            Backend::Typing => "typing",
            Backend::Openai => "openai",
            Backend::Langgraph => "langgraph",
        }
    }
}

impl LabelValue for Backend {
    const NAME: &'static str = "backend";
    const ALL: &'static [Self] = &Backend::ALL;

    fn as_str(self) -> &'static str {
        Backend::as_str(self)
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_set<L: LabelValue + std::fmt::Debug>() {
        let mut seen = Vec::new();
        for (position, value) in L::ALL.iter().enumerate() {
            assert_eq!(value.index(), position, "{value:?} indexes the wrong slot");
            let text = value.as_str();
            assert!(
                !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text:?} is not snake_case"
            );
            assert!(!seen.contains(&text), "{text:?} appears twice");
            seen.push(text);
        }
    }

    #[test]
    fn every_value_is_unique_snake_case_and_indexes_its_own_slot() {
        check_set::<GoReason>();
        check_set::<Outcome>();
        check_set::<Rejection>();
        check_set::<Backend>();
        check_set::<ReloadResult>();
        check_set::<ResumeResult>();
    }

    #[test]
    fn the_go_daemons_reasons_are_exactly_its_five() {
        let names: Vec<_> = GoReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "client_disconnected",
                "timeout",
                "canceled",
                "network",
                "other"
            ]
        );
    }
}
