//! Settings: the typed configuration and its built-in defaults.
//!
//! Sources, highest first: flags, environment, YAML file, defaults. This module knows nothing of
//! sockets or files beyond reading the configuration file itself.
//!
//! | file | concern |
//! |---|---|
//! | `yaml.rs` | the YAML subset, text to a tree of positioned nodes |
//! | `file.rs` | the tree applied over a `Config`; unknown keys, did-you-mean |
//! | `env.rs` | environment variables |
//! | `flags.rs` | Go-style flags and the usage text |
//! | `setting.rs` | one parse-check-store function per setting, shared by the three sources |
//! | `units.rs` | Go durations, integers with base prefixes, booleans, sizes |
//! | `validate.rs` | value rules, and the rules across settings |
//! | `error.rs` | `ConfigError` |

mod env;
mod error;
mod file;
mod flags;
mod setting;
pub mod units;
mod validate;
mod yaml;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ConfigError;
pub use flags::go_style_args;

/// What the command line asks the process to do.
// Built once per process and moved straight into `run`: boxing the config would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Invocation {
    /// Run the daemon with this validated configuration.
    Run(Config),
    /// Print this usage text to stdout and exit 0.
    Help(String),
    /// Print this version line to stdout and exit 0.
    Version(String),
}

/// Builds the configuration from `args` (without the program name), the environment as seen
/// through `env`, and the `-config` file, which is the only I/O done here. Precedence: flags,
/// then environment, then file, then built-in defaults. The result is fully validated.
pub fn load(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Invocation, ConfigError> {
    let command_line = flags::parse(args)?;
    match command_line.request {
        flags::Request::Help => return Ok(Invocation::Help(flags::usage())),
        flags::Request::Version => {
            return Ok(Invocation::Version(format!(
                "streaming-daemon {}",
                env!("CARGO_PKG_VERSION")
            )));
        }
        flags::Request::Run => {}
    }
    let mut config = Config::default();
    if let Some(path) = &command_line.config_path {
        file::apply_file(&mut config, path)?;
    }
    env::apply(&mut config, env)?;
    command_line.apply(&mut config)?;
    validate::check(&config)?;
    Ok(Invocation::Run(config))
}

/// Which kind of Unix socket Apache's module connects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    Stream,
    SeqPacket,
}

impl SocketType {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::Stream => "stream",
            SocketType::SeqPacket => "seqpacket",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub backend: BackendConfig,
    pub metrics: MetricsConfig,
    pub logging: LoggingConfig,
    /// `-benchmark`: skip metric updates and print a summary at exit.
    pub benchmark: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub socket_path: PathBuf,
    pub socket_mode: u32,
    pub socket_type: SocketType,
    /// Concurrent client streams plus handoffs in progress.
    pub max_connections: usize,
    /// Zero means no limit.
    pub max_stream_duration: Duration,
    pub max_handoff_bytes: usize,
    pub handoff_timeout: Duration,
    /// A client that accepts no bytes for this long is dropped.
    pub write_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Bytes held in all connection buffers together; `None` means no limit.
    pub mem_limit: Option<u64>,
    /// Accepted for compatibility with the Go daemon; has no effect.
    pub pprof_addr: Option<String>,
    /// Accepted for compatibility with the Go daemon; has no effect.
    pub gc_percent: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    pub provider: String,
    pub default_model: String,
    pub openai: OpenAiConfig,
    pub langgraph: LangGraphConfig,
    pub mock: MockConfig,
    pub typing: TypingConfig,
    pub upstream: UpstreamTimeouts,
}

/// `Debug` is written by hand so that the API key never reaches a log line.
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    pub api_key: Option<String>,
    pub api_base: String,
    pub api_socket: Option<PathBuf>,
    pub http2_enabled: bool,
    pub insecure_ssl: bool,
    pub ca_file: Option<PathBuf>,
}

/// `Debug` is written by hand so that the API key never reaches a log line.
#[derive(Clone, PartialEq)]
pub struct LangGraphConfig {
    pub api_key: Option<String>,
    pub api_base: String,
    pub api_socket: Option<PathBuf>,
    pub assistant_id: String,
    pub stream_mode: String,
    pub http2_enabled: bool,
    pub insecure_ssl: bool,
    pub ca_file: Option<PathBuf>,
}

/// Shows whether a secret is set, never the secret.
fn redacted(secret: &Option<String>) -> &'static str {
    match secret {
        Some(_) => "Some(<redacted>)",
        None => "None",
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field fails to compile until it is shown here.
        let OpenAiConfig {
            api_key,
            api_base,
            api_socket,
            http2_enabled,
            insecure_ssl,
            ca_file,
        } = self;
        f.debug_struct("OpenAiConfig")
            .field("api_key", &format_args!("{}", redacted(api_key)))
            .field("api_base", api_base)
            .field("api_socket", api_socket)
            .field("http2_enabled", http2_enabled)
            .field("insecure_ssl", insecure_ssl)
            .field("ca_file", ca_file)
            .finish()
    }
}

impl fmt::Debug for LangGraphConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field fails to compile until it is shown here.
        let LangGraphConfig {
            api_key,
            api_base,
            api_socket,
            assistant_id,
            stream_mode,
            http2_enabled,
            insecure_ssl,
            ca_file,
        } = self;
        f.debug_struct("LangGraphConfig")
            .field("api_key", &format_args!("{}", redacted(api_key)))
            .field("api_base", api_base)
            .field("api_socket", api_socket)
            .field("assistant_id", assistant_id)
            .field("stream_mode", stream_mode)
            .field("http2_enabled", http2_enabled)
            .field("insecure_ssl", insecure_ssl)
            .field("ca_file", ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Pause between two events; zero means none.
    pub message_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypingConfig {
    pub fortune_path: PathBuf,
}

/// Limits for calls to upstream APIs (ours; the Go daemon had none).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTimeouts {
    pub connect_timeout: Duration,
    pub response_header_timeout: Duration,
    /// Longest silence between two upstream body reads.
    pub idle_gap_timeout: Duration,
    /// How long an unused keep-alive connection stays in the pool.
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_origin: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub listen_addr: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    pub level: log::LevelFilter,
    pub format: LogFormat,
}

impl Config {
    /// Warnings to log once logging is up: settings accepted for compatibility that do nothing,
    /// and choices that weaken security or will make every upstream request fail.
    pub fn startup_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(percent) = self.server.gc_percent {
            notes.push(format!(
                "server.gc_percent ({percent}) has no effect: this daemon has no garbage collector; \
                 bound its memory with server.mem_limit"
            ));
        }
        if self.server.pprof_addr.is_some() {
            notes.push(
                "server.pprof_addr has no effect: Go's pprof profiler does not exist here; profile with \
                 perf or similar"
                    .to_string(),
            );
        }
        let http2_keys: Vec<&str> = [
            (
                "backend.openai.http2_enabled",
                self.backend.openai.http2_enabled,
            ),
            (
                "backend.langgraph.http2_enabled",
                self.backend.langgraph.http2_enabled,
            ),
        ]
        .into_iter()
        .filter_map(|(key, on)| on.then_some(key))
        .collect();
        if !http2_keys.is_empty() {
            let verb = if http2_keys.len() == 1 { "has" } else { "have" };
            notes.push(format!(
                "{} {verb} no effect: the daemon speaks HTTP/1.1 to upstreams, with a keep-alive pool",
                http2_keys.join(" and ")
            ));
        }
        let upstream = match self.backend.provider.as_str() {
            "openai" => Some((
                "openai",
                "OPENAI_API_KEY",
                &self.backend.openai.api_key,
                self.backend.openai.insecure_ssl,
            )),
            "langgraph" => Some((
                "langgraph",
                "LANGGRAPH_API_KEY",
                &self.backend.langgraph.api_key,
                self.backend.langgraph.insecure_ssl,
            )),
            _ => None,
        };
        if let Some((name, key_var, api_key, insecure_ssl)) = upstream {
            if insecure_ssl {
                notes.push(format!(
                    "INSECURE: backend.{name}.insecure_ssl is on: the {name} upstream's TLS certificate is \
                     NOT verified, so anyone on the path can read prompts, answers and the API key"
                ));
            }
            if api_key.is_none() {
                notes.push(format!(
                    "no API key for the {name} backend: set {key_var} (or backend.{name}.api_key); \
                     requests go out without one"
                ));
            }
        }
        notes
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                socket_path: PathBuf::from("/var/run/streaming-daemon.sock"),
                socket_mode: 0o660,
                socket_type: SocketType::Stream,
                max_connections: 50_000,
                max_stream_duration: Duration::from_millis(300_000),
                max_handoff_bytes: 65_536,
                handoff_timeout: Duration::from_secs(5),
                write_timeout: Duration::from_secs(30),
                shutdown_timeout: Duration::from_millis(120_000),
                mem_limit: None,
                pprof_addr: None,
                gc_percent: None,
            },
            backend: BackendConfig {
                provider: "mock".to_string(),
                default_model: "gpt-4o-mini".to_string(),
                openai: OpenAiConfig {
                    api_key: None,
                    api_base: "https://api.openai.com/v1".to_string(),
                    api_socket: None,
                    http2_enabled: false,
                    insecure_ssl: false,
                    ca_file: None,
                },
                langgraph: LangGraphConfig {
                    api_key: None,
                    api_base: "https://api.langchain.com/v1".to_string(),
                    api_socket: None,
                    assistant_id: "agent".to_string(),
                    stream_mode: "messages-tuple".to_string(),
                    http2_enabled: false,
                    insecure_ssl: false,
                    ca_file: None,
                },
                mock: MockConfig {
                    message_delay: Duration::from_millis(50),
                },
                typing: TypingConfig {
                    fortune_path: PathBuf::from("/usr/games/fortune"),
                },
                upstream: UpstreamTimeouts {
                    connect_timeout: Duration::from_secs(10),
                    response_header_timeout: Duration::from_secs(60),
                    idle_gap_timeout: Duration::from_secs(120),
                    pool_idle_timeout: Duration::from_secs(90),
                    pool_max_idle_per_origin: 64,
                },
            },
            metrics: MetricsConfig {
                enabled: true,
                listen_addr: "127.0.0.1:9090".to_string(),
            },
            logging: LoggingConfig {
                level: log::LevelFilter::Info,
                format: LogFormat::Text,
            },
            benchmark: false,
        }
    }
}

#[cfg(test)]
mod tests;
