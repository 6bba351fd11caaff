//! A request body that is streamed, never held whole (SPEC §4.5 "Never blocking, bounded
//! memory").
//!
//! A [`BodyPlan`] is built like a byte buffer: JSON text is pushed as it is, and the target
//! message's content with [`BodyPlan::push_content`], which records each binary file as a
//! segment "base64 of this file, `n` bytes from offset 0" instead of its bytes. The length is
//! known at once (`4 × ⌈n/3⌉` per file), so `Content-Length` can be written first. A [`Body`]
//! then produces the bytes in slices of at most [`SLICE`]: the caller gives it room, it copies
//! JSON text or reads the file with `pread` and encodes it on the way.

use std::io;
use std::os::fd::AsFd;

use super::base64::{encode_into, encoded_len};
use super::content::{Content, Data, Part, Value};
use super::error::{AttachmentError, Refusal};
use super::files::Files;
use crate::sse::push_json_string;
use crate::sys::at;

/// Most bytes one [`Body::fill`] produces: one loop turn's worth for one connection.
pub const SLICE: usize = 64 * 1024;
/// File bytes read per slice: exactly what encodes to `SLICE` bytes (a multiple of 3).
const READ_SLICE: usize = SLICE / 4 * 3;

#[derive(Debug)]
enum Segment {
    /// `literal[start..end]`.
    Literal { start: usize, end: usize },
    /// Base64 of `files[index]`, which must hold exactly `len` bytes.
    Base64 {
        files: Files,
        index: usize,
        len: u64,
    },
}

/// A body being put together; see the module documentation.
#[derive(Debug, Default)]
pub struct BodyPlan {
    literal: Vec<u8>,
    segments: Vec<Segment>,
    len: u64,
}

impl BodyPlan {
    pub fn new() -> BodyPlan {
        BodyPlan::default()
    }

    /// Appends bytes as they are (JSON text the caller wrote).
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.literal.len();
        self.literal.extend_from_slice(bytes);
        let end = self.literal.len();
        self.len += bytes.len() as u64;
        match self.segments.last_mut() {
            Some(Segment::Literal { end: last, .. }) if *last == start => *last = end,
            _ => self.segments.push(Segment::Literal { start, end }),
        }
    }

    /// Appends `text` as a quoted, escaped JSON string.
    pub fn push_json_string(&mut self, text: &str) {
        let mut quoted = Vec::with_capacity(text.len() + 2);
        push_json_string(&mut quoted, text);
        self.push(&quoted);
    }

    /// Appends a JSON string whose text is `prefix` followed by the base64 of `data`.
    fn push_data_string(&mut self, prefix: &str, data: &Data) {
        let mut quoted = Vec::with_capacity(prefix.len() + 2);
        push_json_string(&mut quoted, prefix);
        // Leave the string open: the base64 goes inside it.
        quoted.pop();
        self.push(&quoted);
        match data {
            // Checked standard base64: nothing in it needs escaping.
            Data::Inline(base64) => self.push(base64.as_bytes()),
            Data::File { files, index, len } => {
                self.len += encoded_len(*len);
                self.segments.push(Segment::Base64 {
                    files: files.clone(),
                    index: *index,
                    len: *len,
                });
            }
        }
        self.push(b"\"");
    }

    /// Appends the target message's content: a JSON string or an array of parts.
    pub fn push_content(&mut self, content: &Content) {
        match &content.value {
            Value::Text(text) => self.push_json_string(text),
            Value::Parts(parts) => {
                self.push(b"[");
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        self.push(b",");
                    }
                    self.push_part(part);
                }
                self.push(b"]");
            }
        }
    }

    fn push_part(&mut self, part: &Part) {
        match part {
            Part::Text(text) => {
                self.push(br#"{"type":"text","text":"#);
                self.push_json_string(text);
                self.push(b"}");
            }
            Part::Image { mime, data } => {
                self.push(br#"{"type":"image_url","image_url":{"url":"#);
                self.push_data_string(&format!("data:{mime};base64,"), data);
                self.push(b"}}");
            }
            Part::File { filename, data } => {
                self.push(br#"{"type":"file","file":{"filename":"#);
                self.push_json_string(filename);
                self.push(br#","file_data":"#);
                self.push_data_string("data:application/pdf;base64,", data);
                self.push(b"}}");
            }
            Part::Document { mime, data } => {
                self.push(br#"{"type":"document","source":{"type":"base64","media_type":"#);
                self.push_json_string(mime);
                self.push(br#","data":"#);
                self.push_data_string("", data);
                self.push(b"}}");
            }
        }
    }

    /// The body's length so far: its `Content-Length` once finished.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, when nothing is streamed from a file (a body without binary attachments,
    /// which is most): sent with the head in one piece.
    pub fn into_bytes(self) -> Result<Vec<u8>, BodyPlan> {
        if self
            .segments
            .iter()
            .all(|segment| matches!(segment, Segment::Literal { .. }))
        {
            Ok(self.literal)
        } else {
            Err(self)
        }
    }

    pub fn finish(mut self) -> Body {
        self.literal.shrink_to_fit();
        self.segments.shrink_to_fit();
        let largest_file = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Base64 { len, .. } => *len,
                Segment::Literal { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        Body {
            scratch_size: largest_file.min(READ_SLICE as u64) as usize,
            literal: self.literal,
            segments: self.segments,
            len: self.len,
            segment: 0,
            done: 0,
            written: 0,
            carry: [0; 4],
            carry_at: 4,
            scratch: Vec::new(),
        }
    }
}

/// Lets `serde_json::to_writer` write JSON text straight into the plan.
impl io::Write for BodyPlan {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body being written; see the module documentation. It can be [`rewound`](Body::rewind)
/// and written again (a request retried on a fresh connection): the files are read again.
#[derive(Debug)]
pub struct Body {
    literal: Vec<u8>,
    segments: Vec<Segment>,
    len: u64,
    /// The segment being written.
    segment: usize,
    /// How far into it: literal bytes copied, or file bytes read.
    done: u64,
    /// Bytes produced so far.
    written: u64,
    /// One encoded group that did not fit, and how much of it was produced.
    carry: [u8; 4],
    carry_at: usize,
    /// File bytes read for one slice; allocated while a file segment is being written.
    scratch: Vec<u8>,
    /// Its size: a slice's worth, or less when every file is smaller.
    scratch_size: usize,
}

impl Body {
    /// A body of plain bytes.
    pub fn from_bytes(bytes: &[u8]) -> Body {
        let mut plan = BodyPlan::new();
        plan.push(bytes);
        plan.finish()
    }

    /// `Content-Length`.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes still to produce.
    pub fn remaining(&self) -> u64 {
        self.len - self.written
    }

    pub fn is_done(&self) -> bool {
        self.written == self.len
    }

    /// Starts over from the first byte.
    pub fn rewind(&mut self) {
        self.segment = 0;
        self.done = 0;
        self.written = 0;
        self.carry_at = self.carry.len();
    }

    /// Bytes held: the JSON text (inline text attachments included) and the read buffer.
    pub fn held_bytes(&self) -> usize {
        self.literal.capacity()
            + self.scratch.capacity()
            + self.segments.capacity() * std::mem::size_of::<Segment>()
    }

    /// Appends the next at most `min(room, SLICE)` bytes to `out`; returns how many (0 once
    /// done). On error the body is broken: the request must be abandoned (500, outcome
    /// `other`).
    pub fn fill_vec(&mut self, out: &mut Vec<u8>, room: usize) -> Result<usize, Refusal> {
        let start = out.len();
        out.resize(start + room.min(SLICE), 0);
        let result = self.fill(&mut out[start..]);
        out.truncate(start + *result.as_ref().unwrap_or(&0));
        result
    }

    /// Writes the next at most `min(out.len(), SLICE)` bytes into `out`; returns how many (0
    /// once done). Errors as for [`Body::fill_vec`].
    pub fn fill(&mut self, out: &mut [u8]) -> Result<usize, Refusal> {
        let limit = out.len().min(SLICE);
        let mut n = 0;
        while n < limit {
            if self.carry_at < self.carry.len() {
                let take = (self.carry.len() - self.carry_at).min(limit - n);
                out[n..n + take].copy_from_slice(&self.carry[self.carry_at..self.carry_at + take]);
                self.carry_at += take;
                n += take;
                continue;
            }
            let Some(segment) = self.segments.get(self.segment) else {
                break;
            };
            match segment {
                Segment::Literal { start, end } => {
                    let from = start + self.done as usize;
                    let take = (end - from).min(limit - n);
                    out[n..n + take].copy_from_slice(&self.literal[from..from + take]);
                    n += take;
                    self.done += take as u64;
                    if from + take == *end {
                        self.next_segment();
                    }
                }
                Segment::Base64 { files, index, len } => {
                    let (files, index, len) = (files.clone(), *index, *len);
                    let remaining = len - self.done;
                    if remaining == 0 {
                        check_end(&files, index, len)?;
                        self.next_segment();
                        continue;
                    }
                    let room = limit - n;
                    if room < 4 {
                        // Not even one group fits: encode one into the carry.
                        let take = remaining.min(3) as usize;
                        let mut group = [0u8; 3];
                        read_exact(&files, index, &mut group[..take], self.done)?;
                        encode_into(&group[..take], &mut self.carry);
                        self.carry_at = 0;
                        self.done += take as u64;
                        continue;
                    }
                    let take = remaining.min((room / 4 * 3) as u64).min(READ_SLICE as u64) as usize;
                    if self.scratch.len() < take {
                        self.scratch = vec![0; self.scratch_size.max(take)];
                    }
                    read_exact(&files, index, &mut self.scratch[..take], self.done)?;
                    n += encode_into(&self.scratch[..take], &mut out[n..]);
                    self.done += take as u64;
                }
            }
        }
        self.written += n as u64;
        if self.is_done() {
            // Nothing more to read: give the buffer back.
            self.scratch = Vec::new();
        }
        Ok(n)
    }

    fn next_segment(&mut self) {
        self.segment += 1;
        self.done = 0;
    }
}

/// `Changed` when the file ended early or grew, `ReadFailed` when reading it failed.
fn changed(files: &Files, index: usize, os_error: Option<io::Error>) -> Refusal {
    let label = files.get(index).label.clone();
    let error = match os_error {
        None => AttachmentError::Changed(label),
        Some(_) => AttachmentError::ReadFailed(label),
    };
    let mut refusal = Refusal::new(error);
    refusal.os_error = os_error;
    refusal
}

/// Reads exactly `buf.len()` bytes at `offset`; a file that ends early has changed.
fn read_exact(files: &Files, index: usize, buf: &mut [u8], offset: u64) -> Result<(), Refusal> {
    let file = files.get(index);
    let mut filled = 0;
    while filled < buf.len() {
        match at::pread(file.fd.as_fd(), &mut buf[filled..], offset + filled as u64) {
            Ok(0) => return Err(changed(files, index, None)),
            Ok(n) => filled += n,
            Err(error) => return Err(changed(files, index, Some(error))),
        }
    }
    Ok(())
}

/// After `len` bytes the file must end: one more byte means it grew.
fn check_end(files: &Files, index: usize, len: u64) -> Result<(), Refusal> {
    let file = files.get(index);
    let mut probe = [0u8; 1];
    match at::pread(file.fd.as_fd(), &mut probe, len) {
        Ok(0) => Ok(()),
        Ok(_) => Err(changed(files, index, None)),
        Err(error) => Err(changed(files, index, Some(error))),
    }
}
