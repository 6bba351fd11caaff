//! The per-request choice of backend (SPEC §4, A.3 P9) and the shared list of upstream targets.

use std::time::Instant;

use super::*;
use crate::config::{ContentFormat, LangGraphProfileSpec};
use crate::end::Rejection;

fn handoff(backend: Option<&str>, profile: Option<&str>) -> HandoffData {
    HandoffData {
        prompt: "hi".into(),
        backend: backend.map(str::to_string),
        profile: profile.map(str::to_string),
        ..HandoffData::default()
    }
}

/// A.3's configuration: langgraph with a `sales` profile on another server and a `claude`
/// profile on the default one.
fn langgraph_config(allowed: &[&str]) -> Config {
    let mut config = Config::default();
    config.backend.provider = "langgraph".into();
    config.backend.allowed = allowed.iter().map(|name| name.to_string()).collect();
    let langgraph = &mut config.backend.langgraph;
    langgraph.api_base = "http://127.0.0.1:18001".into();
    langgraph.api_key = Some("top-key".into());
    langgraph.profiles.insert(
        "sales".into(),
        LangGraphProfileSpec {
            api_base: Some("http://127.0.0.1:18002".into()),
            api_key: Some("sales-key".into()),
            assistant_id: Some("sales-agent".into()),
            ..LangGraphProfileSpec::default()
        },
    );
    langgraph.profiles.insert(
        "claude".into(),
        LangGraphProfileSpec {
            assistant_id: Some("claude-agent".into()),
            content_format: Some(ContentFormat::Anthropic),
            ..LangGraphProfileSpec::default()
        },
    );
    config
}

fn started(backends: &mut Backends, request: HandoffData) -> Started {
    match backends.start(request, None, Instant::now()) {
        Ok(started) => started,
        Err(error) => panic!("{error}"),
    }
}

/// The upstream request and the address of the target it names.
fn call(started: Started, backends: &Backends) -> (String, String) {
    let Start::Upstream(call) = started.start else {
        panic!("expected an upstream call");
    };
    let origin = &backends.targets()[call.target].origin;
    let address = format!("{}:{}", origin.host, origin.port);
    (String::from_utf8(call.request).unwrap(), address)
}

#[test]
fn only_the_provider_is_set_up_by_default() {
    let backends = Backends::create(&Config::default()).unwrap();
    assert_eq!(backends.names(), ["mock"]);
    assert_eq!(backends.provider(), "mock");
    assert!(backends.targets().is_empty());
}

#[test]
fn a_backend_not_allowed_is_refused_before_anything_starts() {
    // P9: the typing backend exists but is not allowed.
    let mut backends = Backends::create(&langgraph_config(&[])).unwrap();
    for name in ["typing", "mock", "openai", "nope", "LangGraph"] {
        let error = backends
            .start(handoff(Some(name), None), None, Instant::now())
            .err()
            .unwrap();
        assert_eq!(error, BackendError::UnknownBackend(name.into()));
        assert_eq!(
            error.to_string(),
            format!("backend \"{name}\" is not allowed")
        );
        assert_eq!(error.rejection(), Some(Rejection::UnknownBackend));
        assert_eq!(error.client_message(), error.to_string());
        assert_eq!(
            backends.choose(&handoff(Some(name), None)),
            Err(BackendError::UnknownBackend(name.into()))
        );
    }
}

#[test]
fn an_allowed_backend_runs_the_request_and_the_provider_is_the_default() {
    // P9 with `backend.allowed: [langgraph, typing]`.
    let mut backends = Backends::create(&langgraph_config(&["langgraph", "typing"])).unwrap();
    assert_eq!(backends.names(), ["langgraph", "typing"]);
    let typing = started(&mut backends, handoff(Some("typing"), None));
    assert_eq!(typing.backend, "typing");
    assert_eq!(typing.profile, None);
    assert!(matches!(typing.start, Start::Local(_)));
    for name in [None, Some(""), Some("langgraph")] {
        let provider = started(&mut backends, handoff(name, None));
        assert_eq!(provider.backend, "langgraph", "{name:?}");
        assert_eq!(provider.profile.as_deref(), Some(""));
        assert!(matches!(provider.start, Start::Upstream(_)));
    }
}

#[test]
fn keys_for_another_backend_are_ignored() {
    let mut config = langgraph_config(&["mock"]);
    config.backend.provider = "mock".into();
    let mut backends = Backends::create(&config).unwrap();
    let request = HandoffData {
        profile: Some("nope".into()),
        stream_mode: Some("updates".into()),
        thread_id: Some("t".into()),
        assistant_id: Some("a".into()),
        ..handoff(None, None)
    };
    let choice = backends.choose(&request).unwrap();
    assert_eq!(
        (choice.backend, choice.profile, choice.flavour),
        ("mock", None, Flavour::Local)
    );
    assert_eq!(started(&mut backends, request).backend, "mock");
}

#[test]
fn an_unknown_profile_is_refused_before_any_request() {
    // P5.
    let mut backends = Backends::create(&langgraph_config(&[])).unwrap();
    let error = backends
        .start(handoff(None, Some("nope")), None, Instant::now())
        .err()
        .unwrap();
    assert_eq!(error, BackendError::UnknownProfile("nope".into()));
    assert_eq!(error.to_string(), "unknown LangGraph profile \"nope\"");
    assert_eq!(error.rejection(), Some(Rejection::UnknownProfile));
    assert_eq!(error.client_message(), "unknown LangGraph profile \"nope\"");
    // The backend is checked first: an unknown backend with an unknown profile is about the
    // backend.
    assert_eq!(
        backends.choose(&handoff(Some("typing"), Some("nope"))),
        Err(BackendError::UnknownBackend("typing".into()))
    );
}

#[test]
fn the_choice_gives_the_profile_and_the_attachment_flavour() {
    let mut config = langgraph_config(&["openai", "typing"]);
    config.backend.openai.api_key = Some("sk".into());
    let backends = Backends::create(&config).unwrap();
    let cases = [
        (
            handoff(None, None),
            "langgraph",
            Some(""),
            Flavour::LangGraph(ContentFormat::OpenAi),
        ),
        (
            handoff(None, Some("claude")),
            "langgraph",
            Some("claude"),
            Flavour::LangGraph(ContentFormat::Anthropic),
        ),
        (
            handoff(Some("openai"), Some("claude")),
            "openai",
            None,
            Flavour::OpenAi,
        ),
        (
            handoff(Some("typing"), None),
            "typing",
            None,
            Flavour::Local,
        ),
    ];
    for (request, backend, profile, flavour) in cases {
        let choice = backends.choose(&request).unwrap();
        assert_eq!(choice.backend, backend);
        assert_eq!(choice.profile.as_deref(), profile);
        assert_eq!(choice.flavour, flavour);
    }
}

#[test]
fn every_distinct_upstream_is_one_target_and_requests_name_theirs() {
    let mut config = langgraph_config(&["openai"]);
    // openai behind the same server as the default profile, with the same path: one target.
    config.backend.openai.api_base = "http://127.0.0.1:18001".into();
    let mut backends = Backends::create(&config).unwrap();
    let addresses: Vec<String> = backends
        .targets()
        .iter()
        .map(|target| format!("{}:{}", target.origin.host, target.origin.port))
        .collect();
    assert_eq!(addresses, ["127.0.0.1:18001", "127.0.0.1:18002"]);

    let cases = [
        (
            handoff(None, None),
            "POST /runs/stream",
            "127.0.0.1:18001",
            "top-key",
        ),
        (
            handoff(None, Some("claude")),
            "POST /runs/stream",
            "127.0.0.1:18001",
            "top-key",
        ),
        (
            handoff(None, Some("sales")),
            "POST /runs/stream",
            "127.0.0.1:18002",
            "sales-key",
        ),
        (
            handoff(Some("openai"), None),
            "POST /chat/completions",
            "127.0.0.1:18001",
            "",
        ),
    ];
    for (request, line, address, key) in cases {
        let what = format!("{:?} {:?}", request.backend, request.profile);
        let (text, target) = call(started(&mut backends, request), &backends);
        assert!(text.starts_with(line), "{what}: {text}");
        assert!(text.contains(&format!("Host: {address}\r\n")), "{what}");
        assert_eq!(target, address, "{what}");
        if !key.is_empty() {
            assert!(text.contains(&format!("X-Api-Key: {key}\r\n")), "{what}");
        }
    }
}

#[test]
fn a_different_tls_setting_is_a_different_target() {
    let mut config = langgraph_config(&[]);
    config.backend.langgraph.api_base = "https://lg.example.com".into();
    config.backend.langgraph.profiles.clear();
    config.backend.langgraph.profiles.insert(
        "lab".into(),
        LangGraphProfileSpec {
            insecure_ssl: Some(true),
            ..LangGraphProfileSpec::default()
        },
    );
    let backends = Backends::create(&config).unwrap();
    let targets = backends.targets();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].origin, targets[1].origin);
    assert_eq!(
        (targets[0].insecure_ssl, targets[1].insecure_ssl),
        (false, true)
    );
}

#[test]
fn a_bad_profile_base_is_a_setup_error_naming_the_profile() {
    let mut config = langgraph_config(&[]);
    config
        .backend
        .langgraph
        .profiles
        .get_mut("sales")
        .unwrap()
        .api_base = Some("ftp://nope".into());
    let error = Backends::create(&config).err().unwrap();
    assert!(
        error
            .to_string()
            .contains("backend.langgraph.profiles.sales.api_base"),
        "{error}"
    );
}

#[test]
fn an_unknown_provider_lists_the_available_ones() {
    let mut config = Config::default();
    config.backend.provider = "nope".into();
    let error = Backends::create(&config).err().unwrap();
    assert_eq!(
        error.to_string(),
        "unknown backend \"nope\"; available backends: langgraph, mock, openai, typing"
    );
}

#[test]
fn a_single_backend_is_the_provider_with_its_targets() {
    let config = langgraph_config(&[]);
    let mut backends = Backends::single(crate::backends::create(&config).unwrap());
    assert_eq!(backends.names(), ["langgraph"]);
    assert_eq!(backends.targets().len(), 2);
    let (_, address) = call(
        started(&mut backends, handoff(None, Some("sales"))),
        &backends,
    );
    assert_eq!(address, "127.0.0.1:18002");
}
