//! The typing backend: an answer typed one character per event, with a typist's pauses
//! (SPEC §4.2).
//!
//! | stage   | event                               | next                                           |
//! |---------|-------------------------------------|------------------------------------------------|
//! | (start) | `use_api` on and an OpenAI key set  | `Start::Upstream` with `Output::Typed` (see `api`) |
//! | (start) | the fixed prompt                    | Typing the fixed answer                        |
//! | (start) | `fortune` was called < 10 ms ago    | Typing a built-in saying                       |
//! | (start) | otherwise                           | Asking                                         |
//! | Asking  | produce                             | Waiting; `Next::Run(fortune literature)`       |
//! | Waiting | the result: a quote                 | Typing the intro and the quote                 |
//! | Waiting | the result: failed, slow, empty, cut| Typing the intro and a built-in saying         |
//! | Typing  | produce, characters left            | Typing; one `{"char","index"}` event, `After(pause)` |
//! | Typing  | produce, nothing left               | `Complete` (`[DONE]`)                          |
//!
//! The reactor runs `fortune` (see `Next::Run`): spawned, read through the event loop, killed
//! after 500 ms. The one-call-per-10-ms limit is daemon-wide: the backend, which the reactor
//! owns, remembers when it last let a stream call, on the reactor's clock.

mod api;
mod pace;
mod quote;
mod text;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::upstream::Target;
use super::{
    Attached, Backend, BackendError, Command, CommandResult, DaemonWide, EventSource, Next, Start,
};
use crate::config::Config;
use crate::handoff::HandoffData;
use crate::sse::EventSink;

use api::Api;
use pace::pause_after;
use quote::{lowercase_first, quote_from};
use text::{FIXED_ANSWER, FIXED_PROMPT, QUOTE_INTRO, SAYINGS};

/// At most one `fortune` call per this long, across the daemon.
const CALL_INTERVAL: Duration = Duration::from_millis(10);
const FORTUNE_TIMEOUT: Duration = Duration::from_millis(500);
/// A fortune is a few hundred bytes; one this long would take minutes to type anyway.
const FORTUNE_MAX_OUTPUT: usize = 4096;

pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(Typing {
        api: Api::from_config(config)?,
        fortune: config.backend.typing.fortune_path.clone(),
        calls: Arc::default(),
        next_saying: 0,
    }))
}

/// The one-call-per-10-ms limit on `fortune`, shared by every worker's typing backend
/// ([`super::DaemonWide`]).
#[derive(Debug, Default)]
pub struct CallGate {
    last_call: Mutex<Option<Instant>>,
}

impl CallGate {
    /// Whether a stream may call `fortune` at `now`; if so, the call is counted.
    fn may_call(&self, now: Instant) -> bool {
        // A plain assignment under the lock: never left half done by a panic elsewhere.
        let mut last = self
            .last_call
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let allowed = last.is_none_or(|last| now.saturating_duration_since(last) >= CALL_INTERVAL);
        if allowed {
            *last = Some(now);
        }
        allowed
    }
}

struct Typing {
    /// `use_api` with a key: every answer comes from the API.
    api: Option<Api>,
    fortune: PathBuf,
    calls: Arc<CallGate>,
    /// Which built-in saying comes next: they take turns.
    next_saying: usize,
}

impl Typing {
    fn may_call(&self, now: Instant) -> bool {
        self.calls.may_call(now)
    }

    fn saying(&mut self) -> &'static str {
        let saying = SAYINGS[self.next_saying % SAYINGS.len()];
        self.next_saying = self.next_saying.wrapping_add(1);
        saying
    }
}

impl Backend for Typing {
    fn name(&self) -> &'static str {
        "typing"
    }

    fn share(&mut self, wide: &DaemonWide) {
        self.calls = Arc::clone(&wide.fortune_calls);
    }

    fn targets(&self) -> &[Target] {
        self.api.as_ref().map_or(&[], Api::targets)
    }

    fn announce(&self) {
        if let Some(api) = &self.api {
            api.announce();
        }
    }

    fn start(
        &mut self,
        request: HandoffData,
        _attached: Option<Attached>,
        now: Instant,
    ) -> Result<Start, BackendError> {
        if let Some(api) = &self.api {
            return api.request(&request).map(Start::Upstream);
        }
        let stage = if request.prompt == FIXED_PROMPT {
            Stage::typing(FIXED_ANSWER.to_string())
        } else if self.may_call(now) {
            Stage::Asking {
                command: Command {
                    program: self.fortune.clone(),
                    args: vec!["literature".to_string()],
                    timeout: FORTUNE_TIMEOUT,
                    max_output: FORTUNE_MAX_OUTPUT,
                },
                fallback: self.saying(),
            }
        } else {
            Stage::typing(answer(self.saying()))
        };
        Ok(Start::Local(Box::new(TypingStream { stage })))
    }
}

/// The intro and the quote, lowercased by the rule.
fn answer(quote: &str) -> String {
    format!("{QUOTE_INTRO}{}", lowercase_first(quote))
}

struct TypingStream {
    stage: Stage,
}

enum Stage {
    /// `fortune` is to be run; `fallback` is typed if it gives nothing usable.
    Asking {
        command: Command,
        fallback: &'static str,
    },
    Waiting {
        fallback: &'static str,
    },
    Typing {
        answer: String,
        /// The byte offset of the next character.
        next: usize,
    },
}

impl Stage {
    fn typing(answer: String) -> Stage {
        Stage::Typing { answer, next: 0 }
    }
}

impl EventSource for TypingStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        let placeholder = Stage::typing(String::new());
        match std::mem::replace(&mut self.stage, placeholder) {
            Stage::Asking { command, fallback } => {
                self.stage = Stage::Waiting { fallback };
                Next::Run(command)
            }
            // Asked before the result came (the reactor never does): type the saying rather
            // than stall.
            Stage::Waiting { fallback } => {
                self.stage = Stage::typing(answer(fallback));
                self.produce(sink)
            }
            Stage::Typing { answer, next } => {
                let Some(character) = answer[next..].chars().next() else {
                    return Next::Complete;
                };
                sink.typing(character, next);
                self.stage = Stage::Typing {
                    next: next + character.len_utf8(),
                    answer,
                };
                Next::After(pause_after(character))
            }
        }
    }

    fn on_command(&mut self, result: CommandResult) {
        let fallback = match &self.stage {
            Stage::Asking { fallback, .. } | Stage::Waiting { fallback } => *fallback,
            Stage::Typing { .. } => return,
        };
        let quote = match result {
            CommandResult::Exited {
                success: true,
                stdout,
                truncated: false,
            } => quote_from(&String::from_utf8_lossy(&stdout)),
            _ => None,
        };
        self.stage = Stage::typing(answer(quote.as_deref().unwrap_or(fallback)));
    }
}

#[cfg(test)]
mod tests;
