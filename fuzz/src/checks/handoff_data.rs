//! `handoff::parse_handoff_data` on what Apache forwards from PHP's `X-Handoff-Data`.
//!
//! - NUL bytes around the payload change nothing (the module may send a trailing `\0`).
//! - A payload that is a JSON object gives the same result re-encoded (whitespace dropped,
//!   strings re-escaped by serde_json, member order, duplicates and numbers kept: the handoff
//!   keeps all three; `langgraph_input`, kept as written, compared re-encoded too), and with
//!   an unknown key added (unknown keys are ignored).
//! - A rejection becomes a complete, measured `{"error":…}` response with its own status.

use serde_json::Value;
use streaming_daemon::handoff::{parse_handoff_data, HandoffData, HandoffError, RawJson};
use streaming_daemon::http::error_response;

use super::wire::{complete_response, error_json};

/// A key no handoff reads.
const UNKNOWN_KEY: &str = "fuzz_unknown_key";

pub fn check(data: &[u8]) {
    let result = parse_handoff_data(data);

    let mut padded = vec![0];
    padded.extend_from_slice(data);
    padded.extend_from_slice(&[0, 0]);
    assert_eq!(parse_handoff_data(&padded), result, "NUL padding matters");

    if let Ok(Value::Object(_)) = serde_json::from_slice::<Value>(data) {
        let reencoded = reencode(data);
        assert_eq!(
            as_written_again(parse_handoff_data(&reencoded)),
            as_written_again(result.clone()),
            "re-encoded: {}",
            String::from_utf8_lossy(&reencoded)
        );
        let mut extended = format!("{{\"{UNKNOWN_KEY}\":true").into_bytes();
        if reencoded != b"{}" {
            extended.push(b',');
        }
        extended.extend_from_slice(&reencoded[1..]);
        assert_eq!(
            as_written_again(parse_handoff_data(&extended)),
            as_written_again(result.clone()),
            "an unknown key matters"
        );
    }

    if let Err(error) = result {
        check_rejection(&error);
    }
}

/// `langgraph_input` is forwarded as the client wrote it (escapes included), so re-encoding the
/// handoff changes its text; the values must still be the same ones, written the same way.
fn as_written_again(
    result: Result<HandoffData, HandoffError>,
) -> Result<HandoffData, HandoffError> {
    result.map(|mut data| {
        for (_, value) in &mut data.langgraph_input {
            let text = reencode(value.get().as_bytes());
            *value = RawJson::parse(&String::from_utf8_lossy(&text)).expect("still one value");
        }
        data
    })
}

/// `data`, JSON text serde_json accepted, written again without insignificant whitespace and
/// with every string decoded and re-encoded by serde_json; everything else byte for byte.
/// (serde_json's own `Value` would sort members and drop repeated ones.)
fn reencode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let mut end = i + 1;
                while data[end] != b'"' {
                    end += if data[end] == b'\\' { 2 } else { 1 };
                }
                let text: String =
                    serde_json::from_slice(&data[i..=end]).expect("a string serde_json accepted");
                out.extend_from_slice(serde_json::to_string(&text).expect("a string").as_bytes());
                i = end + 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// The client's answer to a rejected handoff: its status, the message as the JSON body.
fn check_rejection(error: &HandoffError) {
    assert!(!error.to_string().is_empty());
    let _ = error.rejection();
    let status = error.client_status();
    let message = error.client_message();
    let bytes = error_response(status, &message, None);
    let response = complete_response(&bytes, false);
    assert_eq!(response.status, status.code());
    assert_eq!(error_json(response.body), message);
}
