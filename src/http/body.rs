//! Response body framing: turns the bytes after a head into the payload, and says when the body
//! has ended, which is what decides whether the connection can serve another request.
//!
//! | state      | input                                   | next                            |
//! |------------|-----------------------------------------|---------------------------------|
//! | Length(n)  | up to n bytes, copied out               | Length(n - taken), Done at 0    |
//! | UntilClose | any bytes, copied out                   | UntilClose (EOF is the end)     |
//! | Size       | hex digits, spaces, `;ext`, then CR     | Size, SizeLf                    |
//! | SizeLf     | LF after a size of 0                    | Trailers                        |
//! | SizeLf     | LF after a size of n > 0                | Data(n)                         |
//! | Data(n)    | up to n bytes, copied out as they come  | Data(n - taken), DataCr at 0    |
//! | DataCr     | CR                                      | DataLf                          |
//! | DataLf     | LF                                      | Size                            |
//! | Trailers   | a trailer line (ignored), CRLF          | Trailers                        |
//! | Trailers   | CRLF on an empty line                   | Done                            |
//! | Done       | nothing is consumed                     | Done                            |
//! | any        | a byte the grammar does not allow       | error                           |
//!
//! Chunk data is copied out as soon as it arrives, never held until its chunk is whole: a
//! server that sends a whole answer as one chunk still streams. Nothing is buffered here, so a
//! body costs a few words of state whatever it carries. Line ends inside the framing must be CRLF
//! (a bare LF is an error): we parse responses to our own requests, and strictness here is what
//! keeps a pooled connection in step with the server.

use std::fmt;

use super::response::Head;

/// A chunk-size line, extensions included, longer than this is an error.
pub const MAX_SIZE_LINE: usize = 1024;
/// All trailer lines together, line ends included, longer than this are an error.
pub const MAX_TRAILERS: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many payload bytes are still to come.
    Length(u64),
    UntilClose,
    Size(SizeLine),
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// `at_line_start` tells an empty line (the end) from the next trailer line.
    Trailers {
        at_line_start: bool,
        seen_cr: bool,
        taken: usize,
    },
    Done,
}

/// Progress through `chunk-size [ BWS ; ext ] CRLF`, without buffering the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SizeLine {
    size: u64,
    phase: SizePhase,
    /// Bytes of this line so far, for [`MAX_SIZE_LINE`].
    taken: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizePhase {
    /// No digit yet.
    Start,
    Digits,
    /// Whitespace after the digits: only more of it, `;` or CR may follow.
    Space,
    /// After `;`: extensions, ignored.
    Extension,
}

const FRESH_SIZE: SizeLine = SizeLine {
    size: 0,
    phase: SizePhase::Start,
    taken: 0,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A chunk-size line with no hex digits, or a byte that has no place in it.
    BadChunkSize,
    /// A chunk size that does not fit in 64 bits.
    ChunkSizeOverflow,
    /// A chunk-size line over [`MAX_SIZE_LINE`] bytes.
    ChunkSizeLineTooLong,
    /// Chunk data not followed by CRLF.
    MissingCrlf,
    /// A malformed line end in the trailers.
    BadTrailers,
    /// Trailers over [`MAX_TRAILERS`] bytes.
    TrailersTooLarge,
    /// The connection ended before the body did.
    Cut,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::BadChunkSize => write!(f, "the upstream sent an invalid chunk size"),
            BodyError::ChunkSizeOverflow => {
                write!(f, "the upstream sent a chunk size too large to be real")
            }
            BodyError::ChunkSizeLineTooLong => write!(
                f,
                "the upstream sent a chunk-size line over {MAX_SIZE_LINE} bytes"
            ),
            BodyError::MissingCrlf => {
                write!(f, "the upstream sent chunk data not followed by CRLF")
            }
            BodyError::BadTrailers => write!(f, "the upstream sent malformed trailers"),
            BodyError::TrailersTooLarge => write!(
                f,
                "the upstream sent trailers over {} KiB",
                MAX_TRAILERS / 1024
            ),
            BodyError::Cut => write!(
                f,
                "the upstream connection closed before the response body was complete"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

impl Body {
    /// The framing `head` announces. Statuses that never carry a body (`204`, `304`) have an
    /// empty one whatever the headers say.
    pub fn new(head: &Head) -> Body {
        let state = if head.status == 204 || head.status == 304 {
            State::Done
        } else if head.chunked {
            State::Size(FRESH_SIZE)
        } else {
            match head.content_length {
                Some(0) => State::Done,
                Some(n) => State::Length(n),
                None => State::UntilClose,
            }
        };
        Body { state }
    }

    /// Decodes what it can of `input`, appending payload bytes to `out`, and returns how many
    /// bytes of `input` it used. Fewer than all of them only once the body is complete: the rest
    /// is not part of this response (and means the connection must not be reused).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, BodyError> {
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            self.state = match self.state {
                State::Done => break,
                State::UntilClose => {
                    out.extend_from_slice(rest);
                    at = input.len();
                    State::UntilClose
                }
                State::Length(left) => match copy_payload(left, rest, out, &mut at) {
                    0 => State::Done,
                    left => State::Length(left),
                },
                State::Data(left) => match copy_payload(left, rest, out, &mut at) {
                    0 => State::DataCr,
                    left => State::Data(left),
                },
                state => {
                    at += 1;
                    framing_byte(state, rest[0])?
                }
            };
        }
        Ok(at)
    }

    /// The body has ended where its framing says: no more bytes belong to it.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// The connection reached EOF. `Ok` when that is a clean end: the body was already complete,
    /// or it is delimited by the close. `Err(Cut)` when bytes the framing promised are missing.
    pub fn on_eof(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::Done | State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(BodyError::Cut),
        }
    }
}

/// Copies up to `left` payload bytes from `rest` to `out`, advancing `at` past them; returns
/// how many are still wanted.
fn copy_payload(left: u64, rest: &[u8], out: &mut Vec<u8>, at: &mut usize) -> u64 {
    let take = usize::try_from(left).map_or(rest.len(), |left| left.min(rest.len()));
    out.extend_from_slice(&rest[..take]);
    *at += take;
    left - take as u64
}

/// One byte of chunk framing: every edge of the table above except the payload copies.
fn framing_byte(state: State, byte: u8) -> Result<State, BodyError> {
    Ok(match state {
        State::Size(mut line) => {
            line.taken += 1;
            if line.taken > MAX_SIZE_LINE {
                return Err(BodyError::ChunkSizeLineTooLong);
            }
            line.phase = match (line.phase, byte) {
                (SizePhase::Start, b'\r') => return Err(BodyError::BadChunkSize),
                (_, b'\r') => return Ok(State::SizeLf { size: line.size }),
                (SizePhase::Start | SizePhase::Digits, _) if byte.is_ascii_hexdigit() => {
                    line.size = line
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(hex_value(byte)))
                        .ok_or(BodyError::ChunkSizeOverflow)?;
                    SizePhase::Digits
                }
                (SizePhase::Digits | SizePhase::Space, b' ' | b'\t') => SizePhase::Space,
                (SizePhase::Digits | SizePhase::Space, b';') => SizePhase::Extension,
                // Extensions are ignored, but they still must not hold control bytes.
                (SizePhase::Extension, _) if byte == b'\t' || (0x20..0x7f).contains(&byte) => {
                    SizePhase::Extension
                }
                _ => return Err(BodyError::BadChunkSize),
            };
            State::Size(line)
        }
        State::SizeLf { size } => match (byte, size) {
            (b'\n', 0) => State::Trailers {
                at_line_start: true,
                seen_cr: false,
                taken: 0,
            },
            (b'\n', size) => State::Data(size),
            _ => return Err(BodyError::BadChunkSize),
        },
        State::DataCr if byte == b'\r' => State::DataLf,
        State::DataLf if byte == b'\n' => State::Size(FRESH_SIZE),
        State::DataCr | State::DataLf => return Err(BodyError::MissingCrlf),
        State::Trailers {
            at_line_start,
            seen_cr,
            taken,
        } => {
            let taken = taken + 1;
            if taken > MAX_TRAILERS {
                return Err(BodyError::TrailersTooLarge);
            }
            match (seen_cr, byte) {
                (true, b'\n') if at_line_start => State::Done,
                (true, b'\n') => State::Trailers {
                    at_line_start: true,
                    seen_cr: false,
                    taken,
                },
                (true, _) | (false, b'\n') => return Err(BodyError::BadTrailers),
                (false, b'\r') => State::Trailers {
                    at_line_start,
                    seen_cr: true,
                    taken,
                },
                (false, _) => State::Trailers {
                    at_line_start: false,
                    seen_cr: false,
                    taken,
                },
            }
        }
        // Payload and end states never reach here: `feed` handles them.
        State::Length(_) | State::UntilClose | State::Data(_) | State::Done => state,
    })
}

/// The value of a byte already known to be a hex digit.
fn hex_value(byte: u8) -> u64 {
    char::from(byte).to_digit(16).map_or(0, u64::from)
}

#[cfg(test)]
mod tests;
