//! A handoff turned into the upstream requests of the openai and langgraph backends, with the
//! built-in configuration: the client's text reaches the upstream only through these.
//!
//! - A request that is built is one complete HTTP/1.1 `POST` whose `Content-Length` frames a
//!   JSON object body.
//! - Building fails only for what the handoff may get wrong (`test_pattern`, `thread_id`): the
//!   built-in configuration holds nothing that could fail.

use serde_json::Value;
use streaming_daemon::backends::upstream::{Origin, RequestBytes};
use streaming_daemon::backends::{langgraph, openai};
use streaming_daemon::config::Config;
use streaming_daemon::handoff::parse_handoff_data;

pub fn check(data: &[u8]) {
    let Ok(handoff) = parse_handoff_data(data) else {
        return;
    };
    let config = Config::default();

    let openai_config = &config.backend.openai;
    let origin = Origin::parse(&openai_config.api_base, None).expect("the default base parses");
    match openai::build_request(
        openai_config,
        &config.backend.default_model,
        &origin,
        &handoff,
        None,
    ) {
        Ok(request) => well_formed(request),
        Err(error) => assert!(handoff.test_pattern.is_some(), "openai: {error}"),
    }

    let profile = config.backend.langgraph.default_profile();
    let origin = Origin::parse(&profile.api_base, None).expect("the default base parses");
    let mut notes = Vec::new();
    match langgraph::build_request(&profile, &origin, &handoff, None, &mut notes) {
        Ok(request) => well_formed(request),
        Err(error) => assert!(
            handoff.test_pattern.is_some() || handoff.thread_id.is_some(),
            "langgraph: {error}"
        ),
    }
}

/// With nothing attached the body is never streamed: the request is one piece.
fn well_formed(request: RequestBytes) {
    assert!(
        request.streamed.is_none(),
        "a body with no file content is streamed"
    );
    let request = request.bytes.as_slice();
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(request) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!(
            "a request we built does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(request)
        ),
    };
    assert_eq!(parsed.method, Some("POST"));
    assert!(parsed.path.is_some_and(|path| path.starts_with('/')));
    let body = &request[len..];
    let length = parsed
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"))
        .and_then(|header| std::str::from_utf8(header.value).ok())
        .and_then(|value| value.parse::<usize>().ok());
    assert_eq!(length, Some(body.len()), "Content-Length frames the body");
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => {}
        other => panic!("the body is not a JSON object: {other:?}"),
    }
}
