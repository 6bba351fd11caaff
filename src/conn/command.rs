//! A local stream's program run: from the source's [`Next::Run`] to its result.
//!
//! | state     | event                                       | next                                          |
//! |-----------|---------------------------------------------|-----------------------------------------------|
//! | Streaming | the source says `Run`, spawned              | Streaming, child running, source not asked    |
//! | Streaming | the source says `Run`, spawn failed         | Streaming, `Failed` given to the source, asked again |
//! | Streaming | child readable, more to come                | Streaming, child running                      |
//! | Streaming | child finished (EOF and exit)               | Streaming, result given, source asked again   |
//! | Streaming | child timeout                               | Streaming, killed, `Failed` given, asked again |
//! | any other | child event or deadline (the stream ends)   | the same; the child is killed                 |
//!
//! The child lives in the connection, not in the state, so that whatever ends the connection
//! (client gone, max duration, shutdown, a panic) finds it there: the reactor hands it to the
//! [`Reaper`](super::child::Reaper) when it closes the connection.

use super::child::{Child, Progress};
use super::{Connection, Context, State, Step};
use crate::backends::{Command, CommandResult};

impl Connection {
    /// The source asked for `command`: start it, or tell the source at once that it failed.
    pub(super) fn run_command(&mut self, command: Command, ctx: &mut Context<'_>) {
        if let Some(old) = self.child.take() {
            // A source asks for one program at a time; a second would be a bug there.
            log::error!(
                "conn={} a second program was asked for; ending the first",
                self.id
            );
            old.abandon(ctx.registry, ctx.reaper);
        }
        match Child::spawn(&command, ctx.registry, self.child_token, ctx.now) {
            Ok(child) => self.child = Some(Box::new(child)),
            Err(e) => {
                let why = CommandResult::Failed(format!("could not be started: {e}"));
                self.command_ended(&command.program.display().to_string(), why, ctx);
                if let State::Streaming(streaming) = &mut self.state {
                    streaming.next_at = Some(ctx.now);
                }
            }
        }
    }

    pub(super) fn on_child_ready(&mut self, ctx: &mut Context<'_>) -> Step {
        if self.outlived_its_stream(ctx) {
            return Step::Continue;
        }
        let Some(child) = self.child.as_mut() else {
            return Step::Continue;
        };
        let progress = child.on_readable(ctx.registry, ctx.now);
        self.after_child(progress, ctx)
    }

    /// The child's deadline may have passed: kill it, check its exit, or read on.
    pub(super) fn on_child_timer(&mut self, ctx: &mut Context<'_>) -> Step {
        if self.outlived_its_stream(ctx) {
            return Step::Continue;
        }
        let Some(child) = self.child.as_mut() else {
            return Step::Continue;
        };
        if ctx.now < child.deadline() {
            return Step::Continue;
        }
        let progress = child.on_timer(ctx.registry, ctx.now, ctx.reaper);
        self.after_child(progress, ctx)
    }

    /// The stream is ending (an error event or `[DONE]` on its way out) while the program
    /// still runs: nobody wants its result, so it goes now rather than when the connection
    /// closes.
    fn outlived_its_stream(&mut self, ctx: &mut Context<'_>) -> bool {
        if matches!(self.state, State::Streaming(_)) {
            return false;
        }
        if let Some(child) = self.child.take() {
            child.abandon(ctx.registry, ctx.reaper);
        }
        true
    }

    fn after_child(&mut self, progress: Progress, ctx: &mut Context<'_>) -> Step {
        let Progress::Done(result) = progress else {
            return Step::Continue;
        };
        let name = self
            .child
            .take()
            .map(|mut child| std::mem::take(&mut child.name))
            .unwrap_or_default();
        self.command_ended(&name, result, ctx);
        if let State::Streaming(streaming) = &mut self.state {
            streaming.next_at = Some(ctx.now);
        }
        if self.outbox.is_empty() {
            return self.produce(ctx);
        }
        Step::Continue
    }

    /// Logs and counts how the program went, and gives the result to the source.
    fn command_ended(&mut self, name: &str, result: CommandResult, ctx: &mut Context<'_>) {
        match &result {
            CommandResult::Exited {
                success: true,
                truncated,
                ..
            } => log::debug!(
                "conn={} {name} finished{}",
                self.id,
                if *truncated { " (output cut)" } else { "" }
            ),
            CommandResult::Exited { success: false, .. } => {
                log::warn!("conn={} {name} exited with a failure status", self.id);
                ctx.tally.backend_error();
            }
            CommandResult::Failed(why) => {
                log::warn!("conn={} {name} {why}", self.id);
                ctx.tally.backend_error();
            }
        }
        if let State::Streaming(streaming) = &mut self.state {
            streaming.source.on_command(result);
        }
    }
}
