//! The rules values must follow (SPEC §5). Single values are checked as each source sets them, so
//! an error can name the file line, flag or variable it came from; `check` covers the rules that
//! involve several settings and runs once every source has been applied.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Config, ConfigError, ContentFormat, LangGraphOutput};

/// The backends the daemon registers. Kept here as plain names because configuration knows
/// nothing of the backends themselves; a test in the backends module can check the two agree.
pub const PROVIDERS: &[&str] = &["langgraph", "mock", "openai", "typing"];

/// LangGraph's stream modes. Any non-empty mode is accepted (a server may know more); one
/// outside this list is a start-up warning (SPEC §5). Only `messages-tuple` and `messages`
/// carry text the translator relays; the backend warns about the others.
pub const KNOWN_STREAM_MODES: &[&str] = &[
    "values",
    "messages",
    "messages-tuple",
    "updates",
    "events",
    "debug",
    "custom",
    "tasks",
    "checkpoints",
];

/// Apache's handoff data is one HTTP header value; 16 MiB is far beyond any header Apache accepts
/// and still keeps one handoff from pinning much memory.
pub const MAX_HANDOFF_BYTES_LIMIT: u64 = 16 << 20;

/// Reactor threads beyond this are a typo, not a plan: each holds its own buffers and pool.
pub const MAX_WORKERS: usize = 1024;

pub fn absolute_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err("must be an absolute path (starting with /)".to_string())
    }
}

/// An absolute path, or nothing when empty.
pub fn optional_absolute_path(text: &str) -> Result<Option<PathBuf>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        absolute_path(text).map(Some)
    }
}

/// An API key as a file, a variable or a flag writes it. Surrounding whitespace is dropped (an
/// env file saved with CRLF line ends leaves a `\r` at the end of the value; a pasted key may
/// bring a space or a newline), and what is left empty means "not set". The key is sent as an
/// HTTP header, which cannot carry a control character: one inside it would fail every request
/// with a 500, so it stops the start (or the reload) here instead. The error never quotes the
/// key, only where the character is.
pub fn api_key(text: &str) -> Result<Option<String>, String> {
    let key = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(index) = key.bytes().position(|b| b.is_ascii_control()) {
        return Err(format!(
            "must not hold a control character (byte 0x{:02x} at position {} of the key): an \
             API key is sent as an HTTP header, which cannot carry one; set the key again \
             without it",
            key.as_bytes()[index],
            index + 1
        ));
    }
    Ok(Some(key.to_string()).filter(|key| !key.is_empty()))
}

pub fn http_url(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
            Ok(text.trim_end_matches('/').to_string())
        }
        _ => Err("must be a URL starting with http:// or https:// and a host".to_string()),
    }
}

pub fn one_of(text: &str, choices: &[&str]) -> Result<String, String> {
    if choices.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("must be one of: {}", choices.join(", ")))
    }
}

/// `content_format`: exactly `openai` or `anthropic`, in that case (SPEC §5).
pub fn content_format(text: &str) -> Result<ContentFormat, String> {
    match text {
        "openai" => Ok(ContentFormat::OpenAi),
        "anthropic" => Ok(ContentFormat::Anthropic),
        _ => Err(format!("must be \"openai\" or \"anthropic\", got {text:?}")),
    }
}

/// `output`: exactly `translate` or `raw`.
pub fn output(text: &str) -> Result<LangGraphOutput, String> {
    match text {
        "translate" => Ok(LangGraphOutput::Translate),
        "raw" => Ok(LangGraphOutput::Raw),
        _ => Err(format!("must be \"translate\" or \"raw\", got {text:?}")),
    }
}

pub fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(text.to_string())
    }
}

/// Timeouts where zero would mean "fail at once", which no operator wants.
pub fn positive(duration: Duration) -> Result<Duration, String> {
    if duration.is_zero() {
        Err("must be greater than 0".to_string())
    } else {
        Ok(duration)
    }
}

/// An IP address and port. Go's `:9090` (every interface) and `localhost:9090` are accepted and
/// written as the addresses they mean, because configuration does no name lookups.
pub fn listen_addr(text: &str) -> Result<String, String> {
    let normalized = if let Some(port) = text.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = text.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        text.to_string()
    };
    match normalized.parse::<SocketAddr>() {
        Ok(_) => Ok(normalized),
        Err(_) => {
            Err("must be an IP address and port such as 127.0.0.1:9090 or [::1]:9090".to_string())
        }
    }
}

/// Rules that involve more than one setting.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    if config.metrics.enabled && config.metrics.listen_addr.is_empty() {
        return Err(ConfigError::Invalid {
            message:
                "metrics are enabled but metrics.listen_addr is empty; set an address such as \
                      127.0.0.1:9090, or disable metrics (metrics.enabled: false or -metrics-addr=)"
                    .to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute() {
        assert_eq!(
            absolute_path("/run/x.sock"),
            Ok(PathBuf::from("/run/x.sock"))
        );
        assert_eq!(
            absolute_path("x.sock"),
            Err("must be an absolute path (starting with /)".to_string())
        );
        assert_eq!(optional_absolute_path(""), Ok(None));
        assert!(optional_absolute_path("rel/x").is_err());
    }

    #[test]
    fn urls_need_an_http_scheme_and_a_host() {
        assert_eq!(
            http_url("https://api.openai.com/v1/"),
            Ok("https://api.openai.com/v1".to_string())
        );
        assert_eq!(
            http_url("HTTP://127.0.0.1:8080"),
            Ok("HTTP://127.0.0.1:8080".to_string())
        );
        for bad in ["api.openai.com", "ftp://x", "https://", "https:///v1", ""] {
            assert!(http_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            listen_addr("127.0.0.1:9090"),
            Ok("127.0.0.1:9090".to_string())
        );
        assert_eq!(listen_addr("[::1]:9090"), Ok("[::1]:9090".to_string()));
        assert_eq!(listen_addr(":9090"), Ok("0.0.0.0:9090".to_string()));
        assert_eq!(
            listen_addr("localhost:9090"),
            Ok("127.0.0.1:9090".to_string())
        );
        for bad in [
            "9090",
            "example.com:80",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":x",
        ] {
            assert!(listen_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_need_an_address_when_enabled() {
        let mut config = Config::default();
        config.metrics.listen_addr.clear();
        assert!(check(&config).is_err());
        config.metrics.enabled = false;
        assert_eq!(check(&config), Ok(()));
    }
}
