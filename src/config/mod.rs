//! Settings: the typed configuration and its built-in defaults.
//!
//! Sources, highest first: flags, environment, YAML file, defaults. This module knows nothing of
//! sockets; its only I/O is reading the configuration file and, for a relative `-socket`, the
//! working directory.
//!
//! | file | concern |
//! |---|---|
//! | `yaml.rs` | the YAML subset, text to a tree of positioned nodes |
//! | `file.rs` | the tree applied over a `Config`; unknown keys, did-you-mean |
//! | `env.rs` | environment variables |
//! | `flags.rs` | Go-style flags and the usage text |
//! | `setting.rs` | one parse-check-store function per setting, shared by the three sources |
//! | `profile.rs` | LangGraph profiles: as written, and resolved over the default profile |
//! | `units.rs` | Go durations, integers with base prefixes, booleans, sizes |
//! | `validate.rs` | value rules, and the rules across settings |
//! | `notes.rs` | what to log at start-up about inert or risky settings |
//! | `reload.rs` | which keys a reload changed, and the configuration it applies |
//! | `error.rs` | `ConfigError` |

mod env;
mod error;
mod file;
mod flags;
mod notes;
mod profile;
mod reload;
mod setting;
pub mod units;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ConfigError;
pub use flags::go_style_args;
pub use notes::StartupNote;
pub use profile::{LangGraphProfile, LangGraphProfileSpec};
pub use reload::{plan_reload, ReloadPlan};
pub use validate::{KNOWN_STREAM_MODES, PROVIDERS};

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
        config.config_file = Some(path.clone());
    }
    env::apply(&mut config, env)?;
    command_line.apply(&mut config)?;
    absolute_socket_path(&mut config)?;
    validate::check(&config)?;
    Ok(Invocation::Run(config))
}

/// The configuration a file's `text` gives over the built-in defaults, validated as [`load`]
/// validates; `file` names it in errors. Reads nothing, and no environment or flags apply: this
/// is the YAML reader as the fuzz targets (`fuzz/`) and a config check see it.
pub fn from_yaml_text(file: &str, text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    file::apply_text(&mut config, file, text)?;
    validate::check(&config)?;
    Ok(config)
}

/// `-socket` may be relative (ours): it is made absolute against the working directory now, so
/// that the daemon logs and binds the same path whatever it does later. The file's
/// `socket_path` is absolute already (checked where it is read).
fn absolute_socket_path(config: &mut Config) -> Result<(), ConfigError> {
    let path = &config.server.socket_path;
    if path.is_absolute() {
        return Ok(());
    }
    let cwd = std::env::current_dir().map_err(|error| ConfigError::Invalid {
        message: format!(
            "-socket {} is relative and the working directory cannot be read ({error}); give an \
             absolute path",
            path.display()
        ),
    })?;
    // Collecting components drops `.` segments, so `./x.sock` is logged as `<cwd>/x.sock`.
    config.server.socket_path = cwd.join(path).components().collect();
    Ok(())
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

/// How a LangGraph profile shapes attachments and images (SPEC §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentFormat {
    /// OpenAI content parts; PDFs make no part.
    OpenAi,
    /// Anthropic content blocks: binary files become `document` parts.
    Anthropic,
}

impl ContentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentFormat::OpenAi => "openai",
            ContentFormat::Anthropic => "anthropic",
        }
    }
}

/// What a LangGraph profile sends the client (SPEC §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LangGraphOutput {
    /// Our content events and `[DONE]`.
    Translate,
    /// The upstream's SSE events, byte for byte.
    Raw,
}

impl LangGraphOutput {
    pub fn as_str(self) -> &'static str {
        match self {
            LangGraphOutput::Translate => "translate",
            LangGraphOutput::Raw => "raw",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub backend: BackendConfig,
    pub metrics: MetricsConfig,
    pub logging: LoggingConfig,
    /// `-benchmark`: skip metric updates and print a summary at exit.
    pub benchmark: bool,
    /// `GOMEMLIMIT` and `GOGC`, those found set: they have no effect here, which a start-up note
    /// says once. Not a key: a reload never reports it.
    pub go_runtime_vars: Vec<&'static str>,
    /// The `-config` file, if one was given: what a SIGHUP reloads. Not a key.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// Every API key the configuration holds (profiles' too): masked in every log line.
    pub fn secrets(&self) -> Vec<String> {
        let langgraph = &self.backend.langgraph;
        [&self.backend.openai.api_key, &langgraph.api_key]
            .into_iter()
            .chain(langgraph.profiles.values().map(|profile| &profile.api_key))
            .flatten()
            .cloned()
            .collect()
    }
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
    /// Where PHP stages attachment files; absolute. `None` (`data_dir: ""`) turns files off:
    /// a handoff that names any gets 400.
    pub data_dir: Option<PathBuf>,
    /// Most bytes of files plus decoded inline images one handoff may send.
    pub max_attachment_bytes: u64,
    /// Files in `data_dir` older than this are swept; zero means no sweep.
    pub data_max_age: Duration,
    /// Reactor threads; `None` means one per CPU this process may run on
    /// (see `ServerConfig::worker_count`).
    pub workers: Option<NonZeroUsize>,
    /// How long a stream whose client left stays resumable; zero turns resuming off.
    pub resume_window: Duration,
    /// Most encoded event bytes kept for one detached stream.
    pub resume_buffer_bytes: usize,
}

impl ServerConfig {
    /// The number of reactor threads to run: `workers`, else the CPUs this process may run on
    /// (its affinity mask and cgroup quota), at least 1.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            Some(workers) => workers.get(),
            None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    pub provider: String,
    /// Backends a handoff may pick with its `backend` key, besides the provider, which is
    /// always allowed (see `BackendConfig::allowed_backends`). Known names, no duplicates.
    pub allowed: Vec<String>,
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

impl BackendConfig {
    /// Every backend a handoff may run on: the provider first, then `allowed` in order.
    pub fn allowed_backends(&self) -> Vec<&str> {
        let mut names = vec![self.provider.as_str()];
        for name in &self.allowed {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    }

    /// Whether `name` is the provider or listed in `allowed`.
    pub fn is_allowed(&self, name: &str) -> bool {
        self.provider == name || self.allowed.iter().any(|allowed| allowed == name)
    }
}

/// `backend.langgraph`: the default profile's settings, and the named profiles written under
/// `profiles`. `LangGraphConfig::profile` resolves a name to its settings (SPEC §4.4).
/// `Debug` is written by hand so that the API key never reaches a log line.
#[derive(Clone, PartialEq)]
pub struct LangGraphConfig {
    pub api_key: Option<String>,
    pub api_base: String,
    pub api_socket: Option<PathBuf>,
    pub assistant_id: String,
    /// Any non-empty text: LangGraph knows more modes than we translate, and an unknown one is
    /// a start-up warning, not an error (SPEC §5).
    pub stream_mode: String,
    pub http2_enabled: bool,
    pub insecure_ssl: bool,
    pub ca_file: Option<PathBuf>,
    pub content_format: ContentFormat,
    pub output: LangGraphOutput,
    /// Named profiles as written, by name (never empty: `""` selects the default profile).
    pub profiles: BTreeMap<String, LangGraphProfileSpec>,
}

/// Shows whether a secret is set, never the secret.
pub(crate) fn redacted(secret: &Option<String>) -> &'static str {
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
            content_format,
            output,
            profiles,
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
            .field("content_format", content_format)
            .field("output", output)
            .field("profiles", profiles)
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
    /// Type answers from a chat-completions call with the openai settings instead of fortune.
    pub use_api: bool,
    /// The model for `use_api` when the handoff names none; `None` falls back to
    /// `backend.default_model`.
    pub default_model: Option<String>,
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
    /// Longest upstream SSE line, and longest event data; more is an `upstream_error`.
    pub sse_max_line_bytes: usize,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                socket_path: PathBuf::from("/var/run/streaming-daemon.sock"),
                socket_mode: 0o660,
                socket_type: SocketType::Stream,
                max_connections: 50_000,
                max_stream_duration: Duration::from_millis(300_000),
                max_handoff_bytes: 131_072,
                handoff_timeout: Duration::from_secs(5),
                write_timeout: Duration::from_secs(30),
                shutdown_timeout: Duration::from_millis(120_000),
                mem_limit: None,
                pprof_addr: None,
                gc_percent: None,
                data_dir: Some(PathBuf::from("/run/handoff-data")),
                max_attachment_bytes: 32 << 20,
                data_max_age: Duration::ZERO,
                workers: None,
                resume_window: Duration::ZERO,
                resume_buffer_bytes: 256 << 10,
            },
            backend: BackendConfig {
                provider: "mock".to_string(),
                allowed: Vec::new(),
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
                    content_format: ContentFormat::OpenAi,
                    output: LangGraphOutput::Translate,
                    profiles: BTreeMap::new(),
                },
                mock: MockConfig {
                    message_delay: Duration::from_millis(50),
                },
                typing: TypingConfig {
                    fortune_path: PathBuf::from("/usr/games/fortune"),
                    use_api: false,
                    default_model: None,
                },
                upstream: UpstreamTimeouts {
                    connect_timeout: Duration::from_secs(10),
                    response_header_timeout: Duration::from_secs(60),
                    idle_gap_timeout: Duration::from_secs(120),
                    pool_idle_timeout: Duration::from_secs(90),
                    pool_max_idle_per_origin: 64,
                    sse_max_line_bytes: 256 << 10,
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
            go_runtime_vars: Vec::new(),
            config_file: None,
        }
    }
}

#[cfg(test)]
mod spec_tests;
#[cfg(test)]
mod tests;
