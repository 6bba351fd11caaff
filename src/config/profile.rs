//! LangGraph profiles (SPEC §4.4). `backend.langgraph` itself is the default profile;
//! `backend.langgraph.profiles.<name>` adds named ones. A named profile is kept as written
//! (`LangGraphProfileSpec`) and resolved over the default profile when asked for, so it always
//! inherits the default's final value, whichever source (flag, environment, file, default) set
//! it.
//!
//! Inheritance: every key the profile does not set takes the default profile's value, except
//! `api_socket` (ours): a profile that sets `api_base` without `api_socket` has no socket (the
//! default's socket most likely leads to the default's server), and `api_socket: ""` unsets it.

use std::fmt;
use std::path::PathBuf;

use super::units::parse_bool;
use super::validate::{self, content_format, output};
use super::{redacted, ContentFormat, LangGraphConfig, LangGraphOutput};

/// One profile's settings, resolved: what a request made with this profile uses.
/// `Debug` is written by hand so that the API key never reaches a log line.
#[derive(Clone, PartialEq)]
pub struct LangGraphProfile {
    pub api_key: Option<String>,
    pub api_base: String,
    pub api_socket: Option<PathBuf>,
    pub assistant_id: String,
    pub stream_mode: String,
    pub content_format: ContentFormat,
    pub output: LangGraphOutput,
    pub http2_enabled: bool,
    pub insecure_ssl: bool,
    pub ca_file: Option<PathBuf>,
}

/// A named profile as the file writes it: `None` is a key it does not set (or sets to `""`),
/// which inherits. `Debug` is written by hand so that the API key never reaches a log line.
#[derive(Clone, PartialEq, Default)]
pub struct LangGraphProfileSpec {
    pub api_key: Option<String>,
    pub api_base: Option<String>,
    /// `None`: not written. `Some(None)`: `api_socket: ""`, no socket whatever the default has.
    pub api_socket: Option<Option<PathBuf>>,
    pub assistant_id: Option<String>,
    pub stream_mode: Option<String>,
    pub content_format: Option<ContentFormat>,
    pub output: Option<LangGraphOutput>,
    pub http2_enabled: Option<bool>,
    pub insecure_ssl: Option<bool>,
    pub ca_file: Option<PathBuf>,
}

impl LangGraphConfig {
    /// The settings a handoff's `profile` selects: `""` is the default profile; `None` means no
    /// profile has that name (the handoff gets 400, `unknown_profile`).
    pub fn profile(&self, name: &str) -> Option<LangGraphProfile> {
        if name.is_empty() {
            return Some(self.default_profile());
        }
        self.profiles.get(name).map(|spec| spec.resolve(self))
    }

    /// `backend.langgraph` itself, as a profile.
    pub fn default_profile(&self) -> LangGraphProfile {
        LangGraphProfile {
            api_key: self.api_key.clone(),
            api_base: self.api_base.clone(),
            api_socket: self.api_socket.clone(),
            assistant_id: self.assistant_id.clone(),
            stream_mode: self.stream_mode.clone(),
            content_format: self.content_format,
            output: self.output,
            http2_enabled: self.http2_enabled,
            insecure_ssl: self.insecure_ssl,
            ca_file: self.ca_file.clone(),
        }
    }

    /// Every named profile, resolved, in name order.
    pub fn named_profiles(&self) -> Vec<(&str, LangGraphProfile)> {
        self.profiles
            .iter()
            .map(|(name, spec)| (name.as_str(), spec.resolve(self)))
            .collect()
    }
}

impl LangGraphProfileSpec {
    /// This profile's settings over `default`'s.
    pub fn resolve(&self, default: &LangGraphConfig) -> LangGraphProfile {
        let api_socket = match &self.api_socket {
            Some(written) => written.clone(),
            None if self.api_base.is_some() => None,
            None => default.api_socket.clone(),
        };
        LangGraphProfile {
            api_key: self.api_key.clone().or_else(|| default.api_key.clone()),
            api_base: self
                .api_base
                .clone()
                .unwrap_or_else(|| default.api_base.clone()),
            api_socket,
            assistant_id: self
                .assistant_id
                .clone()
                .unwrap_or_else(|| default.assistant_id.clone()),
            stream_mode: self
                .stream_mode
                .clone()
                .unwrap_or_else(|| default.stream_mode.clone()),
            content_format: self.content_format.unwrap_or(default.content_format),
            output: self.output.unwrap_or(default.output),
            http2_enabled: self.http2_enabled.unwrap_or(default.http2_enabled),
            insecure_ssl: self.insecure_ssl.unwrap_or(default.insecure_ssl),
            ca_file: self.ca_file.clone().or_else(|| default.ca_file.clone()),
        }
    }
}

pub type ProfileSetter = fn(&mut LangGraphProfileSpec, &str) -> Result<(), String>;

/// The keys a named profile may set, in the order SPEC §4.4 lists them. Each takes the same
/// values as the `backend.langgraph` key of that name; empty text means "not set" (inherit),
/// except for `api_socket`, where it means "no socket".
pub const PROFILE_KEYS: &[(&str, ProfileSetter)] = &[
    ("api_base", |spec, text| {
        spec.api_base = inherit_or(text, validate::http_url)?;
        Ok(())
    }),
    ("api_socket", |spec, text| {
        spec.api_socket = Some(validate::optional_absolute_path(text)?);
        Ok(())
    }),
    ("api_key", |spec, text| {
        spec.api_key = validate::api_key(text)?;
        Ok(())
    }),
    ("assistant_id", |spec, text| {
        spec.assistant_id = inherit_or(text, |text| Ok(text.to_string()))?;
        Ok(())
    }),
    ("stream_mode", |spec, text| {
        spec.stream_mode = inherit_or(text, |text| Ok(text.to_string()))?;
        Ok(())
    }),
    ("content_format", |spec, text| {
        spec.content_format = inherit_or(text, content_format)?;
        Ok(())
    }),
    ("output", |spec, text| {
        spec.output = inherit_or(text, output)?;
        Ok(())
    }),
    ("insecure_ssl", |spec, text| {
        spec.insecure_ssl = inherit_or(text, parse_bool)?;
        Ok(())
    }),
    ("ca_file", |spec, text| {
        spec.ca_file = inherit_or(text, |text| Ok(PathBuf::from(text)))?;
        Ok(())
    }),
    ("http2_enabled", |spec, text| {
        spec.http2_enabled = inherit_or(text, parse_bool)?;
        Ok(())
    }),
];

/// `None` for empty text (the key inherits), else the parsed value.
fn inherit_or<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

/// Profile names are the handoff's `profile` values; `""` already means the default profile.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("a profile needs a name (the default profile is backend.langgraph itself)".to_string())
    } else {
        Ok(())
    }
}

impl fmt::Debug for LangGraphProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field fails to compile until it is shown here.
        let LangGraphProfile {
            api_key,
            api_base,
            api_socket,
            assistant_id,
            stream_mode,
            content_format,
            output,
            http2_enabled,
            insecure_ssl,
            ca_file,
        } = self;
        f.debug_struct("LangGraphProfile")
            .field("api_key", &format_args!("{}", redacted(api_key)))
            .field("api_base", api_base)
            .field("api_socket", api_socket)
            .field("assistant_id", assistant_id)
            .field("stream_mode", stream_mode)
            .field("content_format", content_format)
            .field("output", output)
            .field("http2_enabled", http2_enabled)
            .field("insecure_ssl", insecure_ssl)
            .field("ca_file", ca_file)
            .finish()
    }
}

impl fmt::Debug for LangGraphProfileSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field fails to compile until it is shown here.
        let LangGraphProfileSpec {
            api_key,
            api_base,
            api_socket,
            assistant_id,
            stream_mode,
            content_format,
            output,
            http2_enabled,
            insecure_ssl,
            ca_file,
        } = self;
        f.debug_struct("LangGraphProfileSpec")
            .field("api_key", &format_args!("{}", redacted(api_key)))
            .field("api_base", api_base)
            .field("api_socket", api_socket)
            .field("assistant_id", assistant_id)
            .field("stream_mode", stream_mode)
            .field("content_format", content_format)
            .field("output", output)
            .field("http2_enabled", http2_enabled)
            .field("insecure_ssl", insecure_ssl)
            .field("ca_file", ca_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn spec(pairs: &[(&str, &str)]) -> Result<LangGraphProfileSpec, String> {
        let mut spec = LangGraphProfileSpec::default();
        for (key, text) in pairs {
            let (_, set) = PROFILE_KEYS
                .iter()
                .find(|(name, _)| name == key)
                .unwrap_or_else(|| panic!("no profile key {key}"));
            set(&mut spec, text)?;
        }
        Ok(spec)
    }

    fn langgraph() -> LangGraphConfig {
        let mut langgraph = Config::default().backend.langgraph;
        langgraph.api_base = "http://127.0.0.1:18001".into();
        langgraph.api_key = Some("top-key".into());
        langgraph.api_socket = Some("/run/lg.sock".into());
        langgraph.insecure_ssl = true;
        langgraph.ca_file = Some("/etc/ca.pem".into());
        langgraph
    }

    #[test]
    fn an_empty_profile_is_the_default_profile() {
        let mut langgraph = langgraph();
        langgraph
            .profiles
            .insert("same".into(), LangGraphProfileSpec::default());
        assert_eq!(langgraph.profile("same"), Some(langgraph.default_profile()));
        assert_eq!(langgraph.profile(""), Some(langgraph.default_profile()));
        assert_eq!(langgraph.profile("nope"), None);
    }

    #[test]
    fn set_keys_win_and_unset_keys_inherit() {
        let mut langgraph = langgraph();
        let sales = spec(&[
            ("api_key", "sales-key"),
            ("assistant_id", "sales-agent"),
            ("stream_mode", "messages"),
            ("content_format", "anthropic"),
            ("output", "raw"),
            ("insecure_ssl", "false"),
            ("http2_enabled", "true"),
            ("ca_file", "/etc/sales-ca.pem"),
        ])
        .expect("valid");
        langgraph.profiles.insert("sales".into(), sales);
        let resolved = langgraph.profile("sales").expect("known");
        assert_eq!(
            resolved,
            LangGraphProfile {
                api_key: Some("sales-key".into()),
                api_base: "http://127.0.0.1:18001".into(),
                api_socket: Some("/run/lg.sock".into()),
                assistant_id: "sales-agent".into(),
                stream_mode: "messages".into(),
                content_format: ContentFormat::Anthropic,
                output: LangGraphOutput::Raw,
                http2_enabled: true,
                insecure_ssl: false,
                ca_file: Some("/etc/sales-ca.pem".into()),
            }
        );
        // Resolution follows the default's final value.
        langgraph.assistant_id = "changed".into();
        langgraph.api_base = "http://127.0.0.1:18009".into();
        let resolved = langgraph.profile("sales").expect("known");
        assert_eq!(resolved.assistant_id, "sales-agent");
        assert_eq!(resolved.api_base, "http://127.0.0.1:18009");
    }

    #[test]
    fn a_profile_with_its_own_base_does_not_inherit_the_socket() {
        let mut langgraph = langgraph();
        let cases = [
            (vec![("api_base", "http://127.0.0.1:18002")], None),
            (
                vec![
                    ("api_base", "http://127.0.0.1:18002"),
                    ("api_socket", "/run/other.sock"),
                ],
                Some(PathBuf::from("/run/other.sock")),
            ),
            (vec![("api_socket", "")], None),
            (
                vec![("assistant_id", "x")],
                Some(PathBuf::from("/run/lg.sock")),
            ),
            (
                vec![("api_socket", "/run/other.sock")],
                Some(PathBuf::from("/run/other.sock")),
            ),
        ];
        for (pairs, socket) in cases {
            langgraph
                .profiles
                .insert("p".into(), spec(&pairs).expect("valid"));
            assert_eq!(
                langgraph.profile("p").map(|p| p.api_socket),
                Some(socket),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn empty_values_inherit_and_bad_values_are_refused() {
        let empty: Vec<(&str, &str)> = PROFILE_KEYS
            .iter()
            .filter(|(key, _)| *key != "api_socket")
            .map(|(key, _)| (*key, ""))
            .collect();
        assert_eq!(spec(&empty), Ok(LangGraphProfileSpec::default()));
        assert_eq!(
            spec(&[("content_format", "OpenAI")]).err().as_deref(),
            Some("must be \"openai\" or \"anthropic\", got \"OpenAI\"")
        );
        assert_eq!(
            spec(&[("output", "json")]).err().as_deref(),
            Some("must be \"translate\" or \"raw\", got \"json\"")
        );
        assert_eq!(
            spec(&[("api_socket", "lg.sock")]).err().as_deref(),
            Some("must be an absolute path (starting with /)")
        );
        assert!(spec(&[("api_base", "lg.example")]).is_err());
        assert!(spec(&[("insecure_ssl", "maybe")]).is_err());
        assert!(check_name("").is_err());
        assert_eq!(check_name("sales"), Ok(()));
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let mut langgraph = langgraph();
        langgraph.profiles.insert(
            "sales".into(),
            spec(&[("api_key", "sk-profile-secret")]).expect("valid"),
        );
        let shown = format!(
            "{langgraph:?} {:?} {:#?}",
            langgraph.profile("sales"),
            langgraph.named_profiles()
        );
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("top-key"), "{shown}");
        assert!(shown.contains("api_key: Some(<redacted>)"), "{shown}");
    }
}
