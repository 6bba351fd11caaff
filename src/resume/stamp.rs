//! Stamping a stream's events with SSE ids (SPEC §2.1), in the one place where the bytes a
//! stream transition produced go to the client, so that no backend, translator or relay needs
//! to know about resuming.
//!
//! Input is the stream's body after its head: SSE blocks, each a run of lines ended by a blank
//! line, with `\n`, `\r\n` or `\r` line ends (raw output passes the upstream's on). A block
//! with a line that is not a comment is an event: it gets `id: <stream>-<n>\n` before its
//! first line (`<stream>-done` for `data: [DONE]`), and the first event `retry: 1000\n` before
//! that. A block of comments only (`: keep-alive`) and blank lines between blocks pass as they
//! are and get no number.
//!
//! | state         | input                          | next                                              |
//! |---------------|--------------------------------|---------------------------------------------------|
//! | between       | a blank line                   | between; passed on at once                        |
//! | between       | any other byte                 | in a block (its bytes held until it ends)         |
//! | in a block    | a line end after a line        | in a block (the line noted: comment or field)      |
//! | in a block    | a blank line                   | between; the block passed on, stamped if an event |
//! | any           | CR at the end of an input      | an LF first in the next input completes that line end |
//!
//! Producers hand over whole blocks (every encoder and the raw splitter do), so nothing is held
//! between calls in practice; a block split across calls is still stamped once, whole, when its
//! end arrives. A block that never ends is never passed on, as the raw splitter does. A block
//! whose last line end is a CRLF cut between calls ends at the CR, as the raw splitter says: the
//! LF is passed on after it but is not part of the event ([`Stamped`]) the replay keeps, which
//! means the same to any SSE parser.
//!
//! An event's `id:` line is a function of the stream and the event's number ([`write_id`]): a
//! replay buffer keeps the blocks as they came and writes the line again, which halves what it
//! holds for an LLM's short token events.

use super::id::StreamId;

/// `retry:` before the first event: a browser reconnects after 1 s instead of its default 3 s.
pub const RETRY: &[u8] = b"retry: 1000\n";
/// The completion marker as the daemon writes it, without its line ends.
const DONE_LINE: &[u8] = b"data: [DONE]";

/// Stamps one stream's events. Numbers events from 1.
pub struct Stamper {
    /// `id: <stream>-`.
    prefix: [u8; 37],
    /// The number the next event gets.
    next: u64,
    /// The open block's bytes from earlier inputs.
    held: Vec<u8>,
    /// Bytes of the current line so far, without its line end.
    line_len: usize,
    /// The current line starts with `:`.
    line_is_comment: bool,
    /// The open block has a line (the next blank line ends it).
    open: bool,
    /// The open block has a line that is not a comment: it is an event.
    has_field: bool,
    /// The last input ended with CR: an LF first in the next one belongs to that line end.
    after_cr: bool,
}

/// One event as stamped, for the replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped<'a> {
    /// Its number (the completion marker's too: the one after the last event's).
    pub number: u64,
    /// It is the completion marker (`id: <stream>-done`).
    pub done: bool,
    /// The block as it came, without the lines added to it: its `id:` line is the same
    /// whenever it is written ([`write_id`]), so a replay buffer need not keep it.
    pub block: &'a [u8],
}

/// `id: <stream>-`, the start of every `id:` line of a stream.
pub fn id_prefix(stream: StreamId) -> [u8; 37] {
    let mut prefix = [0u8; 37];
    prefix[..4].copy_from_slice(b"id: ");
    prefix[4..36].copy_from_slice(&stream.hex());
    prefix[36] = b'-';
    prefix
}

/// Appends the `id:` line of event `number` (of the completion marker when `done`).
pub fn write_id(out: &mut Vec<u8>, prefix: &[u8; 37], number: u64, done: bool) {
    out.extend_from_slice(prefix);
    if done {
        out.extend_from_slice(b"done");
    } else {
        push_decimal(out, number);
    }
    out.push(b'\n');
}

impl Stamper {
    pub fn new(stream: StreamId) -> Stamper {
        Stamper {
            prefix: id_prefix(stream),
            next: 1,
            held: Vec::new(),
            line_len: 0,
            line_is_comment: false,
            open: false,
            has_field: false,
            after_cr: false,
        }
    }

    /// Events stamped so far (the completion marker counts).
    pub fn stamped(&self) -> u64 {
        self.next - 1
    }

    /// Bytes of an unfinished block held between calls, for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.held.capacity()
    }

    /// Appends `input`, the stream's next bytes, to `out` with every completed event stamped;
    /// `each` sees every event stamped, in order.
    pub fn stamp(&mut self, input: &[u8], out: &mut Vec<u8>, mut each: impl FnMut(Stamped<'_>)) {
        let mut rest = input;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                // The rest of a CRLF: it goes where its CR went.
                if self.open {
                    self.held.push(b'\n');
                } else {
                    out.push(b'\n');
                }
                rest = &rest[1..];
            }
        }
        // `rest[from..]` is not passed on yet; `rest[pos..]` is not scanned yet.
        let mut from = 0;
        let mut pos = 0;
        while let Some(offset) = memchr::memchr2(b'\r', b'\n', &rest[pos..]) {
            let end = pos + offset;
            if self.line_len == 0 && offset > 0 {
                self.line_is_comment = rest[pos] == b':';
            }
            let line_len = self.line_len + offset;
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
                self.has_field |= !self.line_is_comment;
                continue;
            }
            let bytes = &rest[from..next];
            from = next;
            if !self.open {
                out.extend_from_slice(bytes);
                continue;
            }
            if self.held.is_empty() {
                self.emit(bytes, out, &mut each);
            } else {
                let mut block = std::mem::take(&mut self.held);
                block.extend_from_slice(bytes);
                self.emit(&block, out, &mut each);
            }
        }
        let tail = &rest[pos..];
        if self.line_len == 0 && !tail.is_empty() {
            self.line_is_comment = tail[0] == b':';
        }
        self.line_len += tail.len();
        self.held.extend_from_slice(&rest[from..]);
    }

    /// A block ended: passes it on, stamped if it is an event.
    fn emit(&mut self, block: &[u8], out: &mut Vec<u8>, each: &mut impl FnMut(Stamped<'_>)) {
        let is_event = self.has_field;
        self.open = false;
        self.has_field = false;
        if !is_event {
            out.extend_from_slice(block);
            return;
        }
        let number = self.next;
        self.next += 1;
        if number == 1 {
            out.extend_from_slice(RETRY);
        }
        let done = is_done(block);
        write_id(out, &self.prefix, number, done);
        out.extend_from_slice(block);
        each(Stamped {
            number,
            done,
            block,
        });
    }
}

/// The block is exactly the completion marker.
fn is_done(block: &[u8]) -> bool {
    let end = block
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |last| last + 1);
    &block[..end] == DONE_LINE
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splits::for_each_split;

    const ID: StreamId = StreamId::from_bytes([0xab; 16]);
    const HEX: &str = "abababababababababababababababab";

    /// Stamps `input` fed as `parts`; returns the output and every event's (number, done, bytes).
    fn stamp_parts(parts: &[&[u8]]) -> (String, Vec<(u64, bool, String)>) {
        let mut stamper = Stamper::new(ID);
        let mut out = Vec::new();
        let mut events = Vec::new();
        for part in parts {
            stamper.stamp(part, &mut out, |e| {
                events.push((
                    e.number,
                    e.done,
                    String::from_utf8(e.block.to_vec()).unwrap(),
                ))
            });
        }
        (String::from_utf8(out).unwrap(), events)
    }

    #[test]
    fn every_event_gets_an_id_the_first_a_retry_and_done_its_own() {
        let input = "data: {\"content\":\"a\"}\n\n: keep-alive\n\nevent: error\ndata: {}\n\ndata: [DONE]\n\n";
        let (out, events) = stamp_parts(&[input.as_bytes()]);
        let expected = format!(
            "retry: 1000\nid: {HEX}-1\ndata: {{\"content\":\"a\"}}\n\n: keep-alive\n\n\
             id: {HEX}-2\nevent: error\ndata: {{}}\n\nid: {HEX}-done\ndata: [DONE]\n\n"
        );
        assert_eq!(out, expected);
        assert_eq!(
            events,
            vec![
                (1, false, "data: {\"content\":\"a\"}\n\n".to_string()),
                (2, false, "event: error\ndata: {}\n\n".to_string()),
                (3, true, "data: [DONE]\n\n".to_string()),
            ]
        );
        let mut again = Vec::new();
        write_id(&mut again, &id_prefix(ID), 2, false);
        write_id(&mut again, &id_prefix(ID), 3, true);
        assert_eq!(again, format!("id: {HEX}-2\nid: {HEX}-done\n").as_bytes());
    }

    #[test]
    fn numbers_count_on_across_calls_and_past_nine() {
        let mut stamper = Stamper::new(ID);
        let mut out = Vec::new();
        for _ in 0..12 {
            stamper.stamp(b"data: x\n\n", &mut out, |_| {});
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!("id: {HEX}-9\ndata: x\n\nid: {HEX}-10\n")));
        assert!(text.ends_with(&format!("id: {HEX}-12\ndata: x\n\n")));
        assert_eq!(text.matches("retry:").count(), 1);
        assert_eq!(stamper.stamped(), 12);
        assert_eq!(stamper.held_bytes(), 0);
    }

    #[test]
    fn comments_and_blank_lines_are_not_events() {
        let (out, events) = stamp_parts(&[b"\n: heartbeat\r\n\r\n\r\n: a\n: b\n\n"]);
        assert_eq!(out, "\n: heartbeat\r\n\r\n\r\n: a\n: b\n\n");
        assert!(events.is_empty());
    }

    #[test]
    fn a_comment_before_a_field_makes_an_event() {
        let (out, _) = stamp_parts(&[b": note\ndata: x\n\n"]);
        assert_eq!(
            out,
            format!("retry: 1000\nid: {HEX}-1\n: note\ndata: x\n\n")
        );
    }

    #[test]
    fn raw_line_ends_pass_as_they_came() {
        let input = b"event: metadata\r\ndata: {}\r\n\r\nevent: values\rdata: 1\r\r";
        let (out, events) = stamp_parts(&[input]);
        assert_eq!(
            out,
            format!(
                "retry: 1000\nid: {HEX}-1\nevent: metadata\r\ndata: {{}}\r\n\r\n\
                 id: {HEX}-2\nevent: values\rdata: 1\r\r"
            )
        );
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn only_the_exact_marker_is_done() {
        let (out, events) = stamp_parts(&[b"data: [DONE]\r\n\r\ndata: [DONE] \n\ndata:[DONE]\n\n"]);
        assert!(out.contains(&format!("id: {HEX}-done\ndata: [DONE]\r\n\r\n")));
        assert_eq!(
            events.iter().map(|e| e.1).collect::<Vec<_>>(),
            [true, false, false]
        );
    }

    /// Whatever the split, the output is the same: a block is stamped once, when it ends. (A
    /// CRLF cut between its CR and LF ends the block at the CR: the LF follows it on the wire
    /// but is not part of the event the replay keeps, which means the same to an SSE parser.)
    #[test]
    fn a_stream_split_anywhere_is_stamped_alike() {
        let input: &[u8] =
            b"data: a\n\n: keep-alive\n\nevent: x\r\ndata: b\r\n\r\n\ndata: c\r\rdata: [DONE]\n\n";
        let (whole, whole_events) = stamp_parts(&[input]);
        assert_eq!(whole_events.len(), 4);
        let cut_crlf = input.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 3;
        for_each_split(input, |parts| {
            let (out, events) = stamp_parts(parts);
            assert_eq!(out, whole, "{parts:?}");
            let cut_in_crlf =
                parts.len() == 2 && parts[0].len() == cut_crlf || parts.len() == input.len();
            for (got, want) in events.iter().zip(&whole_events) {
                if cut_in_crlf && want.0 == 2 {
                    assert_eq!(format!("{}\n", got.2), want.2);
                } else {
                    assert_eq!(got, want, "{parts:?}");
                }
            }
            assert_eq!(events.len(), whole_events.len());
        });
    }

    #[test]
    fn an_unfinished_block_is_held_not_passed_on() {
        let mut stamper = Stamper::new(ID);
        let mut out = Vec::new();
        stamper.stamp(b"data: a\n\ndata: par", &mut out, |_| {});
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            format!("retry: 1000\nid: {HEX}-1\ndata: a\n\n")
        );
        assert!(stamper.held_bytes() >= 9);
        stamper.stamp(b"tial\n\n", &mut out, |_| {});
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with(&format!("id: {HEX}-2\ndata: partial\n\n")));
    }
}
