//! Typing an upstream's answer out as it streams in (the typing backend's `use_api`, SPEC
//! §4.2): the relay's translator writes the text of content events into the typist's
//! [`Typist::sink`], and the typist hands it to the client one character per event
//! (`{"char","index"}`, `index` the byte offset in the whole answer), pausing after each as its
//! [`Pace`] says. It does no I/O and reads no clock: `now` is an argument.
//!
//! | state     | event                                                  | next                                         |
//! |-----------|--------------------------------------------------------|----------------------------------------------|
//! | Typing    | text through `sink()`                                  | Typing, the text queued                      |
//! | Typing    | `type_due`: a character queued, its time has come      | Typing: one event; the next is due after its pause |
//! | Typing    | `type_due`: nothing queued, or not due yet             | Typing: nothing                              |
//! | Typing    | `body_ended(Failed)`                                   | Done: that failure at once, untyped text dropped |
//! | Typing    | `body_ended(any other ending)`                         | Finishing, the ending kept                   |
//! | Finishing | `type_due`: characters left, due                       | Finishing: one event                         |
//! | Finishing | `type_due`: none left and the last pause over          | Done: `Ended(the ending)`                    |
//! | Finishing | `type_due`: otherwise                                  | Finishing: nothing                           |
//! | Done      | `type_due`                                             | Done: nothing                                |
//!
//! So `[DONE]` (by a `Complete` ending) comes only once the upstream completed and every
//! character is typed, after the last one's pause, as the local typing backend does. While more
//! than [`BACKLOG_LIMIT`] bytes wait to be typed, [`Typist::is_backed_up`] tells the caller to
//! stop reading the upstream.

use std::time::{Duration, Instant};

use super::Ending;
use crate::deadline;
use crate::sse::EventSink;

/// The pause after a character.
pub type Pace = fn(char) -> Duration;

/// More untyped text than this stops reading the upstream until typing brings it back under
/// (SPEC §4.2): a typist types 40 characters a second, a model streams far faster.
pub const BACKLOG_LIMIT: usize = 64 * 1024;

/// Typed text is dropped from the front of the queue once this much of it has piled up (and it
/// is at least half the queue), so the queue holds about the backlog, not the whole answer.
const COMPACT_AFTER: usize = 4 * 1024;

pub struct Typist {
    pace: Pace,
    /// Text received; `text[..next]` is typed already and waits to be dropped.
    text: String,
    /// The byte offset in `text` of the next character to type.
    next: usize,
    /// The byte offset in the whole answer of `text[0]`.
    base: usize,
    /// When the next character may be typed: the pause after the last one is over.
    due: Instant,
    /// How the upstream's body ended, once it has: typing ends by it.
    ending: Option<Ending>,
    /// The ending was handed back: nothing more happens.
    done: bool,
}

/// What one [`Typist::type_due`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Nothing to do before [`Typist::due`].
    Waiting,
    /// One character event was appended.
    Char,
    /// Every character is typed and its pause is over: end the stream by this ending.
    Ended(Ending),
}

impl Typist {
    /// A typist whose first character may be typed at `now`.
    pub fn new(pace: Pace, now: Instant) -> Typist {
        Typist {
            pace,
            text: String::new(),
            next: 0,
            base: 0,
            due: now,
            ending: None,
            done: false,
        }
    }

    /// Where the translator writes: the text of its content events is queued.
    pub fn sink(&mut self) -> EventSink<'_> {
        EventSink::text(&mut self.text)
    }

    /// Bytes received and not typed yet.
    pub fn backlog(&self) -> usize {
        self.text.len() - self.next
    }

    /// Over the backlog limit: do not read the upstream until typing catches up.
    pub fn is_backed_up(&self) -> bool {
        self.backlog() > BACKLOG_LIMIT
    }

    /// When [`Typist::type_due`] will do something: the next character's time, or, once the
    /// body ended, the end's; `None` while there is nothing to type and the body goes on.
    pub fn due(&self) -> Option<Instant> {
        let waits = self.backlog() > 0 || self.ending.is_some();
        (waits && !self.done).then_some(self.due)
    }

    /// The upstream's body ended. A failure ends typing at once (what was not typed is
    /// dropped: the answer is broken anyway) and is handed back; any other ending waits for
    /// the text to be typed and comes back from [`Typist::type_due`].
    pub fn body_ended(&mut self, ending: Ending) -> Option<Ending> {
        match ending {
            Ending::Failed(_) => {
                self.done = true;
                self.text = String::new();
                self.next = 0;
                Some(ending)
            }
            Ending::Complete | Ending::CompleteRaw | Ending::Incomplete => {
                self.ending = Some(ending);
                None
            }
        }
    }

    /// Types the next character if its time has come, or hands back the ending once everything
    /// is typed and the last pause is over. One character per call: the caller writes it to the
    /// client and asks again when the client has taken it.
    pub fn type_due(&mut self, now: Instant, sink: &mut EventSink<'_>) -> Typed {
        if self.done || now < self.due {
            return Typed::Waiting;
        }
        let Some(character) = self.text[self.next..].chars().next() else {
            return match self.ending.take() {
                Some(ending) => {
                    self.done = true;
                    Typed::Ended(ending)
                }
                None => Typed::Waiting,
            };
        };
        sink.typing(character, self.base + self.next);
        self.next += character.len_utf8();
        self.due = deadline::after(now, (self.pace)(character));
        self.compact();
        Typed::Char
    }

    /// Bytes held for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.text.capacity()
    }

    /// Drops typed text from the front: all of it when nothing is left (a burst's capacity is
    /// given back), else when enough has piled up that moving the rest costs little per byte.
    fn compact(&mut self) {
        if self.next == self.text.len() {
            self.base += self.next;
            self.next = 0;
            self.text.clear();
            self.text.shrink_to(COMPACT_AFTER);
        } else if self.next >= COMPACT_AFTER && self.next * 2 >= self.text.len() {
            self.text.drain(..self.next);
            self.base += self.next;
            self.next = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::upstream::Failure;
    use crate::end::Outcome;

    /// 10 ms after a space, 1 ms after anything else: easy to add up.
    fn pace(character: char) -> Duration {
        Duration::from_millis(if character == ' ' { 10 } else { 1 })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn push(typist: &mut Typist, text: &str) {
        typist.sink().content(text);
    }

    /// One `type_due` at `now`: the `(char, index)` typed, if any, and what it came to.
    fn step(typist: &mut Typist, now: Instant) -> (Option<(String, u64)>, Typed) {
        let mut out = Vec::new();
        let mut sink = EventSink::new(&mut out);
        let typed = typist.type_due(now, &mut sink);
        let events = sink.events();
        if out.is_empty() {
            assert_eq!(events, 0);
            return (None, typed);
        }
        assert_eq!(events, 1, "one event per call");
        let text = String::from_utf8(out).unwrap();
        let json = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let pair = (
            value["char"].as_str().unwrap().to_string(),
            value["index"].as_u64().unwrap(),
        );
        (Some(pair), typed)
    }

    fn failure() -> Ending {
        Ending::Failed(Failure {
            message: "cut".into(),
            detail: "cut".into(),
            outcome: Outcome::UpstreamCut,
        })
    }

    #[test]
    fn characters_come_one_per_call_each_after_the_pause_before_it() {
        let t0 = Instant::now();
        let mut typist = Typist::new(pace, t0);
        assert_eq!(typist.due(), None, "nothing to type yet");
        assert_eq!(step(&mut typist, t0), (None, Typed::Waiting));
        push(&mut typist, "a b");
        assert_eq!(typist.due(), Some(t0));
        assert_eq!(step(&mut typist, t0), (Some(("a".into(), 0)), Typed::Char));
        assert_eq!(typist.due(), Some(t0 + ms(1)));
        assert_eq!(step(&mut typist, t0), (None, Typed::Waiting), "not yet");
        assert_eq!(
            step(&mut typist, t0 + ms(1)),
            (Some((" ".into(), 1)), Typed::Char)
        );
        assert_eq!(typist.due(), Some(t0 + ms(11)), "a space pauses longer");
        assert_eq!(step(&mut typist, t0 + ms(10)), (None, Typed::Waiting));
        // Late is fine: the pause counts from when the character went out.
        assert_eq!(
            step(&mut typist, t0 + ms(50)),
            (Some(("b".into(), 2)), Typed::Char)
        );
        assert_eq!(typist.due(), None, "all typed, the body goes on");
        // Text arriving after a quiet spell is typed at once.
        push(&mut typist, "c");
        assert_eq!(typist.due(), Some(t0 + ms(51)));
        assert_eq!(
            step(&mut typist, t0 + ms(90)),
            (Some(("c".into(), 3)), Typed::Char)
        );
    }

    #[test]
    fn indexes_are_byte_offsets_across_pieces_and_multibyte_characters() {
        let t0 = Instant::now();
        let mut typist = Typist::new(pace, t0);
        let pieces = [
            "caf\u{e9} ",
            "\u{1F600}",
            "",
            "\"q\"\n\\",
            "\u{65e5}\u{672c}",
        ];
        let answer: String = pieces.concat();
        let mut typed = Vec::new();
        let mut now = t0;
        for piece in pieces {
            push(&mut typist, piece);
            while let (Some(pair), Typed::Char) = step(&mut typist, now) {
                typed.push(pair);
                now += ms(10);
            }
        }
        let want: Vec<(String, u64)> = answer
            .char_indices()
            .map(|(i, c)| (c.to_string(), i as u64))
            .collect();
        assert_eq!(typed, want);
    }

    #[test]
    fn a_long_answer_keeps_its_indexes_while_typed_text_is_dropped() {
        let t0 = Instant::now();
        let mut typist = Typist::new(|_| Duration::ZERO, t0);
        // 3-byte characters, so no compaction point falls on a boundary by luck: 4000 bytes.
        let piece = "\u{65e5}x".repeat(1000);
        let rounds = 25;
        let mut index = 0u64;
        let mut most_held = 0;
        for _ in 0..rounds {
            push(&mut typist, &piece);
            // 3600 of the 4000 bytes: the queue never runs empty, and slowly grows.
            for _ in 0..1800 {
                let (Some((c, i)), Typed::Char) = step(&mut typist, t0) else {
                    panic!("due");
                };
                assert_eq!(i, index, "{c:?}");
                index += c.len() as u64;
            }
            most_held = most_held.max(typist.held_bytes());
        }
        assert_eq!(typist.backlog(), rounds * 400);
        let answer = rounds * piece.len();
        assert!(
            most_held < answer / 3,
            "typed text is dropped: {most_held} of {answer} held"
        );
        while let (Some((c, i)), Typed::Char) = step(&mut typist, t0) {
            assert_eq!(i, index);
            index += c.len() as u64;
        }
        assert_eq!(index, answer as u64);
        assert!(
            typist.held_bytes() <= COMPACT_AFTER,
            "a burst's room is given back"
        );
    }

    #[test]
    fn more_than_64_kib_untyped_backs_the_upstream_up_until_typing_catches_up() {
        let t0 = Instant::now();
        let mut typist = Typist::new(|_| Duration::ZERO, t0);
        push(&mut typist, &"x".repeat(BACKLOG_LIMIT));
        assert!(!typist.is_backed_up(), "64 KiB exactly is not more");
        push(&mut typist, "yz");
        assert_eq!(typist.backlog(), BACKLOG_LIMIT + 2);
        assert!(typist.is_backed_up());
        assert_eq!(step(&mut typist, t0).1, Typed::Char);
        assert!(typist.is_backed_up());
        assert_eq!(step(&mut typist, t0).1, Typed::Char);
        assert!(!typist.is_backed_up(), "back at the limit: read again");
        assert!(
            typist.held_bytes() >= BACKLOG_LIMIT,
            "the backlog is counted"
        );
    }

    #[test]
    fn the_ending_comes_only_after_every_character_and_the_last_pause() {
        let t0 = Instant::now();
        let mut typist = Typist::new(pace, t0);
        push(&mut typist, "hi");
        assert_eq!(step(&mut typist, t0).1, Typed::Char);
        assert_eq!(typist.body_ended(Ending::Complete), None, "one to type");
        assert_eq!(step(&mut typist, t0).1, Typed::Waiting);
        assert_eq!(
            step(&mut typist, t0 + ms(1)),
            (Some(("i".into(), 1)), Typed::Char)
        );
        assert_eq!(typist.due(), Some(t0 + ms(2)), "the end is due too");
        assert_eq!(step(&mut typist, t0 + ms(1)).1, Typed::Waiting, "its pause");
        assert_eq!(
            step(&mut typist, t0 + ms(2)).1,
            Typed::Ended(Ending::Complete)
        );
        assert_eq!(typist.due(), None);
        assert_eq!(step(&mut typist, t0 + ms(9)).1, Typed::Waiting, "once");
    }

    #[test]
    fn an_incomplete_end_also_waits_and_an_empty_answer_ends_at_once() {
        let t0 = Instant::now();
        let mut typist = Typist::new(pace, t0);
        push(&mut typist, "a");
        assert_eq!(typist.body_ended(Ending::Incomplete), None);
        assert_eq!(step(&mut typist, t0).1, Typed::Char);
        assert_eq!(
            step(&mut typist, t0 + ms(1)).1,
            Typed::Ended(Ending::Incomplete)
        );

        let mut empty = Typist::new(pace, t0);
        assert_eq!(empty.body_ended(Ending::Complete), None);
        assert_eq!(empty.due(), Some(t0));
        assert_eq!(step(&mut empty, t0).1, Typed::Ended(Ending::Complete));
    }

    #[test]
    fn a_failure_mid_way_ends_at_once_and_drops_the_untyped_text() {
        let t0 = Instant::now();
        let mut typist = Typist::new(pace, t0);
        push(&mut typist, &"abc".repeat(100));
        assert_eq!(step(&mut typist, t0).1, Typed::Char);
        assert_eq!(typist.body_ended(failure()), Some(failure()));
        assert_eq!(typist.backlog(), 0);
        assert_eq!(typist.held_bytes(), 0);
        assert_eq!(typist.due(), None);
        assert_eq!(step(&mut typist, t0 + ms(100)), (None, Typed::Waiting));
    }
}
