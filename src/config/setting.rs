//! Every setting's text form, parsed, checked and stored: one function per setting, shared by the
//! file, the environment and the flags so that a value means the same wherever it is written.
//!
//! A setter's error says what is expected, never what was found: the caller adds where the text
//! came from. The errors of the API key setters never quote the key.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::units::{
    parse_bool, parse_go_duration, parse_int, parse_millis, parse_mode, parse_size,
};
use super::validate::{self, MAX_HANDOFF_BYTES_LIMIT, MAX_WORKERS, PROVIDERS};
use super::{Config, LogFormat, SocketType};

pub type Setter = fn(&mut Config, &str) -> Result<(), String>;
/// A setting whose value is a list. On error, the index of the item at fault and the message.
pub type ListSetter = fn(&mut Config, &[&str]) -> Result<(), (usize, String)>;
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

/// A size in bytes (`256KiB`) that must fit in memory.
fn size(field: &mut usize, text: &str) -> Outcome {
    let bytes = parse_size(text)?;
    store(
        field,
        usize::try_from(bytes).map_err(|_| "the size is too large".to_string()),
    )
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

/// `-socket` (ours): a relative path is accepted here and made absolute against the working
/// directory once every source is applied (`config::load`).
pub fn socket_path_flag(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.server.socket_path,
        validate::non_empty(text).map(PathBuf::from),
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

/// Empty turns attachment files off.
pub fn data_dir(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.server.data_dir,
        validate::optional_absolute_path(text),
    )
}

pub fn max_attachment_bytes(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.server.max_attachment_bytes, parse_size(text))
}

/// Zero turns the sweep off.
pub fn data_max_age_ms(config: &mut Config, text: &str) -> Outcome {
    millis(&mut config.server.data_max_age, text)
}

pub fn workers(config: &mut Config, text: &str) -> Outcome {
    let workers = count(text, 1)?;
    if workers > MAX_WORKERS {
        return Err(format!("must be at most {MAX_WORKERS}"));
    }
    config.server.workers = NonZeroUsize::new(workers);
    Ok(())
}

/// Zero turns resuming off.
pub fn resume_window_ms(config: &mut Config, text: &str) -> Outcome {
    millis(&mut config.server.resume_window, text)
}

pub fn resume_window(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.server.resume_window, parse_go_duration(text))
}

pub fn resume_buffer_bytes(config: &mut Config, text: &str) -> Outcome {
    size(&mut config.server.resume_buffer_bytes, text)
}

pub fn provider(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.provider,
        validate::one_of(text, PROVIDERS),
    )
}

/// `backend.allowed`: known backend names; a name given twice counts once.
pub fn allowed(config: &mut Config, names: &[&str]) -> Result<(), (usize, String)> {
    let mut allowed: Vec<String> = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let name = validate::one_of(name, PROVIDERS).map_err(|message| (index, message))?;
        if !allowed.contains(&name) {
            allowed.push(name);
        }
    }
    config.backend.allowed = allowed;
    Ok(())
}

pub fn default_model(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.backend.default_model, validate::non_empty(text))
}

pub fn openai_api_key(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.backend.openai.api_key, validate::api_key(text))
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
    store(
        &mut config.backend.langgraph.api_key,
        validate::api_key(text),
    )
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

/// Any mode LangGraph may know; `Config::startup_notes` warns about one outside
/// `KNOWN_STREAM_MODES`.
pub fn langgraph_stream_mode(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.langgraph.stream_mode,
        validate::non_empty(text),
    )
}

pub fn langgraph_content_format(config: &mut Config, text: &str) -> Outcome {
    store(
        &mut config.backend.langgraph.content_format,
        validate::content_format(text),
    )
}

pub fn langgraph_output(config: &mut Config, text: &str) -> Outcome {
    store(&mut config.backend.langgraph.output, validate::output(text))
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

pub fn typing_use_api(config: &mut Config, text: &str) -> Outcome {
    boolean(&mut config.backend.typing.use_api, text)
}

/// Empty means none: `backend.default_model` applies.
pub fn typing_default_model(config: &mut Config, text: &str) -> Outcome {
    optional_text(&mut config.backend.typing.default_model, text)
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

pub fn sse_max_line_bytes(config: &mut Config, text: &str) -> Outcome {
    size(&mut config.backend.upstream.sse_max_line_bytes, text)
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
    fn new_server_settings() {
        assert_eq!(set(data_dir, "").map(|c| c.server.data_dir), Ok(None));
        assert_eq!(
            set(data_dir, "/srv/data").map(|c| c.server.data_dir),
            Ok(Some(PathBuf::from("/srv/data")))
        );
        assert_eq!(
            set(data_dir, "data").err(),
            Some("must be an absolute path (starting with /)".into())
        );
        assert_eq!(
            set(workers, "4").map(|c| c.server.workers),
            Ok(NonZeroUsize::new(4))
        );
        assert_eq!(set(workers, "0").err(), Some("must be at least 1".into()));
        assert_eq!(
            set(workers, "1025").err(),
            Some("must be at most 1024".into())
        );
        assert_eq!(
            set(resume_window, "2.5s").map(|c| c.server.resume_window),
            Ok(Duration::from_millis(2500))
        );
        assert_eq!(
            set(resume_buffer_bytes, "1MiB").map(|c| c.server.resume_buffer_bytes),
            Ok(1 << 20)
        );
        assert_eq!(
            set(max_attachment_bytes, "0").err(),
            Some("a size must be greater than zero".into())
        );
        assert_eq!(
            set(socket_path_flag, "run/x.sock").map(|c| c.server.socket_path),
            Ok(PathBuf::from("run/x.sock"))
        );
        assert_eq!(
            set(socket_path_flag, "").err(),
            Some("must not be empty".into())
        );
    }

    #[test]
    fn allowed_backends_are_known_names_without_repeats() {
        let mut config = Config::default();
        assert_eq!(
            allowed(&mut config, &["typing", "openai", "typing"]),
            Ok(())
        );
        assert_eq!(config.backend.allowed, ["typing", "openai"]);
        assert_eq!(
            allowed(&mut config, &["mock", "gemini"]),
            Err((1, "must be one of: langgraph, mock, openai, typing".into()))
        );
        assert_eq!(allowed(&mut config, &[]), Ok(()));
        assert!(config.backend.allowed.is_empty());
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
            set(langgraph_stream_mode, "my-mode").map(|c| c.backend.langgraph.stream_mode),
            Ok("my-mode".into()),
            "an unknown mode is a start-up warning, not an error"
        );
        assert_eq!(
            set(langgraph_stream_mode, "").err(),
            Some("must not be empty".into())
        );
        assert_eq!(
            set(langgraph_content_format, "OpenAI").err(),
            Some("must be \"openai\" or \"anthropic\", got \"OpenAI\"".into())
        );
        assert_eq!(
            set(langgraph_content_format, "anthropic").map(|c| c.backend.langgraph.content_format),
            Ok(super::super::ContentFormat::Anthropic)
        );
        assert_eq!(
            set(langgraph_output, "Raw").err(),
            Some("must be \"translate\" or \"raw\", got \"Raw\"".into())
        );
        assert_eq!(
            set(langgraph_output, "raw").map(|c| c.backend.langgraph.output),
            Ok(super::super::LangGraphOutput::Raw)
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
