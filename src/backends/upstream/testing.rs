//! Test support for upstream backends: a whole upstream response played through the status
//! check, the relay and a backend's translator the way the reactor does, and what the client
//! should see.

use super::{status_outcome, Ending, Output, Relay, Step};
use crate::http::{parse_head, HeadParse, SSE_HEAD};
use crate::sse::{done, error_event, EventSink, DEFAULT_MAX_LINE};

#[derive(Debug)]
pub struct Exchange {
    /// Every byte the client was sent.
    pub client: String,
    /// `None` when the upstream status was rejected.
    pub ending: Option<Ending>,
    pub skipped: usize,
    pub reusable: bool,
}

/// Plays the reactor: head, status, relay, ending; `eof` when the upstream closes after the
/// last piece. `translator` makes the translator for the response (or `Output::Raw`), as the
/// backend would.
pub fn exchange<T: Into<Output>>(
    pieces: &[&[u8]],
    eof: bool,
    translator: impl Fn() -> T,
) -> Exchange {
    let mut head_buffer = Vec::new();
    let mut relay: Option<Relay> = None;
    let mut client = Vec::new();
    let mut scratch = Vec::new();
    let mut skipped = 0;
    let mut ending = None;
    for piece in pieces {
        let after_head;
        let input: &[u8] = match relay {
            Some(_) => piece,
            None => {
                head_buffer.extend_from_slice(piece);
                let HeadParse::Complete(head, len) = parse_head(&head_buffer).unwrap() else {
                    continue;
                };
                let outcome = status_outcome(&head);
                if let Some(response) = outcome.response() {
                    return Exchange {
                        client: String::from_utf8(response).unwrap(),
                        ending: None,
                        skipped,
                        reusable: false,
                    };
                }
                client.extend_from_slice(SSE_HEAD);
                relay = Some(Relay::new(&head, translator(), DEFAULT_MAX_LINE));
                after_head = head_buffer[len..].to_vec();
                &after_head
            }
        };
        let Some(relay) = relay.as_mut() else {
            continue;
        };
        let fed = relay.feed(input, &mut scratch, &mut EventSink::new(&mut client));
        skipped += fed.skipped.len();
        if let Step::Ended(end) = fed.step {
            ending = Some(end);
            break;
        }
    }
    let relay = relay
        .as_mut()
        .expect("the test response has a complete head");
    let ending = match ending {
        Some(ending) => ending,
        None if eof => relay.on_eof(),
        None => panic!("the response neither ended nor was closed"),
    };
    match &ending {
        Ending::Complete => done(&mut client),
        Ending::Incomplete | Ending::CompleteRaw => {}
        Ending::Failed(failure) => error_event(&mut client, &failure.message),
    }
    Exchange {
        client: String::from_utf8(client).unwrap(),
        ending: Some(ending),
        skipped,
        reusable: relay.is_reusable(),
    }
}

/// What the client should get: the success head, these contents, and `[DONE]` if `complete`.
pub fn expected(contents: &[&str], complete: bool) -> String {
    let mut out = SSE_HEAD.to_vec();
    let mut sink = EventSink::new(&mut out);
    for text in contents {
        sink.content(text);
    }
    if complete {
        done(&mut out);
    }
    String::from_utf8(out).unwrap()
}

/// What the client should get when the stream fails after `contents`: the success head, these
/// contents and `event: error` with `message`, without `[DONE]`.
pub fn expected_failure(contents: &[&str], message: &str) -> String {
    let mut out = expected(contents, false).into_bytes();
    error_event(&mut out, message);
    String::from_utf8(out).unwrap()
}

/// The exchange ended on an in-stream upstream error after `contents`: the client got the
/// plain message (not the upstream's words), the log detail holds `detail`, and the upstream
/// connection is not reused.
pub fn assert_upstream_error(exchange: &Exchange, contents: &[&str], detail: &str) {
    let message = "the upstream API reported an error during the answer";
    assert_eq!(exchange.client, expected_failure(contents, message));
    assert!(!exchange.client.contains(detail));
    let Some(Ending::Failed(failure)) = &exchange.ending else {
        panic!("expected a failure, got {:?}", exchange.ending);
    };
    assert!(failure.detail.contains(detail), "{}", failure.detail);
    assert_eq!(failure.outcome, crate::end::Outcome::UpstreamError);
    assert!(!exchange.reusable);
}

/// A built request's line, header lines and body, checking that `Content-Length` frames it.
pub fn request_parts(request: &[u8]) -> (String, Vec<String>, String) {
    let text = std::str::from_utf8(request).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n").map(str::to_string);
    let request_line = lines.next().unwrap();
    let headers: Vec<String> = lines.collect();
    let length = format!("Content-Length: {}", body.len());
    assert!(headers.contains(&length), "{headers:?}");
    (request_line, headers, body.to_string())
}

/// The texts of the client's content events.
pub fn client_contents(client: &str) -> Vec<String> {
    let body = &client[SSE_HEAD.len()..];
    body.split_terminator("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: {"))
        .map(|json| {
            let value: serde_json::Value = serde_json::from_str(&format!("{{{json}")).unwrap();
            value["content"].as_str().unwrap().to_string()
        })
        .collect()
}
