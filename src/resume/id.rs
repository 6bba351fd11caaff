//! Stream ids and the `Last-Event-ID` a browser sends back (SPEC §2.1).
//!
//! An event's id is `<stream>-<n>`: `<stream>` is 32 lowercase hex digits (128 random bits),
//! `<n>` counts the stream's events from 1, in decimal. The completion marker's id is
//! `<stream>-done`. Anything else a client sends back is malformed.

use std::fmt;

/// One resumable stream's id: 128 random bits. Guessing one is hopeless, and a guess would still
/// need the stream's `user_id` (checked after PHP authenticated the user).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId([u8; 16]);

/// Where a client's `Last-Event-ID` says it got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastEvent {
    /// It has every event up to `<n>` of the stream.
    Event(StreamId, u64),
    /// It has the completion marker: the whole answer.
    Done(StreamId),
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl StreamId {
    /// The id made of these random bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> StreamId {
        StreamId(bytes)
    }

    /// The 32 lowercase hex digits.
    pub fn hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        out
    }

    /// Reads exactly 32 lowercase hex digits.
    fn parse_hex(text: &[u8]) -> Option<StreamId> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            bytes[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Some(StreamId(bytes))
    }
}

fn digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({self})")
    }
}

/// Reads a `Last-Event-ID` as the daemon writes them, strictly: 32 lowercase hex digits, `-`,
/// then `done` or an event number from 1 without leading zeros. `None`: malformed.
pub fn parse_last_event_id(text: &str) -> Option<LastEvent> {
    let bytes = text.as_bytes();
    if bytes.len() < 34 || bytes[32] != b'-' {
        return None;
    }
    let stream = StreamId::parse_hex(&bytes[..32])?;
    let position = &bytes[33..];
    if position == b"done" {
        return Some(LastEvent::Done(stream));
    }
    if position[0] == b'0' || !position.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(position).ok()?.parse::<u64>().ok()?;
    Some(LastEvent::Event(stream, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: StreamId = StreamId([
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0xff, 0x10, 0x0f, 0xa5, 0x5a, 0x99,
        0x66,
    ]);
    const HEX_ID: &str = "0123456789abcdef00ff100fa55a9966";

    #[test]
    fn an_id_is_32_lowercase_hex_digits() {
        assert_eq!(ID.to_string(), HEX_ID);
        assert_eq!(&ID.hex(), HEX_ID.as_bytes());
        assert_eq!(StreamId::from_bytes([0; 16]).to_string(), "0".repeat(32));
    }

    #[test]
    fn event_and_done_ids_round_trip() {
        assert_eq!(
            parse_last_event_id(&format!("{HEX_ID}-1")),
            Some(LastEvent::Event(ID, 1))
        );
        assert_eq!(
            parse_last_event_id(&format!("{HEX_ID}-18446744073709551615")),
            Some(LastEvent::Event(ID, u64::MAX))
        );
        assert_eq!(
            parse_last_event_id(&format!("{HEX_ID}-done")),
            Some(LastEvent::Done(ID))
        );
    }

    #[test]
    fn anything_else_is_malformed() {
        let upper = HEX_ID.to_uppercase();
        let short = &HEX_ID[..31];
        for bad in [
            String::new(),
            "x".into(),
            HEX_ID.into(),
            format!("{HEX_ID}-"),
            format!("{HEX_ID}-0"),
            format!("{HEX_ID}-01"),
            format!("{HEX_ID}-+1"),
            format!("{HEX_ID}--1"),
            format!("{HEX_ID}-1 "),
            format!(" {HEX_ID}-1"),
            format!("{HEX_ID}-DONE"),
            format!("{HEX_ID}-done1"),
            format!("{HEX_ID}-18446744073709551616"),
            format!("{HEX_ID}_1"),
            format!("{upper}-1"),
            format!("{short}-1"),
            format!("{HEX_ID}0-1"),
            format!("{}g-1", &HEX_ID[..31]),
            format!("{}é-1", &HEX_ID[..30]),
        ] {
            assert_eq!(parse_last_event_id(&bad), None, "{bad:?}");
        }
    }
}
