//! An upstream event stream cut into its events, each passed on with its bytes exactly as they
//! came: LangGraph's `output: raw` (SPEC §4.4). Nothing is parsed beyond the line ends.
//!
//! An event is every byte from its first non-blank line to the blank line that ends it, that
//! line end included: its fields, its comment lines (a `: heartbeat` is an event of one comment
//! line), its line ends as sent (`\n`, `\r\n` or `\r`).
//!
//! | state            | input                                   | next                                      |
//! |------------------|-----------------------------------------|-------------------------------------------|
//! | between events   | a line end (a blank line)               | between events; passed on at once, not counted |
//! | between events   | any other byte                          | in an event (the bytes are held)          |
//! | in an event      | a line end after a non-blank line       | in an event                               |
//! | in an event      | a blank line                            | between events; the event passed on, counted |
//! | any              | CR at the end of an input               | `after_cr`: an LF first in the next input belongs to that line end |
//! | any              | a line over the limit, an event over twice the limit | error; drop the splitter    |
//!
//! A blank line that is not the end of an event (an extra line end between events, or the LF of a
//! CRLF whose CR ended the previous input) is passed on as it came, so that the client gets the
//! upstream's bytes and nothing else, in order. What is held when the stream stops (an event
//! without its blank line) is never passed on: the caller drops the splitter, and with it the
//! partial event.
//!
//! Limits: each line is bounded by `max_line`, as the parser bounds it; an event as received
//! (field names, comments and line ends included; the blank line that ends it counts as one
//! byte) by twice that, which leaves room for an event whose data is at the parser's limit. When an event breaks
//! both, the error is the limit its bytes crossed first, so it does not depend on how the stream
//! was cut into reads. An event that arrives within one input is passed on
//! straight from it; only an event that straddles inputs is copied.

use super::{EventSink, SseError};

#[derive(Debug)]
pub struct RawEvents {
    /// The open event's bytes from earlier inputs.
    held: Vec<u8>,
    /// Bytes of the current line so far, without its line end.
    line_len: usize,
    /// The open event has a non-blank line: the next blank line ends it.
    open: bool,
    /// The last input ended with CR: an LF first in the next one completes that line end.
    after_cr: bool,
    max_line: usize,
}

impl RawEvents {
    /// `max_line` bounds each line; twice it bounds each event.
    pub fn new(max_line: usize) -> RawEvents {
        RawEvents {
            held: Vec::new(),
            line_len: 0,
            open: false,
            after_cr: false,
            max_line,
        }
    }

    /// Bytes held between feeds (an incomplete event), for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.held.capacity()
    }

    /// Passes on every event completed in `input`, the next bytes of the stream, each counted in
    /// `sink` as one event. After an error the stream cannot be followed: drop the splitter.
    pub fn feed(&mut self, input: &[u8], sink: &mut EventSink<'_>) -> Result<(), SseError> {
        let mut rest = input;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                // The rest of a CRLF: it goes where its CR went.
                if self.open {
                    self.held.push(b'\n');
                } else {
                    sink.verbatim(b"\n");
                }
                rest = &rest[1..];
            }
        }
        // `rest[from..]` is not passed on yet; `rest[pos..]` is not scanned yet.
        let mut from = 0;
        let mut pos = 0;
        while let Some(offset) = memchr::memchr2(b'\r', b'\n', &rest[pos..]) {
            let end = pos + offset;
            let line_len = self.line_len + offset;
            self.check_limits(self.held.len() + (end - from), line_len)?;
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.line_len = 0;
            pos = next;
            if line_len > 0 {
                self.open = true;
                continue;
            }
            let from_of_event = from;
            let bytes = &rest[from..next];
            from = next;
            if !self.open {
                sink.verbatim(bytes);
                continue;
            }
            self.open = false;
            // The blank line counts as one byte whatever its line end: a CRLF cut after its CR
            // must give the size a whole one gives (its LF comes in the next input, passed on
            // uncounted).
            self.check_event(self.held.len() + (end - from_of_event) + 1)?;
            if self.held.is_empty() {
                sink.verbatim_event(bytes);
            } else {
                // Taken out, so that it is freed once passed on: nothing is kept between events.
                let mut event = std::mem::take(&mut self.held);
                event.extend_from_slice(bytes);
                sink.verbatim_event(&event);
            }
        }
        let tail = &rest[pos..];
        self.line_len += tail.len();
        let unsent = &rest[from..];
        self.check_limits(self.held.len() + unsent.len(), self.line_len)?;
        if !unsent.is_empty() {
            self.held.extend_from_slice(unsent);
        }
        Ok(())
    }

    /// Both limits, for an event of `event_len` bytes so far whose last line has `line_len`
    /// bytes so far. When both are over, the error is the limit the stream crossed first, byte
    /// by byte: the same error wherever the reads were cut (checked at a line end or at the
    /// end of an input, an event can be over its limit before a long line in it ends).
    fn check_limits(&self, event_len: usize, line_len: usize) -> Result<(), SseError> {
        let event_limit = self.max_line.saturating_mul(2);
        let line_over = line_len > self.max_line;
        let event_over = event_len > event_limit;
        // The line's first byte is at `event_len - line_len` in the event.
        let line_first =
            line_over && (!event_over || event_len - line_len + self.max_line < event_limit);
        if line_first {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        if event_over {
            return Err(SseError::EventTooLarge { limit: event_limit });
        }
        Ok(())
    }

    fn check_event(&self, len: usize) -> Result<(), SseError> {
        let limit = self.max_line.saturating_mul(2);
        if len > limit {
            return Err(SseError::EventTooLarge { limit });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
