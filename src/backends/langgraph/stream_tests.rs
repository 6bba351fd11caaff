//! Whole upstream responses, head and body, relayed the way the reactor does: our own fixtures
//! in the shapes LangGraph servers send (CRLF line ends, chunked bodies, heartbeat comments, no
//! end event), fed whole, byte by byte and cut everywhere.

use super::*;
use crate::backends::upstream::testing::{
    self, assert_upstream_error, client_contents, expected, expected_failure, Exchange,
};
use crate::backends::upstream::{Ending, Translator};
use crate::splits::{for_each_split, for_each_split_every};
use crate::sse::EventSink;

const HEAD: &str = "HTTP/1.1 200 OK\r\nserver: uvicorn\r\nlocation: /runs/r-1/stream\r\n\
    cache-control: no-store\r\nconnection: keep-alive\r\nx-accel-buffering: no\r\n\
    content-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n";

const METADATA: &str = "event: metadata\r\ndata: {\"run_id\":\"r-1\",\"attempt\":1}\r\n\r\n";
const HEARTBEAT: &str = ": heartbeat\r\n\r\n";

/// Run metadata as the second element of a messages tuple.
const RUN_META: &str = r#"{"created_by":"system","run_id":"r-1","thread_id":"t-1","graph_id":"agent","langgraph_step":1,"langgraph_node":"model","ls_provider":"fake"}"#;

/// One message object; `content` is raw JSON (a string or a list of blocks).
fn message(kind: &str, id: &str, content: &str) -> String {
    format!(
        r#"{{"content":{content},"additional_kwargs":{{}},"response_metadata":{{}},"type":"{kind}","name":null,"id":"{id}","tool_calls":[],"invalid_tool_calls":[],"usage_metadata":null}}"#
    )
}

fn text(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

/// A `messages` event (messages-tuple mode).
fn tuple(kind: &str, id: &str, content: &str) -> String {
    format!(
        "event: messages\r\ndata: [{},{RUN_META}]\r\n\r\n",
        message(kind, id, content)
    )
}

fn chunk(content: &str) -> String {
    tuple("AIMessageChunk", "lc_run--1", &text(content))
}

/// A `messages/partial` event (messages mode) with the message's whole text so far.
fn partial(id: &str, so_far: &str) -> String {
    format!(
        "event: messages/partial\r\ndata: [{}]\r\n\r\n",
        message("ai", id, &text(so_far))
    )
}

/// A chunked response with one chunk per event, ended by the last chunk.
fn response(events: &[String]) -> Vec<u8> {
    let mut out = HEAD.as_bytes().to_vec();
    for event in events {
        out.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn exchange_in(mode: StreamMode, pieces: &[&[u8]], eof: bool) -> Exchange {
    testing::exchange(pieces, eof, || {
        Box::new(LangGraphTranslator::new(mode)) as Box<dyn Translator>
    })
}

fn exchange(pieces: &[&[u8]], eof: bool) -> Exchange {
    exchange_in(StreamMode::MessagesTuple, pieces, eof)
}

#[test]
fn token_chunks_with_heartbeats_and_no_end_event_complete() {
    let words = ["Hello", " ", "there", " from", " a graph."];
    let mut events = vec![METADATA.to_string(), HEARTBEAT.to_string()];
    events.extend(words.iter().map(|w| chunk(w)));
    events.insert(4, HEARTBEAT.to_string());
    let input = response(&events);
    for_each_split_every(&input, 7, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(client_contents(&exchange.client), words, "{pieces:?}");
        assert_eq!(exchange.client.matches(": keep-alive\n\n").count(), 2);
        assert!(exchange.client.ends_with("data: [DONE]\n\n"));
        assert_eq!(exchange.ending, Some(Ending::Complete));
        assert!(exchange.reusable);
    });
}

#[test]
fn keep_alive_goes_where_the_heartbeat_came() {
    let input = response(&[chunk("a"), HEARTBEAT.into(), chunk("b")]);
    let exchange = exchange(&[&input], false);
    let mut want = expected(&[], false).into_bytes();
    let mut sink = EventSink::new(&mut want);
    sink.content("a");
    sink.keep_alive();
    sink.content("b");
    want.extend_from_slice(b"data: [DONE]\n\n");
    assert_eq!(exchange.client.as_bytes(), want);
}

#[test]
fn whole_ai_messages_are_sent_and_other_types_are_not() {
    let events = [
        METADATA.to_string(),
        tuple("human", "h-1", &text("the question echoed")),
        tuple("ai", "m-1", &text("Echo: hi")),
        tuple("tool", "t-1", &text("tool output")),
        tuple("ai", "m-2", &text("Second whole message.")),
        tuple("ai", "m-3", &text("")),
        tuple("AIMessageChunk", "m-4", "null"),
    ];
    let input = response(&events);
    for_each_split_every(&input, 11, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(
            exchange.client,
            expected(&["Echo: hi", "Second whole message."], true)
        );
        assert_eq!(exchange.skipped, 0);
    });
}

#[test]
fn content_blocks_are_joined() {
    let blocks = r#"[{"type":"text","text":"block one, "},{"type":"tool_use","id":"x"},"plain, ",{"type":"text","text":"block two"}]"#;
    let input = response(&[tuple("AIMessageChunk", "b-1", blocks)]);
    let exchange = exchange(&[&input], false);
    assert_eq!(
        client_contents(&exchange.client),
        ["block one, plain, block two"]
    );
}

#[test]
fn unicode_and_escapes_decode_to_the_same_text() {
    let input = response(&[tuple(
        "AIMessageChunk",
        "u-1",
        r#""caf\u00e9 \ud83d\ude00 \"q\"\r\n日本""#,
    )]);
    for_each_split(&input, |pieces| {
        assert_eq!(
            client_contents(&exchange(pieces, false).client),
            ["café 😀 \"q\"\r\n日本"]
        );
    });
}

#[test]
fn lone_surrogate_escapes_become_replacement_characters_not_lost_events() {
    let input = response(&[
        tuple("AIMessageChunk", "u-1", r#""half \ud83d""#),
        tuple("AIMessageChunk", "u-1", r#""\ude00 half""#),
        tuple("AIMessageChunk", "u-1", r#""x\udbff\n""#),
    ]);
    for_each_split(&input, |pieces| {
        let exchange = exchange(pieces, false);
        assert_eq!(
            exchange.client,
            expected(&["half \u{FFFD}", "\u{FFFD} half", "x\u{FFFD}\n"], true)
        );
        assert_eq!(exchange.skipped, 0);
    });
    // Cumulative text in messages mode: the replacement is part of the text so far.
    let partial_input = response(&[
        format!(
            "event: messages/partial\r\ndata: [{}]\r\n\r\n",
            message("ai", "m-1", r#""a\ud800""#)
        ),
        format!(
            "event: messages/partial\r\ndata: [{}]\r\n\r\n",
            message("ai", "m-1", r#""a\ud800b""#)
        ),
    ]);
    let exchange = exchange_in(StreamMode::Messages, &[&partial_input], false);
    assert_eq!(exchange.client, expected(&["a\u{FFFD}", "b"], true));
}

#[test]
fn an_end_event_from_older_servers_completes() {
    let input = response(&[
        chunk("done soon"),
        "event: end\r\ndata: null\r\n\r\n".into(),
    ]);
    let exchange = exchange(&[&input], false);
    assert_eq!(exchange.client, expected(&["done soon"], true));
    assert_eq!(exchange.ending, Some(Ending::Complete));
}

#[test]
fn close_delimited_body_ends_complete_at_eof() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let input = format!("{head}{}{}", chunk("a"), chunk("b"));
    for_each_split_every(input.as_bytes(), 13, |pieces| {
        let exchange = exchange(pieces, true);
        assert_eq!(exchange.client, expected(&["a", "b"], true));
        assert!(!exchange.reusable);
    });
}

#[test]
fn partial_messages_send_only_what_is_new() {
    let so_far = [
        "Hello",
        "Hello ",
        "Hello there",
        "Hello there",
        "Hello there, wörld",
        "Hello there, wörld!",
    ];
    let mut events = vec![
        METADATA.to_string(),
        "event: messages/metadata\r\ndata: {\"m-1\":{\"metadata\":{\"langgraph_node\":\"model\"}}}\r\n\r\n".to_string(),
    ];
    events.extend(so_far.iter().map(|text| partial("m-1", text)));
    events.push(
        "event: messages/complete\r\ndata: [{\"type\":\"ai\",\"content\":\"Hello there, wörld!\",\"id\":\"m-1\"}]\r\n\r\n"
            .to_string(),
    );
    let input = response(&events);
    for_each_split_every(&input, 7, |pieces| {
        let exchange = exchange_in(StreamMode::Messages, pieces, false);
        assert_eq!(
            exchange.client,
            expected(&["Hello", " ", "there", ", wörld", "!"], true),
            "{pieces:?}"
        );
    });
}

#[test]
fn partial_messages_are_tracked_per_id() {
    let input = response(&[
        partial("a", "First"),
        partial("b", "Other"),
        partial("a", "First message"),
        partial("b", "Other one"),
    ]);
    let exchange = exchange_in(StreamMode::Messages, &[&input], false);
    assert_eq!(
        client_contents(&exchange.client),
        ["First", "Other", " message", " one"]
    );
}

#[test]
fn rewritten_partial_text_sends_what_follows_the_common_prefix() {
    let input = response(&[
        partial("m", "The cat"),
        // Rewritten: only what differs after "The c" is new to the client.
        partial("m", "The cow jumped"),
        // Shrunk to a prefix: nothing new.
        partial("m", "The cow"),
        partial("m", "The cow ran"),
    ]);
    let exchange = exchange_in(StreamMode::Messages, &[&input], false);
    assert_eq!(
        client_contents(&exchange.client),
        ["The cat", "ow jumped", " ran"]
    );
}

#[test]
fn each_mode_reads_only_its_own_events() {
    let input = response(&[chunk("tuple"), partial("p", "partial")]);
    let tuple_only = exchange_in(StreamMode::MessagesTuple, &[&input], false);
    assert_eq!(client_contents(&tuple_only.client), ["tuple"]);
    let partial_only = exchange_in(StreamMode::Messages, &[&input], false);
    assert_eq!(client_contents(&partial_only.client), ["partial"]);
    let values = response(&[
        "event: values\r\ndata: {\"messages\":[{\"type\":\"ai\",\"content\":\"x\"}]}\r\n\r\n"
            .to_string(),
        "event: updates\r\ndata: {\"model\":{}}\r\n\r\n".to_string(),
    ]);
    let none = exchange_in(StreamMode::Other, &[&values], false);
    assert_eq!(none.client, expected(&[], true));
}

#[test]
fn malformed_messages_are_skipped_and_counted() {
    let input = response(&[
        chunk("one "),
        "event: messages\r\ndata: {not json\r\n\r\n".into(),
        "event: messages\r\ndata: {\"type\":\"ai\"}\r\n\r\n".into(),
        "event: messages\r\ndata: [\"text\",{}]\r\n\r\n".into(),
        chunk("two"),
    ]);
    let exchange = exchange(&[&input], false);
    assert_eq!(exchange.client, expected(&["one ", "two"], true));
    assert_eq!(exchange.skipped, 3);
}

#[test]
fn an_error_event_ends_with_an_error_event_and_no_done() {
    let input = response(&[
        METADATA.into(),
        chunk("partial answer"),
        "event: error\r\ndata: {\"error\":\"ValueError\",\"message\":\"boom: secret graph detail\"}\r\n\r\n".into(),
    ]);
    for_each_split_every(&input, 5, |pieces| {
        let exchange = exchange(pieces, false);
        assert_upstream_error(&exchange, &["partial answer"], "boom: secret graph detail");
    });
}

#[test]
fn a_body_cut_mid_way_is_an_error() {
    let mut input = response(&[chunk("partial"), chunk("never whole")]);
    input.truncate(input.len() - 5 - 30);
    let exchange = exchange(&[&input], true);
    let message = "the upstream connection closed before the answer was complete";
    assert_eq!(exchange.client, expected_failure(&["partial"], message));
}

#[test]
fn unknown_assistant_is_a_bad_gateway_without_the_detail() {
    let detail = r#"{"detail":"Invalid assistant: 'nope'. Must be either:\n- A valid assistant UUID, or\n- One of the registered graphs: agent"}"#;
    let input = format!(
        "HTTP/1.1 422 Unprocessable Entity\r\nserver: uvicorn\r\ncontent-length: {}\r\n\
         content-type: application/json\r\n\r\n{detail}",
        detail.len()
    );
    for_each_split(input.as_bytes(), |pieces| {
        let exchange = exchange(pieces, false);
        assert!(
            exchange.client.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
            "{}",
            exchange.client
        );
        assert!(exchange.client.contains("rejected the request (HTTP 422)"));
        assert!(!exchange.client.contains("Invalid assistant"));
        assert_eq!(exchange.ending, None);
    });
}
