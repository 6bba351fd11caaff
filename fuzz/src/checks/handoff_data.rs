//! `handoff::parse_handoff_data` on what Apache forwards from PHP's `X-Handoff-Data`.
//!
//! - NUL bytes around the payload change nothing (the module may send a trailing `\0`).
//! - A payload that is a JSON object gives the same result re-encoded by serde_json, and with
//!   an unknown key added (unknown keys are ignored).
//! - A rejection becomes a complete, measured `{"error":…}` response with its own status.

use serde_json::Value;
use streaming_daemon::handoff::{parse_handoff_data, HandoffError};
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

    if let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(data) {
        let reencoded = serde_json::to_vec(&object).expect("a parsed value serialises");
        assert_eq!(
            parse_handoff_data(&reencoded),
            result,
            "re-encoded: {}",
            String::from_utf8_lossy(&reencoded)
        );
        object.insert(UNKNOWN_KEY.to_string(), Value::Bool(true));
        let extended = serde_json::to_vec(&object).expect("a parsed value serialises");
        assert_eq!(
            parse_handoff_data(&extended),
            result,
            "an unknown key matters"
        );
    }

    if let Err(error) = result {
        check_rejection(&error);
    }
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
