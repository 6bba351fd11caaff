//! Every setting's text form, parsed, checked and stored: one function per setting, shared by the
//! file, the environment and the flags so that a value means the same wherever it is written.
//!
//! A setter's error says what is expected, never what was found: the caller adds where the text
//! came from. Setters for API keys accept any text, so a key can never end up in a message.

use std::path::PathBuf;
use std::time::Duration;

use super::units::{
    parse_bool, parse_go_duration, parse_int, parse_millis, parse_mode, parse_size,
};
use super::validate::{self, MAX_HANDOFF_BYTES_LIMIT, PROVIDERS, STREAM_MODES};
use super::{Config, LogFormat, SocketType};

pub type Setter = fn(&mut Config, &str) -> Result<(), String>;
type Outcome = Result<(), String>;

fn store<T>(field: &mut T, parsed: Result<T, String>) -> Outcome {
    *field = parsed?;
    Ok(())
}

fn millis(field: &mut Duration, text: &str) -> Outcome {
    store(field, parse_millis(text))
}

fn positive_millis(field: &mut Duration, text: &str) -> Outcome {
    store(field, parse_millis(text).and_then(validate::positive))
}

fn positive_go_duration(field: &mut Duration, text: &str) -> Outcome {
    store(field, parse_go_duration(text).and_then(validate::positive))
}

fn boolean(field: &mut bool, text: &str) -> Outcome {
    store(field, parse_bool(text))
}

fn url(field: &mut String, text: &str) -> Outcome {
    store(field, validate::http_url(text))
}

/// Empty means "not set", as in the Go daemon, where these were plain strings.
fn optional_text(field: &mut Option<String>, text: &str) -> Outcome {
    *field = Some(text.to_string()).filter(|text| !text.is_empty());
    Ok(())
}

fn optional_path(field: &mut Option<PathBuf>, text: &str) -> Outcome {
    *field = Some(PathBuf::from(text)).filter(|_| !text.is_empty());
    Ok(())
}

fn count(text: &str, minimum: i64) -> Result<usize, String> {
    let value = parse_int(text)?;
    if value < minimum {
        return Err(format!("must be at least {minimum}"));
    }
    usize::try_from(value).map_err(|_| "the number is too large".to_string())
}

pub fn socket_path(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.server.socket_path,
        validate::absolute_path(text),
    )
}

pub fn socket_mode(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.server.socket_mode, parse_mode(text))
}

pub fn socket_type(config: &mut Config, text: &str) -> Outcome {
    config.server.socket_type = match text {
        "stream" => SocketType::Stream,
        "seqpacket" => SocketType::SeqPacket,
        _ => {
            return Err(
                "must be stream (the mod_socket_handoff most run) or seqpacket (the newest)"
                    .to_string(),
            )
        }
    };
    Ok(())
}

pub fn max_connections(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.server.max_connections, count(text, 1))
}

pub fn max_stream_duration_ms(config: &mut Config, text: &str) -> Outcome {
    millis(&mut config.server.max_stream_duration, text)
}

pub fn max_handoff_bytes(config: &mut Config, text: &str) -> Outcome {
    let bytes = parse_size(text)?;
    if bytes > MAX_HANDOFF_BYTES_LIMIT {
        return Err("must be at most 16MiB".to_string());
    }
    store(
        &mut config.server.max_handoff_bytes,
        usize::try_from(bytes).map_err(|_| "too large".to_string()),
    )
}

pub fn handoff_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    positive_millis(&mut config.server.handoff_timeout, text)
}

pub fn handoff_timeout(config: &mut Config, text: &str) -> Outcome {
    positive_go_duration(&mut config.server.handoff_timeout, text)
}

pub fn write_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    positive_millis(&mut config.server.write_timeout, text)
}

pub fn write_timeout(config: &mut Config, text: &str) -> Outcome {
    positive_go_duration(&mut config.server.write_timeout, text)
}

/// Zero is allowed: on SIGTERM, end every stream at once.
pub fn shutdown_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    millis(&mut config.server.shutdown_timeout, text)
}

pub fn shutdown_timeout(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.server.shutdown_timeout, parse_go_duration(text))
}

/// Empty means no limit, as the Go daemon's example file says.
pub fn mem_limit(config: &mut Config, text: &str) -> Outcome {
    let limit = if text.trim().is_empty() {
        Ok(None)
    } else {
        parse_size(text).map(Some)
    };
    store(&mut config.server.mem_limit, limit)
}

pub fn pprof_addr(config: &mut Config, text: &str) -> Outcome {
    optional_text(&mut config.server.pprof_addr, text)
}

pub fn gc_percent(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.server.gc_percent, parse_int(text).map(Some))
}

pub fn provider(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.provider,
        validate::one_of(text, PROVIDERS),
    )
}

pub fn default_model(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.backend.default_model, validate::non_empty(text))
}

pub fn openai_api_key(config: &mut Config, text: &str) -> Outcome {
    optional_text(&mut config.backend.openai.api_key, text)
}

pub fn openai_api_base(config: &mut Config, text: &str) -> Outcome {
    url(&mut config.backend.openai.api_base, text)
}

pub fn openai_api_socket(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.openai.api_socket,
        validate::optional_absolute_path(text),
    )
}

pub fn openai_http2_enabled(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.backend.openai.http2_enabled, text)
}

pub fn openai_insecure_ssl(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.backend.openai.insecure_ssl, text)
}

pub fn openai_ca_file(config: &mut Config, text: &str) -> Outcome {
    optional_path(&mut config.backend.openai.ca_file, text)
}

pub fn langgraph_api_key(config: &mut Config, text: &str) -> Outcome {
    optional_text(&mut config.backend.langgraph.api_key, text)
}

pub fn langgraph_api_base(config: &mut Config, text: &str) -> Outcome {
    url(&mut config.backend.langgraph.api_base, text)
}

pub fn langgraph_api_socket(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.langgraph.api_socket,
        validate::optional_absolute_path(text),
    )
}

pub fn langgraph_assistant_id(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.langgraph.assistant_id,
        validate::non_empty(text),
    )
}

pub fn langgraph_stream_mode(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.langgraph.stream_mode,
        validate::one_of(text, STREAM_MODES),
    )
}

pub fn langgraph_http2_enabled(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.backend.langgraph.http2_enabled, text)
}

pub fn langgraph_insecure_ssl(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.backend.langgraph.insecure_ssl, text)
}

pub fn langgraph_ca_file(config: &mut Config, text: &str) -> Outcome {
    optional_path(&mut config.backend.langgraph.ca_file, text)
}

pub fn message_delay_ms(config: &mut Config, text: &str) -> Outcome {
    millis(&mut config.backend.mock.message_delay, text)
}

pub fn message_delay(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.mock.message_delay,
        parse_go_duration(text),
    )
}

pub fn fortune_path(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.typing.fortune_path,
        validate::non_empty(text).map(PathBuf::from),
    )
}

pub fn connect_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    positive_millis(&mut config.backend.upstream.connect_timeout, text)
}

pub fn response_header_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    positive_millis(&mut config.backend.upstream.response_header_timeout, text)
}

pub fn idle_gap_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    positive_millis(&mut config.backend.upstream.idle_gap_timeout, text)
}

/// Zero is allowed: close upstream connections as soon as they are idle.
pub fn pool_idle_timeout_ms(config: &mut Config, text: &str) -> Outcome {
    millis(&mut config.backend.upstream.pool_idle_timeout, text)
}

pub fn pool_max_idle_per_origin(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.upstream.pool_max_idle_per_origin,
        count(text, 0),
    )
}

pub fn metrics_enabled(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.metrics.enabled, text)
}

/// Empty is allowed here; `validate::check` refuses it while metrics are enabled.
pub fn metrics_listen_addr(config: &mut Config, text: &str) -> Outcome {
    let address = if text.is_empty() {
        Ok(String::new())
    } else {
        validate::listen_addr(text)
    };
    store(&mut config.metrics.listen_addr, address)
}

/// `-metrics-addr`: an address turns metrics on there; an empty one turns them off (ours: the Go
/// daemon had no way to disable metrics from the command line).
pub fn metrics_addr_flag(config: &mut Config, text: &str) -> Outcome {
    config.metrics.enabled = !text.is_empty();
    metrics_listen_addr(config, text)
}

pub fn benchmark(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.benchmark, text)
}

pub fn log_level(config: &mut Config, text: &str) -> Outcome {
    config.logging.level = match text.to_ascii_lowercase().as_str() {
        "trace" => log::LevelFilter::Trace,
        "debug" => log::LevelFilter::Debug,
        "info" => log::LevelFilter::Info,
        "warn" | "warning" => log::LevelFilter::Warn,
        "error" => log::LevelFilter::Error,
        "off" => log::LevelFilter::Off,
        _ => {
            return Err(
                "must be one of: trace, debug, info, warn (or warning), error, off".to_string(),
            )
        }
    };
    Ok(())
}

pub fn log_format(config: &mut Config, text: &str) -> Outcome {
    config.logging.format = match text.to_ascii_lowercase().as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        _ => return Err("must be text or json".to_string()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(setter: Setter, text: &str) -> Result<Config, String> {
        let mut config = Config::default();
        setter(&mut config, text).map(|()| config)
    }

    #[test]
    fn empty_text_unsets_optional_settings() {
        let mut config = Config::default();
        config.server.pprof_addr = Some("localhost:6060".into());
        config.server.mem_limit = Some(1);
        config.backend.openai.api_key = Some("k".into());
        pprof_addr(&mut config, "").expect("accepted");
        mem_limit(&mut config, "").expect("accepted");
        openai_api_key(&mut config, "").expect("accepted");
        openai_api_socket(&mut config, "").expect("accepted");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn counts_and_limits() {
        assert_eq!(
            set(max_connections, "0").map(|c| c.server.max_connections),
            Err("must be at least 1".into())
        );
        assert_eq!(
            set(max_connections, "10").map(|c| c.server.max_connections),
            Ok(10)
        );
        assert_eq!(
            set(pool_max_idle_per_origin, "0").map(|c| c.backend.upstream.pool_max_idle_per_origin),
            Ok(0)
        );
        assert_eq!(
            set(max_handoff_bytes, "16MiB").map(|c| c.server.max_handoff_bytes),
            Ok(16 << 20)
        );
        assert_eq!(
            set(max_handoff_bytes, "1024").map(|c| c.server.max_handoff_bytes),
            Ok(1024)
        );
        assert_eq!(
            set(max_handoff_bytes, "17MiB").map(|c| c.server.max_handoff_bytes),
            Err("must be at most 16MiB".into())
        );
        assert_eq!(
            set(gc_percent, "-1").map(|c| c.server.gc_percent),
            Ok(Some(-1))
        );
    }

    #[test]
    fn timeouts_that_cannot_be_zero() {
        for setter in [handoff_timeout_ms, write_timeout_ms, connect_timeout_ms] {
            assert_eq!(
                set(setter, "0").err(),
                Some("must be greater than 0".to_string())
            );
        }
        assert_eq!(
            set(write_timeout, "0s").err(),
            Some("must be greater than 0".to_string())
        );
        assert_eq!(
            set(shutdown_timeout, "0").map(|c| c.server.shutdown_timeout),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            set(message_delay, "0").map(|c| c.backend.mock.message_delay),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            set(message_delay, "1.5s").map(|c| c.backend.mock.message_delay),
            Ok(Duration::from_millis(1500))
        );
    }

    #[test]
    fn metrics_address_flag_toggles_metrics() {
        let off = set(metrics_addr_flag, "").expect("accepted");
        assert!(!off.metrics.enabled);
        let mut config = off;
        metrics_addr_flag(&mut config, "127.0.0.1:9191").expect("accepted");
        assert!(config.metrics.enabled);
        assert_eq!(config.metrics.listen_addr, "127.0.0.1:9191");
    }

    #[test]
    fn names_from_fixed_lists() {
        assert_eq!(
            set(provider, "bogus").err(),
            Some("must be one of: langgraph, mock, openai, typing".into())
        );
        assert_eq!(
            set(langgraph_stream_mode, "events").err(),
            Some("must be one of: messages-tuple, messages, values, updates".into())
        );
        assert_eq!(
            set(log_level, "WARNING").map(|c| c.logging.level),
            Ok(log::LevelFilter::Warn)
        );
        assert_eq!(
            set(log_format, "JSON").map(|c| c.logging.format),
            Ok(LogFormat::Json)
        );
        assert_eq!(
            set(socket_type, "seqpacket").map(|c| c.server.socket_type),
            Ok(SocketType::SeqPacket)
        );
    }
}
