//! One `200` response body relayed to a client: framing, then either SSE parsing and
//! translation or the events as received (`output: raw`), and the one place that decides how the
//! client's stream ends (SPEC §4.3 "Completion", §4.4 `output`).
//!
//! | state    | event                                            | next                                   |
//! |----------|--------------------------------------------------|----------------------------------------|
//! | Relaying | bytes; the body goes on                          | Relaying (client events appended)      |
//! | Relaying | bytes; the body ends by its framing              | Ended: Complete, Incomplete or CompleteRaw |
//! | Relaying | the translator says `Fail`                       | Ended: Failed (`upstream_error`)       |
//! | Relaying | a line or event over the limit                   | Ended: Failed (`upstream_error`)       |
//! | Relaying | bad framing                                      | Ended: Failed (`upstream_cut`)         |
//! | Relaying | EOF on a close-delimited body                    | Ended: Complete, Incomplete or CompleteRaw |
//! | Relaying | EOF before the framing's end                     | Ended: Failed (`upstream_cut`)         |
//! | Ended    | more bytes or EOF                                | Ended (the same ending again)          |
//!
//! `Output::Typed` is relayed as `Output::Translate`: where the translated text goes (a
//! typist's sink) is the caller's choice.
//!
//! Translated, a clean end is `Complete` when the translator said `Complete` at any point, or,
//! failing that, when its `on_clean_end` says so; otherwise `Incomplete`. Raw, a clean end is
//! always `CompleteRaw`: the upstream's events were the answer, and nothing is added to them. A
//! raw event that is not complete when the stream stops (cut, failed or ended) is never sent.

use super::{End, Failure, Flow, Output, Translator};
use crate::end::Outcome;
use crate::http::{Body, Head};
use crate::sse::{EventSink, RawEvents, SseParser};

pub struct Relay {
    body: Body,
    reader: Reader,
    /// The head did not say the connection closes after this response.
    keep_alive: bool,
    /// Set once; every later call returns it again.
    ended: Option<Ending>,
    /// The body ended by its framing with nothing after it, on a keep-alive connection.
    reusable: bool,
}

/// What one [`Relay::feed`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed {
    pub step: Step,
    /// Events skipped as not understood, one reason each (already cut for the log): log each at
    /// warn with the connection id and count each in `daemon_backend_errors_total`.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The body goes on: read more.
    More,
    /// The stream is over; see the module docs of `upstream` for what each ending asks.
    Ended(Ending),
}

/// What becomes of the decoded body.
enum Reader {
    Translate {
        parser: SseParser,
        translator: Box<dyn Translator>,
        /// A translator call said `Complete`; `[DONE]` follows if the body ends cleanly.
        completion_seen: bool,
    },
    Raw(RawEvents),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Write `data: [DONE]` and close the client.
    Complete,
    /// `output: raw`: the body ended cleanly and every event was passed on as received. Close
    /// the client without adding anything: no `[DONE]`, no error. The outcome is `completed`.
    CompleteRaw,
    /// Close the client without `[DONE]` and without an error event.
    Incomplete,
    /// Write `event: error` with the failure's message and close the client.
    Failed(Failure),
}

impl Relay {
    /// Starts relaying the body `head` announced, translated or raw as `output` says (a
    /// `Box<dyn Translator>` is `Output::Translate`). `max_line` bounds SSE lines and events.
    pub fn new(head: &Head, output: impl Into<Output>, max_line: usize) -> Relay {
        let reader = match output.into() {
            Output::Translate(translator) | Output::Typed(translator, _) => Reader::Translate {
                parser: SseParser::new(max_line),
                translator,
                completion_seen: false,
            },
            Output::Raw => Reader::Raw(RawEvents::new(max_line)),
        };
        Relay {
            body: Body::new(head),
            reader,
            keep_alive: !head.connection_close,
            ended: None,
            reusable: false,
        }
    }

    /// Relays the next bytes read from the upstream, appending client events to `sink`.
    /// `scratch` is a buffer lent for the decoded body; it is cleared first and means nothing
    /// afterwards, so one buffer can serve every connection.
    pub fn feed(&mut self, input: &[u8], scratch: &mut Vec<u8>, sink: &mut EventSink<'_>) -> Fed {
        let mut skipped = Vec::new();
        if let Some(ending) = &self.ended {
            return Fed {
                step: Step::Ended(ending.clone()),
                skipped,
            };
        }
        scratch.clear();
        // Payload decoded before a framing error is still relayed: it was good when it came.
        let framed = self.body.feed(input, scratch);
        let (failure, parsed) = match &mut self.reader {
            Reader::Translate {
                parser,
                translator,
                completion_seen,
            } => {
                let mut failure = None;
                let parsed = parser.feed(scratch, &mut |item| {
                    if failure.is_some() {
                        return;
                    }
                    match translator.on_item(&item, sink) {
                        Flow::Continue => {}
                        Flow::Complete => *completion_seen = true,
                        Flow::Skip(reason) => skipped.push(reason),
                        Flow::Fail(fail) => failure = Some(fail),
                    }
                });
                (failure, parsed)
            }
            Reader::Raw(events) => (None, events.feed(scratch, sink)),
        };
        let ending = match (failure, parsed, framed) {
            (Some(failure), _, _) => Ending::Failed(failure),
            (None, Err(error), _) => {
                Ending::Failed(malformed(error.to_string(), Outcome::UpstreamError))
            }
            (None, Ok(()), Err(error)) => {
                Ending::Failed(malformed(error.to_string(), Outcome::UpstreamCut))
            }
            (None, Ok(()), Ok(used)) if self.body.is_complete() => {
                self.reusable = self.keep_alive && used == input.len();
                self.clean_end()
            }
            (None, Ok(()), Ok(_)) => {
                return Fed {
                    step: Step::More,
                    skipped,
                }
            }
        };
        self.ended = Some(ending.clone());
        Fed {
            step: Step::Ended(ending),
            skipped,
        }
    }

    /// The upstream connection reached EOF (or the TLS session closed cleanly).
    pub fn on_eof(&mut self) -> Ending {
        if let Some(ending) = &self.ended {
            return ending.clone();
        }
        let ending = match self.body.on_eof() {
            Ok(()) => self.clean_end(),
            Err(error) => Ending::Failed(Failure {
                message: "the upstream connection closed before the answer was complete"
                    .to_string(),
                detail: error.to_string(),
                outcome: Outcome::UpstreamCut,
            }),
        };
        self.ended = Some(ending.clone());
        ending
    }

    /// Bytes held between feeds, for the memory budget.
    pub fn held_bytes(&self) -> usize {
        match &self.reader {
            Reader::Translate { parser, .. } => parser.held_bytes(),
            Reader::Raw(events) => events.held_bytes(),
        }
    }

    /// The upstream connection may go back to the pool: the response ended by its framing,
    /// nothing followed it, and the server did not ask to close.
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    fn clean_end(&mut self) -> Ending {
        match &mut self.reader {
            Reader::Translate {
                translator,
                completion_seen,
                ..
            } => {
                if *completion_seen || translator.on_clean_end() == End::Complete {
                    Ending::Complete
                } else {
                    Ending::Incomplete
                }
            }
            Reader::Raw(_) => Ending::CompleteRaw,
        }
    }
}

fn malformed(detail: String, outcome: Outcome) -> Failure {
    Failure {
        message: "the upstream API sent a malformed response".to_string(),
        detail,
        outcome,
    }
}

#[cfg(test)]
mod tests;
