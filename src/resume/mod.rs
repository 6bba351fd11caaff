//! Resumable streams (SPEC §2.1), the parts that do no I/O: stream ids and the `Last-Event-ID`
//! a browser sends back ([`id`]), stamping every event with its id ([`stamp`]), the bounded
//! buffer of stamped events a returning client is replayed from ([`replay`]), and the
//! daemon-wide directory of which worker runs which stream ([`directory`]).
//!
//! How a stream is kept, detached, taken over and ended is the connection's business
//! (`src/conn/resumable.rs`); routing a `resume` handoff to the stream's worker is the
//! reactor's (`src/reactor/resume.rs`).

pub mod directory;
pub mod id;
pub mod replay;
pub mod stamp;

pub use directory::{Directory, Handover, Mailbox};
pub use id::{parse_last_event_id, LastEvent, StreamId};
pub use replay::{Full, Replay};
pub use stamp::{id_prefix, Stamped, Stamper};
