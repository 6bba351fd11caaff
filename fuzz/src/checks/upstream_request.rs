//! A handoff turned into the upstream requests of the openai and langgraph backends, with the
//! built-in configuration: the client's text reaches the upstream only through these.
//!
//! - A request that is built is one complete HTTP/1.1 `POST` whose `Content-Length` frames a
//!   JSON object body (`wire::json_post`).
//! - Building fails only for what the handoff may get wrong (`test_pattern`, `thread_id`): the
//!   built-in configuration holds nothing that could fail.

use streaming_daemon::backends::upstream::{Origin, RequestBytes};
use streaming_daemon::backends::{langgraph, openai};
use streaming_daemon::config::Config;
use streaming_daemon::handoff::parse_handoff_data;

use super::wire::json_post;

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
    json_post(&request.bytes);
}
