//! The command line and the environment: `config::load` on Go-style flags.
//!
//! The input is cut at NUL bytes into arguments (any bytes, as the OS allows); an argument
//! `%NAME=value` is an environment variable instead. Inputs that name `-config` are skipped:
//! that flag reads a file, and a fuzzer must not open whatever path it makes up.
//!
//! - A configuration that loads has an absolute socket path.
//! - Neither an error nor the configuration's `Debug` shows an API key given in the
//!   environment, unless the same text is there for another reason (an argument, another
//!   variable, a built-in setting, the usage text).
//! - What the flags and environment accept, the daemon can send (as for `config_yaml`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use streaming_daemon::config::{load, Config, ConfigError, Invocation};

const SECRET_VARS: [&str; 2] = ["OPENAI_API_KEY", "LANGGRAPH_API_KEY"];

pub fn check(data: &[u8]) {
    let mut args = Vec::new();
    let mut env = BTreeMap::new();
    if !data.is_empty() {
        for piece in data.split(|&byte| byte == 0) {
            match piece.strip_prefix(b"%") {
                Some(assignment) => {
                    let text = String::from_utf8_lossy(assignment);
                    let (name, value) = text.split_once('=').unwrap_or((&text, ""));
                    env.insert(name.to_string(), value.to_string());
                }
                None => args.push(OsString::from_vec(piece.to_vec())),
            }
        }
    }
    if args.iter().any(|arg| {
        arg.to_string_lossy()
            .trim_start_matches('-')
            .starts_with("config")
    }) {
        return;
    }
    let result = load(args.clone(), &|name| env.get(name).cloned());

    let mut secrets: Vec<&str> = SECRET_VARS
        .iter()
        .filter_map(|var| env.get(*var))
        .map(String::as_str)
        .filter(|secret| secret.len() >= 8 && !secret.contains(char::is_whitespace))
        .filter(|secret| {
            !args
                .iter()
                .any(|arg| arg.to_string_lossy().contains(secret))
        })
        .filter(|secret| {
            env.iter()
                .filter(|(name, _)| !SECRET_VARS.contains(&name.as_str()))
                .all(|(_, value)| !value.contains(secret))
        })
        .collect();
    if !secrets.is_empty() {
        // Text the daemon shows for other reasons: the built-in settings and the usage text.
        let known = format!("{:?}{}", Config::default(), usage());
        secrets.retain(|secret| !known.contains(secret));
    }
    let hidden = |shown: &str, what: &str| {
        for secret in &secrets {
            assert!(!shown.contains(secret), "an API key in {what}: {shown}");
        }
    };
    match result {
        Ok(Invocation::Run(config)) => {
            assert!(config.server.socket_path.is_absolute());
            hidden(&format!("{config:?}"), "the configuration's Debug");
            super::config_yaml::upstream_requests_build(&config);
        }
        Ok(Invocation::Help(usage)) => assert!(!usage.is_empty()),
        Ok(Invocation::Version(version)) => assert!(version.starts_with("streaming-daemon ")),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty());
            // The usage text follows some errors; a key that happens to be in it is not a leak.
            let usage_free: String = match &error {
                ConfigError::Usage { message, .. } => message.clone(),
                _ => message,
            };
            hidden(&usage_free, "an error");
        }
    }
}

fn usage() -> String {
    match load(vec!["-help".into()], &|_| None) {
        Ok(Invocation::Help(usage)) => usage,
        other => panic!("-help gives the usage text, not {other:?}"),
    }
}
