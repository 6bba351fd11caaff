//! The mock backend: a fixed 18-event answer with a configurable pause between events, so that
//! the daemon can be run and measured without any upstream service.

use std::time::{Duration, Instant};

use super::{Attached, Backend, BackendError, EventSource, Next, Start};
use crate::config::Config;
use crate::handoff::HandoffData;
use crate::sse::EventSink;

const PROMPT_SHOWN_BYTES: usize = 50;

const SENTENCES: [&str; 10] = [
    "Apache authenticated this request in PHP and then let go of it.",
    "The client's socket travelled to this daemon over a Unix socket as SCM_RIGHTS.",
    "Apache's worker was free again the moment the socket left it.",
    "One event loop now holds this connection next to thousands of others.",
    "Each stream is a small state machine in a slab, not a thread.",
    "A timer in the loop decides when the next event is due.",
    "Bytes the client cannot take yet wait in a bounded buffer.",
    "A client that stops reading for too long is let go.",
    "A real backend would relay tokens from an LLM API here.",
    "When the answer is complete, the stream ends with a DONE marker.",
];

/// Events 13 to 17, spelled out once rather than formatted for every stream.
const COUNTDOWN: [&str; 5] = [
    "This is message 13 of 18.",
    "This is message 14 of 18.",
    "This is message 15 of 18.",
    "This is message 16 of 18.",
    "This is message 17 of 18.",
];

pub fn create(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(Mock {
        delay: config.backend.mock.message_delay,
    }))
}

struct Mock {
    delay: Duration,
}

impl Backend for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn start(
        &mut self,
        request: HandoffData,
        _attached: Option<Attached>,
        _now: Instant,
    ) -> Result<Start, BackendError> {
        let user_id = request.user_id;
        Ok(Start::Local(Box::new(MockStream {
            prompt: Some(shown_prompt(request)),
            user_id,
            next: 1,
            delay: self.delay,
        })))
    }
}

struct MockStream {
    /// Needed only for the first event; dropped once it is sent.
    prompt: Option<String>,
    user_id: i64,
    /// The number of the next event, 1 to 18.
    next: u8,
    delay: Duration,
}

impl EventSource for MockStream {
    fn produce(&mut self, sink: &mut EventSink<'_>) -> Next {
        loop {
            match self.next {
                1 => {
                    let prompt = self.prompt.take().unwrap_or_default();
                    sink.content(&format!(
                        "Hello from Rust daemon! Prompt: {}",
                        shown(&prompt)
                    ));
                }
                2 => sink.content(&format!("User ID: {}", self.user_id)),
                n @ 3..=12 => sink.content(SENTENCES[usize::from(n - 3)]),
                n @ 13..=17 => sink.content(COUNTDOWN[usize::from(n - 13)]),
                _ => {
                    sink.content("[DONE-CONTENT]");
                    return Next::Complete;
                }
            }
            self.next += 1;
            // An explicit zero delay means the whole answer at once.
            if !self.delay.is_zero() {
                return Next::After(self.delay);
            }
        }
    }
}

/// What event 1 shows: the handoff's `prompt`, as the Go daemon did; **ours:** when that is
/// empty, the words of the message the upstream backends would answer (the last `user`
/// message; of a content-parts array, its text parts joined), so that a `messages` handoff can
/// be tried on the mock too.
fn shown_prompt(request: HandoffData) -> String {
    if !request.prompt.is_empty() {
        return request.prompt;
    }
    request
        .messages
        .into_iter()
        .rev()
        .find(|message| message.role == "user")
        .map(|message| message.content.text().to_string())
        .unwrap_or_default()
}

/// The prompt cut to at most 50 bytes on a character boundary, marked when it was cut.
fn shown(prompt: &str) -> String {
    if prompt.len() <= PROMPT_SHOWN_BYTES {
        return prompt.to_string();
    }
    let mut end = PROMPT_SHOWN_BYTES;
    while !prompt.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &prompt[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(delay: Duration, request: HandoffData) -> (Vec<String>, Vec<Next>) {
        let mut backend = Mock { delay };
        let Ok(Start::Local(mut source)) = backend.start(request, None, Instant::now()) else {
            panic!("the mock backend is local");
        };
        let mut out = Vec::new();
        let mut steps = Vec::new();
        for _ in 0..40 {
            let next = source.produce(&mut EventSink::new(&mut out));
            let done = next == Next::Complete;
            steps.push(next);
            if done {
                break;
            }
        }
        let events = String::from_utf8(out)
            .unwrap()
            .split_terminator("\n\n")
            .map(|frame| {
                let json = frame.strip_prefix("data: ").unwrap();
                let value: serde_json::Value = serde_json::from_str(json).unwrap();
                value["content"].as_str().unwrap().to_string()
            })
            .collect();
        (events, steps)
    }

    #[test]
    fn eighteen_events_seventeen_delays() {
        let delay = Duration::from_millis(50);
        let request = HandoffData {
            prompt: "Hi".into(),
            user_id: 42,
            ..HandoffData::default()
        };
        let (events, steps) = run(delay, request);
        assert_eq!(events.len(), 18);
        assert_eq!(events[0], "Hello from Rust daemon! Prompt: Hi");
        assert_eq!(events[1], "User ID: 42");
        assert_eq!(events[12], "This is message 13 of 18.");
        assert_eq!(events[16], "This is message 17 of 18.");
        assert_eq!(events[17], "[DONE-CONTENT]");
        assert_eq!(steps.len(), 18);
        assert!(steps[..17].iter().all(|s| *s == Next::After(delay)));
        assert_eq!(steps[17], Next::Complete);
    }

    #[test]
    fn zero_delay_produces_everything_at_once() {
        let (events, steps) = run(Duration::ZERO, HandoffData::default());
        assert_eq!(events.len(), 18);
        assert_eq!(events[1], "User ID: 0");
        assert_eq!(steps, vec![Next::Complete]);
    }

    #[test]
    fn without_a_prompt_event_1_shows_the_last_user_messages_words() {
        let request = |json: &str| crate::handoff::parse_handoff_data(json.as_bytes()).unwrap();
        let first = |json: &str| run(Duration::ZERO, request(json)).0.remove(0);
        assert_eq!(
            first(
                r#"{"messages":[{"role":"user","content":"old"},{"role":"user","content":[{"type":"text","text":"What is "},{"type":"image_url","image_url":{"url":"data:image/png;base64,QQ=="}},{"type":"text","text":"this?"}]},{"role":"assistant","content":"A"}]}"#
            ),
            "Hello from Rust daemon! Prompt: What is this?"
        );
        assert_eq!(
            first(r#"{"prompt":"P","messages":[{"role":"user","content":"M"}]}"#),
            "Hello from Rust daemon! Prompt: P"
        );
        assert_eq!(
            first(r#"{"messages":[{"role":"system","content":"S"}]}"#),
            "Hello from Rust daemon! Prompt: "
        );
    }

    #[test]
    fn long_prompts_are_cut_on_a_character_boundary() {
        assert_eq!(shown(&"a".repeat(50)), "a".repeat(50));
        assert_eq!(shown(&"a".repeat(51)), format!("{}...", "a".repeat(50)));
        // 49 ASCII bytes then a 2-byte character straddling the limit.
        let prompt = format!("{}é tail", "a".repeat(49));
        assert_eq!(shown(&prompt), format!("{}...", "a".repeat(49)));
    }
}
