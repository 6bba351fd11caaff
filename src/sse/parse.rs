//! Incremental parsing of the Server-Sent Events upstreams send, by the WHATWG rules
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>).
//!
//! | state         | input                                  | next                                   |
//! |---------------|----------------------------------------|----------------------------------------|
//! | between lines | bytes with no line end                 | in a line (kept in `line`)             |
//! | any           | CR, LF or CRLF                         | the line is handled, between lines     |
//! | any           | CR at the end of an input              | `after_cr`: an LF first in the next input is skipped |
//! | line handled  | empty line, `data` seen                | `Event` emitted, event state dropped   |
//! | line handled  | empty line, no `data`                  | event state dropped, nothing emitted   |
//! | line handled  | `:` first                              | `Comment` emitted                      |
//! | line handled  | `event`                                | name replaced                          |
//! | line handled  | `data`                                 | value appended (LF between lines)      |
//! | line handled  | `id`, `retry`, other fields            | ignored                                |
//! | any           | a line or event over the limit         | error; the parser must be dropped      |
//!
//! A field without a colon is a field with an empty value; one space after the colon is not part
//! of the value; an empty event name means `message`; a UTF-8 BOM before the first line is
//! dropped; bytes that are not UTF-8 become U+FFFD. Comments are surfaced (not dropped as the
//! WHATWG rules say) because LangGraph's heartbeats must reach the client.
//!
//! Memory: an event that arrives within one input is handed out straight from that input, with
//! no copy. Only what straddles two inputs is kept (the incomplete line, and the name and data of
//! an event whose blank line has not come yet), and it is freed as soon as it is used, so a
//! parser between events holds at most an incomplete line.

use std::borrow::Cow;
use std::fmt;

/// A line or an event's data larger than this is refused unless the caller says otherwise.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One thing the stream said. Borrowed: copy what must outlive the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseItem<'a> {
    /// A dispatched event. `name` is `message` unless an `event:` line said otherwise; `data`
    /// is the event's `data:` lines joined with LF.
    Event { name: &'a str, data: &'a str },
    /// A `:` line, without the colon and one following space.
    Comment(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A line longer than the limit, in bytes, without its line end.
    LineTooLong { limit: usize },
    /// An event whose data lines together are longer than the limit.
    EventTooLarge { limit: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong { limit } => {
                write!(
                    f,
                    "the upstream sent an event-stream line over {limit} bytes"
                )
            }
            SseError::EventTooLarge { limit } => {
                write!(
                    f,
                    "the upstream sent an event with over {limit} bytes of data"
                )
            }
        }
    }
}

impl std::error::Error for SseError {}

#[derive(Debug)]
pub struct SseParser {
    /// The incomplete last line of earlier input, without any line end.
    line: Vec<u8>,
    /// The last input ended with CR: an LF at the start of the next one completes that CRLF.
    after_cr: bool,
    /// No line has been handled yet: a BOM at the start is dropped.
    first_line: bool,
    /// The pending event's name, when the event started in an earlier input.
    name: Vec<u8>,
    /// The pending event's data lines joined with LF, when the event started in an earlier input.
    data: Vec<u8>,
    /// The pending event has a `data` field (its data may still be empty).
    has_data: bool,
    max_line: usize,
}

/// Where the pending event's name or data is during one `feed`: straight in the input, or in
/// the parser's own buffer.
#[derive(Clone, Copy)]
enum Slot<'i> {
    Held,
    Input(&'i [u8]),
}

/// A line, either straight from the input (may be kept as a borrow until the feed ends) or
/// from the parser's carried-over bytes (must be copied if kept).
#[derive(Clone, Copy)]
enum Line<'i, 'c> {
    Input(&'i [u8]),
    Carried(&'c [u8]),
}

impl<'i, 'c> Line<'i, 'c> {
    fn bytes(self) -> &'c [u8]
    where
        'i: 'c,
    {
        match self {
            Line::Input(bytes) => bytes,
            Line::Carried(bytes) => bytes,
        }
    }

    fn from(self, start: usize) -> Line<'i, 'c> {
        match self {
            Line::Input(bytes) => Line::Input(&bytes[start..]),
            Line::Carried(bytes) => Line::Carried(&bytes[start..]),
        }
    }
}

/// The pending event's name and data slots for the feed in progress.
struct Pending<'i> {
    name: Slot<'i>,
    data: Slot<'i>,
}

impl SseParser {
    /// Bytes held between feeds (a partial line, a pending event), for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.line.capacity() + self.name.capacity() + self.data.capacity()
    }

    /// `max_line` bounds each line and each event's data, in bytes.
    pub fn new(max_line: usize) -> SseParser {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            name: Vec::new(),
            data: Vec::new(),
            has_data: false,
            max_line,
        }
    }

    /// Parses `input`, the next bytes of the stream, calling `emit` for every item completed in
    /// it. After an error the stream cannot be followed any more: drop the parser.
    pub fn feed(
        &mut self,
        input: &[u8],
        emit: &mut dyn FnMut(SseItem<'_>),
    ) -> Result<(), SseError> {
        let mut pending = Pending {
            name: Slot::Held,
            data: Slot::Held,
        };
        let mut rest = input;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\r', b'\n', rest) {
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = &rest[..end];
            rest = &rest[next..];
            if self.line.is_empty() {
                self.check_line(line.len())?;
                self.handle_line(Line::Input(line), &mut pending, emit)?;
            } else {
                self.check_line(self.line.len() + line.len())?;
                // Taken out, so that it is freed once handled: nothing is kept between lines.
                let mut carried = std::mem::take(&mut self.line);
                carried.extend_from_slice(line);
                self.handle_line(Line::Carried(&carried), &mut pending, emit)?;
            }
        }
        self.check_line(self.line.len() + rest.len())?;
        self.line.extend_from_slice(rest);
        // The input goes away after this call: keep what the pending event borrowed from it.
        if let Slot::Input(name) = pending.name {
            self.name = name.to_vec();
        }
        if let Slot::Input(data) = pending.data {
            self.data = data.to_vec();
        }
        Ok(())
    }

    fn check_line(&self, len: usize) -> Result<(), SseError> {
        if len > self.max_line {
            Err(SseError::LineTooLong {
                limit: self.max_line,
            })
        } else {
            Ok(())
        }
    }

    fn handle_line<'i>(
        &mut self,
        mut line: Line<'i, '_>,
        pending: &mut Pending<'i>,
        emit: &mut dyn FnMut(SseItem<'_>),
    ) -> Result<(), SseError> {
        if self.first_line {
            self.first_line = false;
            if line.bytes().starts_with(BOM) {
                line = line.from(BOM.len());
            }
        }
        let bytes = line.bytes();
        if bytes.is_empty() {
            self.dispatch(pending, emit);
            return Ok(());
        }
        if bytes[0] == b':' {
            let text = String::from_utf8_lossy(strip_space(&bytes[1..]));
            emit(SseItem::Comment(&text));
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', bytes) {
            Some(colon) => {
                let value = line.from(colon + 1);
                let skip = usize::from(value.bytes().first() == Some(&b' '));
                (&bytes[..colon], value.from(skip))
            }
            None => (bytes, line.from(bytes.len())),
        };
        match field {
            b"event" => self.set_name(value, pending),
            b"data" => self.append_data(value, pending)?,
            // `id` would only matter for reconnecting, which we never do; `retry` likewise.
            _ => {}
        }
        Ok(())
    }

    fn set_name<'i>(&mut self, value: Line<'i, '_>, pending: &mut Pending<'i>) {
        match value {
            Line::Input(name) => {
                self.name = Vec::new();
                pending.name = Slot::Input(name);
            }
            Line::Carried(name) => {
                self.name = name.to_vec();
                pending.name = Slot::Held;
            }
        }
    }

    fn append_data<'i>(
        &mut self,
        value: Line<'i, '_>,
        pending: &mut Pending<'i>,
    ) -> Result<(), SseError> {
        let bytes = value.bytes();
        if self.has_data {
            let held = match pending.data {
                Slot::Input(data) => data.len(),
                Slot::Held => self.data.len(),
            };
            if held + 1 + bytes.len() > self.max_line {
                return Err(SseError::EventTooLarge {
                    limit: self.max_line,
                });
            }
            if let Slot::Input(data) = pending.data {
                self.data = data.to_vec();
                pending.data = Slot::Held;
            }
            self.data.push(b'\n');
            self.data.extend_from_slice(bytes);
        } else {
            match value {
                Line::Input(data) => pending.data = Slot::Input(data),
                Line::Carried(data) => self.data = data.to_vec(),
            }
            self.has_data = true;
        }
        Ok(())
    }

    fn dispatch(&mut self, pending: &mut Pending<'_>, emit: &mut dyn FnMut(SseItem<'_>)) {
        if self.has_data {
            let name = match pending.name {
                Slot::Input(name) => name,
                Slot::Held => &self.name,
            };
            let data = match pending.data {
                Slot::Input(data) => data,
                Slot::Held => &self.data,
            };
            let name = if name.is_empty() {
                Cow::Borrowed("message")
            } else {
                String::from_utf8_lossy(name)
            };
            let data = String::from_utf8_lossy(data);
            emit(SseItem::Event {
                name: &name,
                data: &data,
            });
        }
        // Freed, not cleared: a parser between events holds nothing.
        self.name = Vec::new();
        self.data = Vec::new();
        self.has_data = false;
        pending.name = Slot::Held;
        pending.data = Slot::Held;
    }
}

fn strip_space(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b" ").unwrap_or(bytes)
}

#[cfg(test)]
mod tests;
