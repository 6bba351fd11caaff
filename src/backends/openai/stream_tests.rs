//! Whole upstream responses, head and body, relayed the way the reactor will: our own fixtures in
//! the shapes real OpenAI-compatible servers send, fed whole, byte by byte and cut everywhere.

use super::*;
use crate::backends::upstream::testing::{
    self, assert_upstream_error, client_contents, expected, expected_failure, Exchange,
};
use crate::backends::upstream::Ending;
use crate::splits::{for_each_split, for_each_split_every};
use crate::sse::push_json_string;

/// Cuts for the inputs of many kilobytes; prime, so cuts fall everywhere in the framing.
const LONG_STEP: usize = 37;

const STREAM_HEAD: &str = "HTTP/1.1 200 OK\r\ndate: Mon, 06 Jan 2025 10:00:00 GMT\r\n\
    server: uvicorn\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\n\
    content-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n";

/// The data of one `chat.completion.chunk`, with `delta` and `finish_reason` as raw JSON.
fn chunk(delta: &str, finish_reason: &str) -> String {
    format!(
        "{{\"id\":\"chatcmpl-0a1b2c\",\"object\":\"chat.completion.chunk\",\"created\":1736157600,\
         \"model\":\"gpt-4o-mini\",\"system_fingerprint\":null,\"choices\":[{{\"index\":0,\
         \"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish_reason}}}],\"usage\":null}}"
    )
}

fn content(text: &str) -> String {
    let mut delta = b"{\"content\":".to_vec();
    push_json_string(&mut delta, text);
    delta.push(b'}');
    chunk(&String::from_utf8(delta).unwrap(), "null")
}

const ROLE: &str = r#"{"role":"assistant","content":""}"#;
const USAGE: &str = r#"{"id":"chatcmpl-0a1b2c","object":"chat.completion.chunk","created":1736157600,"model":"gpt-4o-mini","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}"#;

fn stop() -> String {
    chunk("{}", "\"stop\"")
}

/// A chunked `200` response carrying one `data:` event per chunk, ended by the last chunk.
fn response(events: &[String]) -> Vec<u8> {
    let mut out = STREAM_HEAD.as_bytes().to_vec();
    for data in events {
        let event = format!("data: {data}\n\n");
        out.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Plays the reactor with this backend's translator; see [`testing::exchange`].
fn exchange(pieces: &[&[u8]], eof: bool) -> Exchange {
    testing::exchange(pieces, eof, translator)
}

#[test]
fn normal_stream_with_role_usage_and_done() {
    let words = [
        "Hello! ", "You ", "said: ", "Say ", "hi ", "in ", "five ", "words",
    ];
    let mut events = vec![chunk(ROLE, "null")];
    events.extend(words.iter().map(|w| content(w)));
    events.extend([stop(), USAGE.to_string(), "[DONE]".to_string()]);
    let input = response(&events);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(exchange.client, expected(&words, true), "{pieces:?}");
        assert_eq!(exchange.ending, Some(Ending::Complete));
        assert_eq!(exchange.skipped, 0);
        assert!(exchange.reusable);
    });
}

#[test]
fn unicode_and_escapes_decode_to_the_same_text() {
    let escaped = chunk(
        r#"{"content":"\ud83d\ude00 caf\u00e9 \"q\" \\ tab\t nl\n"}"#,
        "null",
    );
    let raw = content("日本語 ünïcödé 😀");
    let input = response(&[escaped, raw, stop()]);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(
            client_contents(&exchange.client),
            ["😀 café \"q\" \\ tab\t nl\n", "日本語 ünïcödé 😀"]
        );
        assert!(exchange.client.ends_with("data: [DONE]\n\n"));
    });
}

#[test]
fn lone_surrogate_escapes_become_replacement_characters_not_lost_chunks() {
    // An emoji whose UTF-16 halves were escaped into two chunks, and a stray high surrogate
    // before an ordinary escape: serde_json refuses each of these chunks whole.
    let input = response(&[
        chunk(r#"{"content":"smile \ud83d"}"#, "null"),
        chunk(r#"{"content":"\ude00 ok"}"#, "null"),
        chunk(r#"{"content":"a\ud800\u0041"}"#, "null"),
        chunk(r#"{"content":"pair \ud83d\ude00"}"#, "\"stop\""),
    ]);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(
            exchange.client,
            expected(
                &["smile \u{FFFD}", "\u{FFFD} ok", "a\u{FFFD}A", "pair 😀"],
                true
            )
        );
        assert_eq!(exchange.skipped, 0);
    });
}

#[test]
fn three_chunks_of_four_kib() {
    let texts: Vec<String> = ["a", "b", "c"].iter().map(|c| c.repeat(4096)).collect();
    let mut events: Vec<String> = texts.iter().map(|t| content(t)).collect();
    events.push("[DONE]".into());
    let input = response(&events);
    let contents: Vec<&str> = texts.iter().map(String::as_str).collect();
    for_each_split_every(&input, LONG_STEP, |pieces| {
        assert_eq!(exchange(pieces, false).client, expected(&contents, true));
    });
}

#[test]
fn fifty_one_character_chunks() {
    let letters: Vec<String> = (0..50)
        .map(|i| char::from(b'a' + (i % 26) as u8).to_string())
        .collect();
    let mut events: Vec<String> = letters.iter().map(|l| content(l)).collect();
    events.extend([stop(), "[DONE]".to_string()]);
    let input = response(&events);
    let contents: Vec<&str> = letters.iter().map(String::as_str).collect();
    for_each_split_every(&input, LONG_STEP, |pieces| {
        assert_eq!(exchange(pieces, false).client, expected(&contents, true));
    });
}

#[test]
fn finish_reason_without_done_completes() {
    let last = chunk(r#"{"content":"end."}"#, "\"length\"");
    let input = response(&[content("The "), last]);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(exchange.client, expected(&["The ", "end."], true));
        assert_eq!(exchange.ending, Some(Ending::Complete));
    });
}

#[test]
fn clean_end_without_a_signal_is_incomplete_without_error() {
    let input = response(&[chunk(ROLE, "null"), content("Half an "), content("answer")]);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(exchange.client, expected(&["Half an ", "answer"], false));
        assert_eq!(exchange.ending, Some(Ending::Incomplete));
        assert!(exchange.reusable);
    });
}

#[test]
fn malformed_json_is_skipped_and_counted() {
    let input = response(&[
        content("one "),
        "{\"choices\":[{\"delta\":{\"content\":\"bro".to_string(),
        content("two"),
        "[DONE]".to_string(),
    ]);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(exchange.client, expected(&["one ", "two"], true));
        assert_eq!(exchange.skipped, 1);
    });
}

#[test]
fn in_stream_error_object_becomes_an_error_event() {
    let event = "data: {\"error\":{\"message\":\"upstream exploded\",\"type\":\"server_error\",\
        \"param\":null,\"code\":null}}\n\n";
    let input = format!(
        "HTTP/1.1 200 OK\r\nX-Powered-By: Express\r\nContent-Type: text/event-stream\r\n\
         Cache-Control: no-cache\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{event}\r\n",
        event.len()
    );
    let input = input.as_bytes();
    for_each_split(input, |pieces| {
        assert_upstream_error(&exchange(pieces, false), &[], "upstream exploded");
    });
}

#[test]
fn body_cut_mid_way_ends_with_an_error_event() {
    let mut input = response(&[content("partial"), stop()]);
    // Lose the last chunk, and half of the finish chunk: the upstream died.
    input.truncate(input.len() - 5 - 40);
    let exchange = exchange(&[&input], true);
    let message = "the upstream connection closed before the answer was complete";
    assert_eq!(exchange.client, expected_failure(&["partial"], message));
}

#[test]
fn done_then_cut_before_the_last_chunk_is_still_an_error() {
    let mut input = response(&[content("all"), "[DONE]".to_string()]);
    input.truncate(input.len() - 5);
    let exchange = exchange(&[&input], true);
    assert!(matches!(exchange.ending, Some(Ending::Failed(_))));
    assert!(!exchange.client.contains("[DONE]"));
}

#[test]
fn role_usage_and_tool_call_chunks_send_nothing() {
    let tool_call = chunk(
        r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}"#,
        "null",
    );
    let null_content = chunk(r#"{"content":null}"#, "null");
    let input = response(&[
        chunk(ROLE, "null"),
        tool_call,
        null_content,
        chunk("{}", "\"tool_calls\""),
        USAGE.to_string(),
        "[DONE]".to_string(),
    ]);
    let exchange = exchange(&[&input], false);
    assert_eq!(exchange.client, expected(&[], true));
    assert_eq!(exchange.skipped, 0);
}

#[test]
fn close_delimited_crlf_stream_with_comments() {
    let input = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n\
         : OPENROUTER PROCESSING\r\n\r\ndata: {}\r\n\r\nevent: message\r\ndata: {}\r\n\r\n",
        content("crlf"),
        stop()
    );
    for_each_split(input.as_bytes(), |pieces| {
        let exchange = exchange(pieces, true);
        assert_eq!(exchange.client, expected(&["crlf"], true));
        assert!(!exchange.reusable);
    });
}

#[test]
fn rate_limit_passes_through_with_retry_after() {
    let input = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\nretry-after-ms: 1000\r\n\
        content-length: 112\r\ncontent-type: application/json\r\n\r\n\
        {\"error\":{\"message\":\"Rate limit exceeded.\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
    for_each_split(input, |pieces| {
        let exchange = exchange(pieces, false);
        assert!(exchange
            .client
            .starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(exchange.client.contains("\r\nRetry-After: 1\r\n"));
        assert!(!exchange.client.contains("Rate limit exceeded"));
        assert_eq!(exchange.ending, None);
    });
}

#[test]
fn other_statuses_become_bad_gateway() {
    let cases = [
        (
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            "credentials",
        ),
        (
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
            "failed (HTTP 500)",
        ),
        (
            "HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 143\r\ncontent-type: application/json\r\n\r\n{\"detail\":\"Invalid model\"}",
            "rejected the request (HTTP 422)",
        ),
    ];
    for (input, message) in cases {
        let exchange = exchange(&[input.as_bytes()], false);
        assert!(
            exchange.client.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
            "{input}"
        );
        assert!(exchange.client.contains(message), "{}", exchange.client);
        assert!(!exchange.client.contains("Retry-After"));
        assert!(!exchange.client.contains("detail"));
    }
}
