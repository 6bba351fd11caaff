//! The configuration file: `config::from_yaml_text`, the YAML reader and every key's setter and
//! validation, without the file read.
//!
//! - CRLF line ends, a byte-order mark and a trailing comment change nothing.
//! - An error points at a line and column inside the text.
//! - A configuration read is its own reload with nothing changed, and its `Debug` (what a log
//!   line could show) never holds an API key.
//! - What the configuration accepts, the daemon can send: the provider's request for a plain
//!   handoff builds ([`upstream_requests_build`], shared with `flags`).

use streaming_daemon::backends::upstream::Origin;
use streaming_daemon::backends::{langgraph, openai};
use streaming_daemon::config::{from_yaml_text, plan_reload, Config, ConfigError};
use streaming_daemon::handoff::HandoffData;

const FILE: &str = "fuzz.yaml";

pub fn check(data: &[u8]) {
    // The daemon refuses a file that is not UTF-8 before it reads any YAML.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = from_yaml_text(FILE, text);

    assert_eq!(from_yaml_text(FILE, &crlf(text)), result, "CRLF line ends");
    if !text.starts_with('\u{feff}') {
        let with_bom = format!("\u{feff}{text}");
        assert_eq!(from_yaml_text(FILE, &with_bom), result, "a byte-order mark");
    }
    let commented = format!("{text}\n# a trailing comment\n");
    assert_eq!(
        from_yaml_text(FILE, &commented),
        result,
        "a trailing comment"
    );

    match result {
        Ok(config) => {
            let plan = plan_reload(&config, config.clone());
            assert!(plan.applied.is_empty() && plan.needs_restart.is_empty());
            assert!(
                plan.config == config,
                "a reload to the same file changes nothing"
            );
            let _ = config.startup_notes();
            no_key_in_debug(&config);
            upstream_requests_build(&config);
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            error_position_is_in_text(&error, text);
        }
    }
}

/// Every line end as CRLF.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut previous = None;
    for character in text.chars() {
        if character == '\n' && previous != Some('\r') {
            out.push('\r');
        }
        out.push(character);
        previous = Some(character);
    }
    out
}

fn error_position_is_in_text(error: &ConfigError, text: &str) {
    let (line, col) = match error {
        ConfigError::Syntax { line, col, .. } | ConfigError::Key { line, col, .. } => (*line, *col),
        _ => return,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let line_text = line
        .checked_sub(1)
        .and_then(|index| text.split('\n').nth(index))
        .unwrap_or_else(|| panic!("{error}: no line {line}"));
    let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
    let last_col = line_text.chars().count() + 1;
    assert!(
        (1..=last_col).contains(&col),
        "{error}: column {col} is outside line {line} ({last_col} columns with its end)"
    );
}

/// A key set in the file shows in `Debug` only where the same text is there for another reason
/// (`api_base: x`, `api_key: x`).
fn no_key_in_debug(config: &Config) {
    let mut keys = Vec::new();
    let mut without = config.clone();
    keys.extend(without.backend.openai.api_key.take());
    keys.extend(without.backend.langgraph.api_key.take());
    for spec in without.backend.langgraph.profiles.values_mut() {
        keys.extend(spec.api_key.take());
    }
    let shown = format!("{config:?}");
    let shown_without = format!("{without:?}");
    for key in keys.iter().filter(|key| key.len() >= 8) {
        if !shown_without.contains(key.as_str()) {
            assert!(!shown.contains(key.as_str()), "an API key in Debug");
        }
    }
    for name in config.backend.langgraph.profiles.keys() {
        if let Some(profile) = config.backend.langgraph.profile(name) {
            let shown = format!("{profile:?}");
            for key in keys.iter().filter(|key| key.len() >= 8) {
                if !shown_without.contains(key.as_str()) {
                    assert!(
                        !shown.contains(key.as_str()),
                        "an API key in a profile's Debug"
                    );
                }
            }
        }
    }
}

/// A configuration that loads must not make every request fail: for the openai or langgraph
/// provider, the request for a handoff with nothing in it builds. (An API base the backend
/// cannot parse stops the daemon at start-up, which is fine.)
pub fn upstream_requests_build(config: &Config) {
    let handoff = HandoffData::default();
    match config.backend.provider.as_str() {
        "openai" => {
            let settings = &config.backend.openai;
            if let Ok(origin) = Origin::parse(&settings.api_base, settings.api_socket.clone()) {
                let built = openai::build_request(
                    settings,
                    &config.backend.default_model,
                    &origin,
                    &handoff,
                    None,
                );
                assert!(built.is_ok(), "every openai request would fail: {built:?}");
            }
        }
        "langgraph" => {
            let settings = &config.backend.langgraph;
            let profiles = std::iter::once(settings.default_profile()).chain(
                settings
                    .named_profiles()
                    .into_iter()
                    .map(|(_, profile)| profile),
            );
            for profile in profiles {
                if let Ok(origin) = Origin::parse(&profile.api_base, profile.api_socket.clone()) {
                    let built = langgraph::build_request(
                        &profile,
                        &origin,
                        &handoff,
                        None,
                        &mut Vec::new(),
                    );
                    assert!(
                        built.is_ok(),
                        "every langgraph request would fail: {built:?}"
                    );
                }
            }
        }
        _ => {}
    }
}
