//! The connection's part in resumable streams (SPEC §2.1), beside its `advance`: a stream
//! becoming resumable when it begins, its client leaving (detaching), a `resume` handoff asking
//! for a stream, and a stream taken over by the client of another connection.
//!
//! Accounting (SPEC §7.3), kept whole across a resume: every handoff still ends exactly once.
//! A `resume` handoff answered 204 ends as `NotResumed` (counted only in
//! `daemon_resumes_total{result}`, as its ending). One that resumes a stream carries it on: the handoff the
//! stream ran for until then ends as `resumed_elsewhere` (its client was closed, or had left),
//! and the stream's outcome, when it finally ends, is the new handoff's.

use std::mem::discriminant;
use std::time::{Duration, Instant};

use mio::Registry;

use super::client::Client;
use super::resumable::{worth_keeping, write_no_content, Left, Resumable};
use super::{Admission, Ask, Connection, Context, End, Kept, Resumer, State, Step};
use crate::deadline;
use crate::end::{EndReason, NotResumed, Outcome, ResumeResult};
use crate::http::{write_success_head, NO_HEADERS};
use crate::resume::{parse_last_event_id, Handover, LastEvent, StreamId};

impl Connection {
    /// The backend started for `user_id`: with resuming on, the stream will be resumable.
    pub(super) fn resumable_from(&mut self, user_id: i64, now: Instant) {
        let Some(settings) = self.settings.resume else {
            return;
        };
        let mut bytes = [0u8; 16];
        if let Err(e) = crate::sys::random::fill(&mut bytes) {
            log::warn!(conn = self.id, error:% = e; "no random stream id: this stream cannot be resumed");
            return;
        }
        let id = StreamId::from_bytes(bytes);
        self.resumable = Some(Box::new(Resumable::new(id, user_id, settings, now)));
    }

    /// The success head is in this transition's output, `head_len` bytes long: what follows is
    /// the stream's, stamped from now on.
    pub(super) fn began_stream(&mut self, head_len: usize) {
        if let Some(stream) = self.resumable.as_mut() {
            stream.begin(head_len);
        }
    }

    /// The client left, mid-stream: whether the stream goes on for a resume. Only when a client
    /// can have seen an id, and while the daemon serves (a draining daemon takes no resume).
    pub(super) fn may_detach(&self, ctx: &Context<'_>) -> bool {
        ctx.admission == Admission::Open
            && self
                .resumable
                .as_ref()
                .is_some_and(|r| r.stamped() > 0 && r.left().is_none())
    }

    /// The client is gone: the stream goes on into its replay buffer.
    pub(super) fn detach(&mut self, ctx: &mut Context<'_>) {
        let Some(client) = self.client.take() else {
            return;
        };
        let left = Left {
            at: ctx.now,
            status: client.status(),
            bytes: client.bytes_sent(),
            events: client.events(),
        };
        // Closes the socket: the client is gone already.
        drop(client);
        if let Some(stream) = self.resumable.as_mut() {
            stream.detach(left);
            log::debug!(
                conn = self.id,
                stream:% = stream.id,
                events = stream.stamped();
                "client left: the stream goes on for a resume"
            );
        }
        ctx.tally.shared().stream_detached();
    }

    /// The client left and no other came yet.
    pub fn is_detached(&self) -> bool {
        self.resumable.as_ref().is_some_and(|r| r.left().is_some())
    }

    /// When a detached stream is dropped if no client came back.
    pub(super) fn detached_until(&self) -> Option<Instant> {
        let left = self.resumable.as_ref()?.left()?;
        let window = self.settings.resume?.window;
        Some(deadline::after(left.at, window))
    }

    /// Ends a detached stream (its upstream closes with it): window over, buffer full, drain.
    pub(super) fn drop_detached(&mut self, why: &str, ctx: &mut Context<'_>) {
        self.release_program(ctx);
        self.state = State::Done(End::new(Outcome::ClientDisconnected, Some(why.into())));
    }

    /// The daemon began to drain: no resume can come any more, so a detached stream ends.
    pub fn on_drain(&mut self, ctx: &mut Context<'_>) -> Step {
        if !self.is_detached() {
            return Step::Continue;
        }
        self.drop_detached("the daemon is stopping: no client can resume it", ctx);
        Step::Close
    }

    /// A resumable stream not yet in the directory: the reactor enters it now.
    pub fn take_unentered(&mut self) -> Option<StreamId> {
        let stream = self.resumable.as_mut().filter(|r| !r.entered)?;
        stream.entered = true;
        Some(stream.id)
    }

    /// The id of this connection's resumable stream.
    pub fn resumable_id(&self) -> Option<StreamId> {
        self.resumable.as_ref().map(|r| r.id)
    }

    /// What stays of a stream that ended with its client there, for how long: when its content
    /// ended and an event went out. A detached stream that ends leaves nothing.
    pub fn keep_for_resume(&mut self) -> Option<(Kept, Duration)> {
        let window = self.settings.resume?.window;
        let (State::Done(end) | State::Finishing(end)) = &self.state else {
            return None;
        };
        let EndReason::Stream(outcome) = end.reason else {
            return None;
        };
        let keep = self
            .resumable
            .as_ref()
            .is_some_and(|r| r.left().is_none() && r.stamped() > 0);
        if !keep || !worth_keeping(outcome) {
            return None;
        }
        let stream = self.resumable.take()?;
        Some(((*stream).into_kept(outcome, self.backend), window))
    }

    /// The handoff's `resume` (resuming on): a malformed id or `-done` is answered here; an
    /// event id waits for the reactor to find its stream.
    pub(super) fn ask_resume(&mut self, text: &str, user_id: i64, ctx: &mut Context<'_>) -> State {
        match parse_last_event_id(text) {
            None => {
                log::debug!(conn = self.id; "resume id malformed");
                self.not_resumed(NotResumed::Unknown, ctx)
            }
            Some(LastEvent::Done(_)) => self.not_resumed(NotResumed::Done, ctx),
            Some(LastEvent::Event(stream, seen)) => State::Resuming(Ask {
                stream,
                seen,
                user_id,
            }),
        }
    }

    /// `204 No Content`: nothing to resume. Counted when the connection ends (should the
    /// client be gone before it got the answer, it ends as any client that left).
    fn not_resumed(&mut self, why: NotResumed, ctx: &mut Context<'_>) -> State {
        self.answer(204);
        write_no_content(&mut ctx.buffers.out, self.custom_headers());
        State::Finishing(End::new(EndReason::NotResumed(why), None))
    }

    /// What a `resume` handoff asks for, while the reactor looks for its stream.
    pub fn resume_ask(&self) -> Option<Ask> {
        match &self.state {
            State::Resuming(ask) => Some(*ask),
            _ => None,
        }
    }

    /// Its client went over to the stream it resumed: closed without a count or a line of its
    /// own (the stream speaks for its handoff now).
    pub fn is_moved(&self) -> bool {
        matches!(self.state, State::Moved)
    }

    /// The resuming client, for a stream of this worker. `None` without one (it could not be
    /// registered): then it is answered like any unknown stream.
    pub fn take_resumer(&mut self) -> Option<Resumer> {
        let State::Resuming(ask) = self.state else {
            return None;
        };
        let client = self.client.take()?;
        self.state = State::Moved;
        Some(Resumer {
            client,
            id: self.id,
            accepted_at: self.accepted_at,
            ask,
            headers: self.headers.take(),
        })
    }

    /// The resuming client, deregistered, for a stream another worker runs.
    pub fn hand_over(&mut self, registry: &Registry) -> Option<Handover> {
        let State::Resuming(ask) = self.state else {
            return None;
        };
        let client = self.client.take()?;
        self.state = State::Moved;
        Some(Handover {
            client: client.into_fd(registry),
            conn: self.id,
            accepted_at: self.accepted_at,
            user_id: ask.user_id,
            stream: ask.stream,
            seen: ask.seen,
            headers: self.headers.take(),
            backend: self.backend,
        })
    }

    /// A handover the other worker could not take (it is gone) comes back: 204.
    pub fn take_back(&mut self, handover: Handover, ctx: &mut Context<'_>) -> Step {
        match Client::adopt(handover.client, ctx.registry, self.tokens.client) {
            Ok(client) => self.client = Some(client),
            Err(e) => log::warn!(conn = self.id, error:% = e; "cannot answer a resuming client"),
        }
        self.headers = handover.headers;
        self.state = State::Resuming(Ask {
            stream: handover.stream,
            seen: handover.seen,
            user_id: handover.user_id,
        });
        self.answer_not_resumed(NotResumed::Unknown, ctx)
    }

    /// A resumer the stream refused comes back (its registration untouched): 204.
    pub fn refused(&mut self, resumer: Resumer, why: NotResumed, ctx: &mut Context<'_>) -> Step {
        self.client = Some(resumer.client);
        self.headers = resumer.headers;
        self.state = State::Resuming(resumer.ask);
        self.answer_not_resumed(why, ctx)
    }

    /// No stream to resume: 204.
    pub fn answer_not_resumed(&mut self, why: NotResumed, ctx: &mut Context<'_>) -> Step {
        if !matches!(self.state, State::Resuming(_)) {
            return Step::Continue;
        }
        ctx.buffers.out.clear();
        let before = discriminant(&self.state);
        self.state = self.not_resumed(why, ctx);
        self.finish_round(before, ctx)
    }

    /// The stream asked for ended with its client there and was kept: this client gets every
    /// event after the one it saw, and the stream's ending.
    pub fn resume_kept(&mut self, kept: &Kept, stream: StreamId, ctx: &mut Context<'_>) -> Step {
        let Some(ask) = self.resume_ask() else {
            return Step::Continue;
        };
        if kept.user_id != ask.user_id {
            return self.answer_not_resumed(NotResumed::Mismatch, ctx);
        }
        match kept.count_after(ask.seen) {
            None => return self.answer_not_resumed(NotResumed::Unknown, ctx),
            Some(0) => return self.answer_not_resumed(NotResumed::Done, ctx),
            Some(_) => {}
        }
        let before = discriminant(&self.state);
        let out = &mut ctx.buffers.out;
        out.clear();
        write_success_head(out, self.headers.as_deref().unwrap_or(&NO_HEADERS));
        let events = kept.write_after(ask.seen, out).unwrap_or(0);
        self.backend = kept.backend;
        self.started = Some(ctx.now);
        ctx.tally.stream_started();
        self.replayed(ResumeResult::Resumed, events, ctx);
        log::info!(
            conn = self.id,
            stream:% = stream,
            result = ResumeResult::Resumed.as_str(),
            seen = ask.seen,
            replayed = events;
            "stream resumed"
        );
        self.state = State::Finishing(End::new(kept.outcome, None));
        self.finish_round(before, ctx)
    }

    /// A `resume` of this stream: the resumer's client takes it over and gets every event after
    /// the one it saw, then the stream goes on. Refused (the resumer given back, to be answered
    /// 204) for another user, events no longer held, or a stream that has nothing left.
    pub fn resume(
        &mut self,
        resumer: Resumer,
        ctx: &mut Context<'_>,
    ) -> Result<Step, (Resumer, NotResumed)> {
        let ended = match &self.state {
            State::Streaming(_) => false,
            State::Finishing(_) => true,
            _ => return Err((resumer, NotResumed::Unknown)),
        };
        let Some(stream) = self.resumable.as_deref() else {
            return Err((resumer, NotResumed::Unknown));
        };
        let ask = resumer.ask;
        if stream.user_id != ask.user_id {
            return Err((resumer, NotResumed::Mismatch));
        }
        let Some(events) = stream.count_after(ask.seen) else {
            return Err((resumer, NotResumed::Unknown));
        };
        if ended && events == 0 {
            return Err((resumer, NotResumed::Done));
        }
        if let Err(e) = resumer.client.retoken(ctx.registry, self.tokens.client) {
            log::warn!(conn = resumer.id, error:% = e; "cannot move a resuming client");
            return Err((resumer, NotResumed::Unknown));
        }
        let id = stream.id;
        let out = &mut ctx.buffers.out;
        out.clear();
        write_success_head(out, resumer.headers.as_deref().unwrap_or(&NO_HEADERS));
        let replayed = stream.write_after(ask.seen, out).unwrap_or(0);
        // From here on the stream is the resumer's handoff's.
        let result = if self.client.is_some() {
            ResumeResult::TakenOver
        } else {
            ResumeResult::Resumed
        };
        let from = self.id;
        self.end_segment(ctx);
        let Resumer {
            client,
            id: conn,
            accepted_at,
            headers,
            ..
        } = resumer;
        self.id = conn;
        self.accepted_at = accepted_at;
        self.headers = headers;
        self.client = Some(client);
        self.started = Some(ctx.now);
        ctx.tally.stream_started();
        self.replayed(result, replayed, ctx);
        log::info!(
            conn = self.id,
            stream:% = id,
            result = result.as_str(),
            from_conn = from,
            seen = ask.seen,
            replayed = replayed;
            "stream resumed"
        );
        let before = discriminant(&self.state);
        Ok(self.finish_round(before, ctx))
    }

    /// Counts a resume that answered with `events` replayed.
    fn replayed(&mut self, result: ResumeResult, events: u32, ctx: &mut Context<'_>) {
        ctx.tally.resumed(result);
        self.answer(200);
        self.count_events(events);
        ctx.tally.chunks_sent(events);
    }

    /// The current client's part of the stream ends because a resume takes it elsewhere: its
    /// handoff ends as `resumed_elsewhere`, with its own line.
    fn end_segment(&mut self, ctx: &mut Context<'_>) {
        let end = End::new(Outcome::ResumedElsewhere, None);
        ctx.tally
            .ended(end.reason, self.streamed(ctx.now), Some(self.backend));
        self.log_end(&end, ctx.now);
        // Closes the old client's socket, if it was still there.
        self.client = None;
        if let Some(stream) = self.resumable.as_mut() {
            if stream.left().is_some() {
                ctx.tally.shared().detached_stream_gone();
            }
            stream.attach();
        }
    }
}
