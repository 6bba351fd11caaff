//! Keys the configuration already reads whose feature is not built yet.
//!
//! Every key of SPEC §5 loads, so the newest Go daemon's files and ours load unchanged. But a
//! value that asks for a missing feature must not be silently ignored: the daemon would then
//! do something else than the operator asked for (send a profile's requests with the default
//! profile's key, run one thread where eight were asked for, type fortunes where an API was
//! asked for). Such a
//! configuration fails at start-up, and a reload to it is refused, with a message that names
//! the key.
//!
//! A key set to its default or to a value that changes nothing loads fine:
//! `typing.default_model` matters only with `typing.use_api`.
//!
//! When a feature is built, its entry is deleted from `NOT_YET_IMPLEMENTED`, and nothing else.

use super::{Config, ConfigError};

/// A key whose feature is missing, and when a configuration needs that feature.
pub struct Pending {
    /// The dotted key (and its flag, where it has one), as the operator writes it.
    pub key: &'static str,
    /// What to do instead, for the message: the value that needs nothing missing.
    pub instead: &'static str,
    /// Whether `config` sets the key to a value that needs the missing feature.
    pub needs: fn(&Config) -> bool,
}

/// Every key whose feature is not built yet. One entry per feature; delete it when the feature
/// lands.
pub const NOT_YET_IMPLEMENTED: &[Pending] = &[Pending {
    key: "backend.typing.use_api",
    instead: "the typing backend types only fortune quotes yet; remove the setting or set \
                  it to false",
    needs: |config| config.backend.typing.use_api,
}];

/// Refuses a configuration that needs a feature listed in `NOT_YET_IMPLEMENTED`, naming every
/// such key at once.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    let keys: Vec<(&'static str, &'static str)> = NOT_YET_IMPLEMENTED
        .iter()
        .filter(|pending| (pending.needs)(config))
        .map(|pending| (pending.key, pending.instead))
        .collect();
    if keys.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::NotImplemented { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ContentFormat, LangGraphOutput, LangGraphProfileSpec};
    use std::num::NonZeroUsize;
    use std::path::PathBuf;
    use std::time::Duration;

    fn keys(config: &Config) -> Vec<&'static str> {
        match check(config) {
            Ok(()) => Vec::new(),
            Err(ConfigError::NotImplemented { keys }) => {
                keys.into_iter().map(|(key, _)| key).collect()
            }
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn defaults_and_inert_values_load() {
        let mut config = Config::default();
        assert_eq!(keys(&config), Vec::<&str>::new());
        config.server.workers = NonZeroUsize::new(1);
        config.server.data_dir = Some(PathBuf::from("/srv/handoff"));
        config.server.max_attachment_bytes = 1 << 20;
        config.server.resume_buffer_bytes = 1 << 20;
        // Built: resumable streams.
        config.server.resume_window = Duration::from_secs(30);
        config.backend.provider = "openai".into();
        // Built: handoffs pick among allowed backends, LangGraph profiles, raw output,
        // attachments in either content format.
        config.backend.allowed = vec!["openai".into(), "langgraph".into(), "typing".into()];
        config.backend.langgraph.output = LangGraphOutput::Raw;
        config.backend.langgraph.content_format = ContentFormat::Anthropic;
        config.backend.langgraph.profiles.insert(
            "sales".into(),
            LangGraphProfileSpec {
                output: Some(LangGraphOutput::Translate),
                content_format: Some(ContentFormat::Anthropic),
                ..LangGraphProfileSpec::default()
            },
        );
        config.backend.typing.default_model = Some("gpt-4o".into());
        config.backend.upstream.sse_max_line_bytes = 256 << 10;
        assert_eq!(keys(&config), Vec::<&str>::new());
    }

    #[test]
    fn each_missing_feature_is_named() {
        let mut config = Config::default();
        config.server.workers = NonZeroUsize::new(2);
        config.backend.typing.use_api = true;
        let named = keys(&config);
        let every: Vec<&str> = NOT_YET_IMPLEMENTED
            .iter()
            .map(|pending| pending.key)
            .collect();
        assert_eq!(named, every);
        let message = check(&config).expect_err("refused").to_string();
        assert!(
            message.starts_with("backend.typing.use_api is recognised but not implemented"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }
}
