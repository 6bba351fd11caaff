//! Settings: the typed configuration and its built-in defaults.
//!
//! Sources, highest first: flags, environment, YAML file, defaults. This module knows nothing of
//! sockets or files beyond reading the configuration file itself.

use std::path::PathBuf;
use std::time::Duration;

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

#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    pub api_key: Option<String>,
    pub api_base: String,
    pub api_socket: Option<PathBuf>,
    pub http2_enabled: bool,
    pub insecure_ssl: bool,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
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
