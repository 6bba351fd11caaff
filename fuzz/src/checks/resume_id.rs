//! `resume::parse_last_event_id` on a resume handoff's `resume` value (the browser's
//! `Last-Event-ID`, which a client controls entirely).
//!
//! - Strict: what it accepts is exactly what the daemon writes as an id, so writing the parsed
//!   id again gives the input back (`<32 lowercase hex>-<n>` with `n` from 1 and no leading
//!   zero, or `<32 lowercase hex>-done`).
//! - Anything it refuses is not such an id (checked by an independent reading of the format).

use streaming_daemon::resume::{parse_last_event_id, LastEvent};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_last_event_id(text) {
        Some(LastEvent::Event(stream, n)) => {
            assert!(n >= 1);
            assert_eq!(format!("{stream}-{n}"), text);
        }
        Some(LastEvent::Done(stream)) => assert_eq!(format!("{stream}-done"), text),
        None => assert!(!well_formed(text), "{text:?} refused"),
    }
}

/// The id format read without the daemon's code.
fn well_formed(text: &str) -> bool {
    let Some((stream, position)) = text.split_once('-') else {
        return false;
    };
    let hex = stream.len() == 32
        && stream
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let number = !position.starts_with('0')
        && !position.is_empty()
        && position.bytes().all(|b| b.is_ascii_digit())
        && position.parse::<u64>().is_ok();
    hex && (position == "done" || number)
}
