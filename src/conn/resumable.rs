//! What a connection keeps to make its stream resumable (SPEC §2.1): the stream's id and user,
//! the stamper that gives every event its id, the replay buffer, and whether the client left.
//!
//! | phase    | event                                                    | next                                  |
//! |----------|----------------------------------------------------------|---------------------------------------|
//! | Attached | the stream's bytes                                       | Attached (stamped, written, kept)     |
//! | Attached | the client went away (EOF, reset, write error) after an event | Detached (the replay keeps what follows) |
//! | Detached | the stream's bytes                                       | Detached (stamped, kept only)         |
//! | Detached | an event that does not fit the replay buffer             | dropped (`client_disconnected`)       |
//! | Detached | the window ends, or the daemon drains                    | dropped (`client_disconnected`)       |
//! | any      | a `resume` of this user after an event still held        | Attached to the new client            |
//!
//! The connection drives these phases (`src/conn/mod.rs`); this file holds the data and the
//! few rules that are the stream's own. When the stream ends attached, [`Kept`] is all that
//! stays for the window: the replay and who may ask for it, no socket.

use std::time::{Duration, Instant};

use crate::end::Outcome;
use crate::resume::{id_prefix, Full, Replay, Stamper, StreamId};

/// `server.resume_window_ms` and `server.resume_buffer_bytes`, when the window is not 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeSettings {
    pub window: Duration,
    pub buffer: usize,
}

pub struct Resumable {
    pub id: StreamId,
    /// The `user_id` of the handoff that started the stream: a resume must bring the same.
    pub user_id: i64,
    stamper: Stamper,
    replay: Replay,
    /// When the stream started, for `max_stream_duration` (its client may change).
    pub started_at: Instant,
    /// The success head went out: bytes from now on are the stream's, stamped. `Some(n)` until
    /// the next stamp: the first `n` bytes of its input are the head.
    skip: Option<usize>,
    begun: bool,
    /// The reactor has entered the stream in the directory.
    pub entered: bool,
    /// The client left and no other came yet.
    left: Option<Left>,
}

/// A client that left, and what it had been sent: for its log line when the stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub at: Instant,
    pub status: u16,
    pub bytes: u64,
    pub events: u32,
}

/// A stream that ended while its client was there, kept for the window in case the client's
/// connection dropped before it had everything (a browser then reconnects with the last id it
/// saw). Only what a resume needs: no socket, no source.
pub struct Kept {
    pub id: StreamId,
    pub user_id: i64,
    pub replay: Replay,
    /// How the stream ended: a client replayed from here ends the same way.
    pub outcome: Outcome,
    pub backend: &'static str,
}

impl Resumable {
    /// A stream about to begin, for `user_id`, with an id of 128 random bits.
    pub fn new(id: StreamId, user_id: i64, settings: ResumeSettings, now: Instant) -> Resumable {
        Resumable {
            id,
            user_id,
            stamper: Stamper::new(id),
            replay: Replay::new(settings.buffer),
            started_at: now,
            skip: None,
            begun: false,
            entered: false,
            left: None,
        }
    }

    /// The success head, `head_len` bytes, starts the next output: the stream begins.
    pub fn begin(&mut self, head_len: usize) {
        self.begun = true;
        self.skip = Some(head_len);
    }

    /// How much of the next output to pass on unstamped (the head); `None` before the head
    /// (nothing of the stream's yet: an error response is no event).
    pub fn take_skip(&mut self) -> Option<usize> {
        if !self.begun {
            return None;
        }
        Some(self.skip.take().unwrap_or(0))
    }

    /// Stamps the stream's next bytes into `out` and keeps every event in the replay buffer.
    /// `Full` when the client is gone and an event no longer fits: the stream must be dropped
    /// (what could be stamped is in `out` all the same).
    pub fn stamp(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Full> {
        let replay = &mut self.replay;
        let mut result = Ok(());
        self.stamper.stamp(input, out, |event| {
            if result.is_ok() {
                result = replay.push(event.number, event.done, event.block);
            }
        });
        result
    }

    /// Events stamped so far (the completion marker counts): a client can have seen an id only
    /// when this is not 0.
    pub fn stamped(&self) -> u64 {
        self.stamper.stamped()
    }

    /// The client left: from now on the replay keeps every event until one comes back.
    pub fn detach(&mut self, left: Left) {
        self.replay.protect();
        self.left = Some(left);
    }

    /// A client is there again.
    pub fn attach(&mut self) {
        self.replay.unprotect();
        self.left = None;
    }

    pub fn left(&self) -> Option<&Left> {
        self.left.as_ref()
    }

    /// How many events follow event `seen`, if all of them are held.
    pub fn count_after(&self, seen: u64) -> Option<u32> {
        self.replay.count_after(seen)
    }

    /// Appends every event after event `seen`, stamped, if all of them are held.
    pub fn write_after(&self, seen: u64, out: &mut Vec<u8>) -> Option<u32> {
        self.replay.write_after(seen, &id_prefix(self.id), out)
    }

    pub fn held_bytes(&self) -> usize {
        self.replay.held_bytes() + self.stamper.held_bytes()
    }

    /// What stays once the stream ended with its client there.
    pub fn into_kept(self, outcome: Outcome, backend: &'static str) -> Kept {
        let mut replay = self.replay;
        replay.shrink();
        Kept {
            id: self.id,
            user_id: self.user_id,
            replay,
            outcome,
            backend,
        }
    }
}

impl Kept {
    pub fn held_bytes(&self) -> usize {
        self.replay.held_bytes()
    }

    /// How many events follow event `seen`, if all of them are held.
    pub fn count_after(&self, seen: u64) -> Option<u32> {
        self.replay.count_after(seen)
    }

    /// Appends every event after event `seen`, stamped, if all of them are held.
    pub fn write_after(&self, seen: u64, out: &mut Vec<u8>) -> Option<u32> {
        self.replay.write_after(seen, &id_prefix(self.id), out)
    }
}

/// Whether a stream that ended this way leaves a [`Kept`] record: when its content ended
/// (completed, or cut by the upstream or a limit), so that a client replayed from it gets the
/// same ending. Not when the client failed it, a resume took it elsewhere, or the daemon is
/// stopping.
pub fn worth_keeping(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Completed
        | Outcome::MaxDuration
        | Outcome::UpstreamUnreachable
        | Outcome::UpstreamStatus
        | Outcome::UpstreamTimeout
        | Outcome::UpstreamCut
        | Outcome::UpstreamError
        | Outcome::UpstreamIncomplete
        | Outcome::Other => true,
        Outcome::ClientDisconnected
        | Outcome::ResumedElsewhere
        | Outcome::WriteTimeout
        | Outcome::Canceled
        | Outcome::Panic
        | Outcome::Network => false,
    }
}

/// The answer to a `resume` handoff that resumes nothing (SPEC §2.1): `204 No Content`, so
/// that `EventSource` stops reconnecting, with the handoff's response headers (a cross-origin
/// `EventSource` needs its CORS headers on this answer too).
pub fn write_no_content(out: &mut Vec<u8>, headers: &crate::http::CustomHeaders) {
    out.extend_from_slice(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (name, value) in headers.iter() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::CustomHeaders;

    fn settings(buffer: usize) -> ResumeSettings {
        ResumeSettings {
            window: Duration::from_secs(30),
            buffer,
        }
    }

    #[test]
    fn every_event_stamped_is_kept_for_a_replay() {
        let mut stream = Resumable::new(
            StreamId::from_bytes([0; 16]),
            42,
            settings(4096),
            Instant::now(),
        );
        let mut out = Vec::new();
        stream.stamp(b"data: a\n\ndata: b\n\n", &mut out).unwrap();
        stream
            .stamp(b": keep-alive\n\ndata: [DONE]\n\n", &mut out)
            .unwrap();
        assert_eq!(stream.stamped(), 3);
        let zeros = "0".repeat(32);
        let mut tail = Vec::new();
        assert_eq!(stream.write_after(1, &mut tail), Some(2));
        assert_eq!(
            tail,
            format!("id: {zeros}-2\ndata: b\n\nid: {zeros}-done\ndata: [DONE]\n\n").as_bytes()
        );
        // What the client got is the same bytes, but the replay keeps the blocks alone.
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!("id: {zeros}-2\ndata: b\n\n: keep-alive\n\n")));
        assert!(text.ends_with(&format!("id: {zeros}-done\ndata: [DONE]\n\n")));
        assert_eq!(
            stream.replay.len(),
            "data: a\n\ndata: b\n\ndata: [DONE]\n\n".len()
        );
        let kept = stream.into_kept(Outcome::Completed, "mock");
        assert_eq!(kept.count_after(2), Some(1));
        assert!(kept.held_bytes() >= kept.replay.len());
    }

    #[test]
    fn a_detached_stream_whose_events_overflow_is_full() {
        let mut stream = Resumable::new(
            StreamId::from_bytes([0; 16]),
            1,
            settings(200),
            Instant::now(),
        );
        let mut out = Vec::new();
        stream.stamp(b"data: first\n\n", &mut out).unwrap();
        stream.detach(Left {
            at: Instant::now(),
            status: 200,
            bytes: 100,
            events: 1,
        });
        let event = format!("data: {}\n\n", "x".repeat(40));
        let mut full = false;
        for _ in 0..10 {
            full |= stream.stamp(event.as_bytes(), &mut out).is_err();
        }
        assert!(full);
        // Had the stream gone on, the events refused could never be replayed.
        stream.attach();
        assert!(stream.left().is_none());
        assert!(stream.stamp(event.as_bytes(), &mut out).is_ok());
        assert_eq!(stream.count_after(1), None);
        assert_eq!(stream.count_after(stream.stamped() - 1), Some(1));
    }

    #[test]
    fn only_streams_whose_content_ended_are_kept() {
        assert!(worth_keeping(Outcome::Completed));
        assert!(worth_keeping(Outcome::UpstreamCut));
        assert!(!worth_keeping(Outcome::ClientDisconnected));
        assert!(!worth_keeping(Outcome::ResumedElsewhere));
        assert!(!worth_keeping(Outcome::Canceled));
    }

    #[test]
    fn no_content_carries_the_custom_headers() {
        let mut headers = CustomHeaders::default();
        headers
            .push("Access-Control-Allow-Origin", "https://app.example")
            .unwrap();
        let mut out = Vec::new();
        write_no_content(&mut out, &headers);
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\
              Access-Control-Allow-Origin: https://app.example\r\n\r\n"
        );
        out.clear();
        write_no_content(&mut out, &CustomHeaders::default());
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}
