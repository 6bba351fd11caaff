//! The local stage: a backend's [`EventSource`] asked for events when they are due and the
//! client has taken what came before, and the programs it asks to run ([`Next::Run`]).
//!
//! | phase   | event                                            | next                                          |
//! |---------|--------------------------------------------------|-----------------------------------------------|
//! | Due     | Tick, due and the client clear                   | produce: Due (`After`), Running (`Run`), Due now (`Run` failed to start), or ended (`Complete`, `Fail`) |
//! | Due     | Tick, not due or the client behind; Child        | Due                                           |
//! | Running | Child: output read, more to come                 | Running                                       |
//! | Running | Child, or Tick past the program's deadline: it finished or was killed | its result given to the source; produce as from Due |
//! | Running | Tick before the program's deadline               | Running                                       |
//!
//! `Tick` is time passing or the client having taken everything written.
//!
//! A program runs in the connection's program slot, not here, so that whatever ends the
//! connection (the client gone, the max duration, shutdown, a panic) finds it there to kill and
//! reap: the reactor hands it to the [`Reaper`] when it closes the connection.

use std::time::Instant;

use mio::{Registry, Token};

use super::child::{Child, Progress, Reaper};
use crate::backends::{CommandResult, EventSource, Next};
use crate::deadline;
use crate::end::Outcome;
use crate::sse::{self, EventSink};
use crate::stats::Tally;

pub struct Local {
    source: Box<dyn EventSource>,
    phase: Phase,
    /// When the source started, until its first event: the backend's time to first byte.
    first_event_due: Option<Instant>,
}

enum Phase {
    /// The source wants to be asked at this time.
    Due(Instant),
    /// A program runs for the source (in the connection's program slot).
    Running,
}

/// What the stage is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Time passed, or the client took everything written.
    Tick,
    /// The program's stdout is readable or closed.
    Child,
}

/// What the stage did.
pub enum Step {
    /// Events (if any) were appended; the stream goes on.
    Continue,
    /// The stream is over: `out` ends with `[DONE]` or `event: error`.
    Ended {
        outcome: Outcome,
        error: Option<String>,
    },
}

/// What the stage borrows for one call.
pub struct Io<'a> {
    pub now: Instant,
    pub registry: &'a Registry,
    /// The connection's program slot and its token.
    pub program: &'a mut Option<Box<Child>>,
    pub program_token: Token,
    pub reaper: &'a mut Reaper,
    pub tally: &'a mut Tally,
    /// The client has taken everything written: the source may be asked.
    pub client_clear: bool,
    /// Client events appended, for the connection's count.
    pub events: u32,
    /// The backend the stream runs on: the metrics' `backend` label.
    pub backend: &'static str,
    pub conn: u64,
}

impl Local {
    /// Starts a stream whose first events are due now.
    pub fn new(source: Box<dyn EventSource>, now: Instant) -> Local {
        Local {
            source,
            phase: Phase::Due(now),
            first_event_due: Some(now),
        }
    }

    /// When the stage needs attention without an event, given whether the client is clear.
    pub fn deadline(&self, client_clear: bool, program: Option<&Child>) -> Option<Instant> {
        match self.phase {
            // A program's timeout runs whether or not the client keeps up.
            Phase::Running => program.map(Child::deadline),
            Phase::Due(at) if client_clear => Some(at),
            Phase::Due(_) => None,
        }
    }

    /// Whether the source would produce right now.
    pub fn is_due(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Due(at) if now >= at)
    }

    pub fn advance(&mut self, event: Event, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        match (&self.phase, event) {
            (Phase::Running, Event::Child) => {
                let progress = match io.program.as_mut() {
                    Some(child) => child.on_readable(io.registry, io.now),
                    None => return Step::Continue,
                };
                self.after_program(progress, io, out)
            }
            (Phase::Running, Event::Tick) => {
                let progress = match io.program.as_mut() {
                    Some(child) if io.now >= child.deadline() => {
                        child.on_timer(io.registry, io.now, io.reaper)
                    }
                    _ => return Step::Continue,
                };
                self.after_program(progress, io, out)
            }
            (Phase::Due(_), Event::Tick) => self.produce(io, out),
            // A late event from a program already finished or abandoned.
            (Phase::Due(_), Event::Child) => Step::Continue,
        }
    }

    fn produce(&mut self, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        if !io.client_clear || !self.is_due(io.now) {
            return Step::Continue;
        }
        let mut sink = EventSink::new(out);
        let next = self.source.produce(&mut sink);
        let events = sink.events();
        io.events += events;
        io.tally.chunks_sent(events);
        if events > 0 {
            if let Some(started) = self.first_event_due.take() {
                io.tally
                    .backend_ttfb(io.backend, io.now.saturating_duration_since(started));
            }
        }
        match next {
            Next::After(delay) => {
                self.phase = Phase::Due(deadline::after(io.now, delay));
                Step::Continue
            }
            Next::Complete => {
                sse::done(out);
                Step::Ended {
                    outcome: Outcome::Completed,
                    error: None,
                }
            }
            Next::Fail(message) => {
                io.tally.backend_error(io.backend);
                sse::error_event(out, &message);
                Step::Ended {
                    outcome: Outcome::Other,
                    error: Some(message),
                }
            }
            Next::Run(command) => {
                if let Some(old) = io.program.take() {
                    // A source asks for one program at a time; a second would be its bug.
                    log::error!(conn = io.conn; "a second program was asked for; ending the first");
                    old.abandon(io.registry, io.reaper);
                }
                match Child::spawn(&command, io.registry, io.program_token, io.now) {
                    Ok(child) => {
                        *io.program = Some(Box::new(child));
                        self.phase = Phase::Running;
                    }
                    Err(e) => {
                        let why = CommandResult::Failed(format!("could not be started: {e}"));
                        self.program_ended(&command.program.display().to_string(), why, io);
                    }
                }
                Step::Continue
            }
        }
    }

    fn after_program(&mut self, progress: Progress, io: &mut Io<'_>, out: &mut Vec<u8>) -> Step {
        let Progress::Done(result) = progress else {
            return Step::Continue;
        };
        let name = io
            .program
            .take()
            .map(|mut child| std::mem::take(&mut child.name))
            .unwrap_or_default();
        self.program_ended(&name, result, io);
        self.produce(io, out)
    }

    /// Logs and counts how the program went, gives the result to the source, and makes the
    /// source due at once.
    fn program_ended(&mut self, name: &str, result: CommandResult, io: &mut Io<'_>) {
        match &result {
            CommandResult::Exited {
                success: true,
                truncated,
                ..
            } => log::debug!(
                conn = io.conn,
                program = name,
                output_cut = *truncated;
                "program finished"
            ),
            CommandResult::Exited { success: false, .. } => {
                log::warn!(conn = io.conn, program = name; "program exited with a failure status");
                io.tally.backend_error(io.backend);
            }
            CommandResult::Failed(why) => {
                log::warn!(conn = io.conn, program = name, error = why.as_str(); "program failed");
                io.tally.backend_error(io.backend);
            }
        }
        self.source.on_command(result);
        self.phase = Phase::Due(io.now);
    }
}
