//! Command-line flags in Go's syntax, so operators keep their unit files: one dash or two, the
//! value after a space or `=` (`-socket /x`, `--socket=/x`), booleans alone or with `=false`.
//!
//! lexopt reads the arguments once they are rewritten to its long-option form. Values are
//! checked as soon as they are read (on a scratch configuration), as Go's `flag` package does,
//! so a bad flag is reported with the usage text before the file is even opened; they are
//! applied over the file and the environment afterwards.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::Arg;

use super::error::closest;
use super::setting::{self, Setter};
use super::units::{format_go_duration, format_size};
use super::{Config, ConfigError};

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Run,
    Help,
    Version,
}

#[derive(Debug)]
pub struct CommandLine {
    pub request: Request,
    pub config_path: Option<PathBuf>,
    /// Checked values, in command-line order (a later flag wins, as in Go).
    settings: Vec<(Setter, String)>,
}

impl CommandLine {
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        for (set, value) in &self.settings {
            set(config, value).map_err(usage_error)?;
        }
        Ok(())
    }
}

enum Action {
    /// Sets a setting; the second function shows its built-in default in the usage text.
    Set(Setter, fn(&Config) -> String),
    ConfigPath,
    Help,
    Version,
}

struct Flag {
    name: &'static str,
    /// How the value is shown in the usage text; empty for boolean flags.
    value: &'static str,
    help: &'static str,
    action: Action,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "config",
        value: "path",
        help: "YAML configuration file; environment variables and flags override it",
        action: Action::ConfigPath,
    },
    Flag {
        name: "socket",
        value: "path",
        help: "Unix socket Apache's mod_socket_handoff connects to; a relative path is taken from the working directory",
        action: Action::Set(setting::socket_path_flag, |c| c.server.socket_path.display().to_string()),
    },
    Flag {
        name: "socket-mode",
        value: "mode",
        help: "permissions of the socket file, in octal with a leading 0",
        action: Action::Set(setting::socket_mode, |c| format!("0{:o}", c.server.socket_mode)),
    },
    Flag {
        name: "socket-type",
        value: "type",
        help: "socket type Apache's module uses: stream, or seqpacket for the newest module",
        action: Action::Set(setting::socket_type, |c| c.server.socket_type.as_str().to_string()),
    },
    Flag {
        name: "max-connections",
        value: "int",
        help: "most client streams plus handoffs in progress at once; more get 503",
        action: Action::Set(setting::max_connections, |c| c.server.max_connections.to_string()),
    },
    Flag {
        name: "max-stream-duration-ms",
        value: "int",
        help: "longest stream in milliseconds; 0 means no limit",
        action: Action::Set(setting::max_stream_duration_ms, |c| c.server.max_stream_duration.as_millis().to_string()),
    },
    Flag {
        name: "max-handoff-bytes",
        value: "size",
        help: "largest handoff data accepted from Apache, e.g. 256KiB (at most 16MiB); more gets 413",
        action: Action::Set(setting::max_handoff_bytes, |c| format_size(c.server.max_handoff_bytes as u64)),
    },
    Flag {
        name: "handoff-timeout",
        value: "duration",
        help: "time allowed to receive a handoff from Apache",
        action: Action::Set(setting::handoff_timeout, |c| format_go_duration(c.server.handoff_timeout)),
    },
    Flag {
        name: "write-timeout",
        value: "duration",
        help: "drop a client that accepts no bytes for this long",
        action: Action::Set(setting::write_timeout, |c| format_go_duration(c.server.write_timeout)),
    },
    Flag {
        name: "shutdown-timeout",
        value: "duration",
        help: "on SIGTERM, how long streams in progress may finish; 0 ends them at once",
        action: Action::Set(setting::shutdown_timeout, |c| format_go_duration(c.server.shutdown_timeout)),
    },
    Flag {
        name: "data-dir",
        value: "path",
        help: "directory where PHP stages attachment files, absolute; empty (-data-dir=) turns files off",
        action: Action::Set(setting::data_dir, |c| c.server.data_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default()),
    },
    Flag {
        name: "workers",
        value: "int",
        help: "event-loop threads; by default one per CPU this process may run on",
        action: Action::Set(setting::workers, |c| c.server.worker_count().to_string()),
    },
    Flag {
        name: "resume-window",
        value: "duration",
        help: "how long a stream whose client left stays resumable, e.g. 30s; 0 turns resuming off",
        action: Action::Set(setting::resume_window, |c| format_go_duration(c.server.resume_window)),
    },
    Flag {
        name: "memlimit",
        value: "size",
        help: "budget for all connection buffers, e.g. 768MiB; while over it new handoffs get 503 (default: none)",
        action: Action::Set(setting::mem_limit, |c| c.server.mem_limit.map(format_size).unwrap_or_default()),
    },
    Flag {
        name: "gc-percent",
        value: "int",
        help: "accepted for compatibility with the Go daemon (GOGC); has no effect",
        action: Action::Set(setting::gc_percent, |_| String::new()),
    },
    Flag {
        name: "pprof-addr",
        value: "addr",
        help: "accepted for compatibility with the Go daemon (pprof); has no effect",
        action: Action::Set(setting::pprof_addr, |_| String::new()),
    },
    Flag {
        name: "backend",
        value: "name",
        help: "backend that answers: langgraph, mock, openai or typing",
        action: Action::Set(setting::provider, |c| c.backend.provider.clone()),
    },
    Flag {
        name: "message-delay",
        value: "duration",
        help: "pause between the mock backend's events, e.g. 50ms or 1.5s; 0 for none",
        action: Action::Set(setting::message_delay, |c| format_go_duration(c.backend.mock.message_delay)),
    },
    Flag {
        name: "fortune-path",
        value: "path",
        help: "fortune program the typing backend quotes from",
        action: Action::Set(setting::fortune_path, |c| c.backend.typing.fortune_path.display().to_string()),
    },
    Flag {
        name: "openai-base",
        value: "url",
        help: "OpenAI-compatible API base URL (also OPENAI_API_BASE)",
        action: Action::Set(setting::openai_api_base, |c| c.backend.openai.api_base.clone()),
    },
    Flag {
        name: "openai-socket",
        value: "path",
        help: "reach the OpenAI API through this Unix socket (also OPENAI_API_SOCKET)",
        action: Action::Set(setting::openai_api_socket, |_| String::new()),
    },
    Flag {
        name: "http2-enabled",
        value: "",
        help: "accepted for compatibility (also OPENAI_HTTP2_ENABLED); upstream requests use HTTP/1.1",
        action: Action::Set(setting::openai_http2_enabled, |_| String::new()),
    },
    Flag {
        name: "langgraph-base",
        value: "url",
        help: "LangGraph Platform API base URL (also LANGGRAPH_API_BASE)",
        action: Action::Set(setting::langgraph_api_base, |c| c.backend.langgraph.api_base.clone()),
    },
    Flag {
        name: "langgraph-socket",
        value: "path",
        help: "reach the LangGraph API through this Unix socket (also LANGGRAPH_API_SOCKET)",
        action: Action::Set(setting::langgraph_api_socket, |_| String::new()),
    },
    Flag {
        name: "langgraph-assistant",
        value: "id",
        help: "LangGraph assistant to run (also LANGGRAPH_ASSISTANT_ID)",
        action: Action::Set(setting::langgraph_assistant_id, |c| c.backend.langgraph.assistant_id.clone()),
    },
    Flag {
        name: "metrics-addr",
        value: "addr",
        help: "address serving /metrics and /healthz; empty (-metrics-addr=) disables metrics",
        action: Action::Set(setting::metrics_addr_flag, |c| c.metrics.listen_addr.clone()),
    },
    Flag {
        name: "benchmark",
        value: "",
        help: "skip metric updates and print a summary to stdout at exit",
        action: Action::Set(setting::benchmark, |_| String::new()),
    },
    Flag {
        name: "log-level",
        value: "level",
        help: "trace, debug, info, warn or error",
        action: Action::Set(setting::log_level, |c| c.logging.level.as_str().to_ascii_lowercase()),
    },
    Flag {
        name: "log-format",
        value: "format",
        help: "text, or json for one object per line",
        action: Action::Set(setting::log_format, |c| format!("{:?}", c.logging.format).to_ascii_lowercase()),
    },
    Flag { name: "version", value: "", help: "print the version and exit", action: Action::Version },
    Flag { name: "help", value: "", help: "print this help and exit", action: Action::Help },
    Flag { name: "h", value: "", help: "print this help and exit", action: Action::Help },
];

pub fn parse(args: Vec<OsString>) -> Result<CommandLine, ConfigError> {
    let mut parser = lexopt::Parser::from_args(go_style(args));
    let mut scratch = Config::default();
    let mut command_line = CommandLine {
        request: Request::Run,
        config_path: None,
        settings: Vec::new(),
    };
    while let Some(arg) = parser
        .next()
        .map_err(|error| usage_error(error.to_string()))?
    {
        let name = match arg {
            Arg::Long(name) => name.to_string(),
            Arg::Short(letter) => letter.to_string(),
            Arg::Value(value) => {
                return Err(usage_error(format!(
                    "unexpected argument {value:?}: every setting is a -flag"
                )));
            }
        };
        let Some(flag) = FLAGS.iter().find(|flag| flag.name == name) else {
            let suggestion = closest(&name, FLAGS.iter().map(|flag| flag.name))
                .map(|known| format!(" (did you mean -{known}?)"))
                .unwrap_or_default();
            return Err(usage_error(format!(
                "flag provided but not defined: -{name}{suggestion}"
            )));
        };
        let value = if flag.value.is_empty() {
            parser.optional_value().unwrap_or_else(|| "true".into())
        } else {
            parser
                .value()
                .map_err(|_| usage_error(format!("flag needs an argument: -{name}")))?
        };
        let value = value.into_string().map_err(|value| {
            usage_error(format!(
                "invalid value {value:?} for flag -{name}: not valid UTF-8"
            ))
        })?;
        match flag.action {
            Action::Set(set, _) => {
                set(&mut scratch, &value).map_err(|message| {
                    usage_error(format!(
                        "invalid value {value:?} for flag -{name}: {message}"
                    ))
                })?;
                command_line.settings.push((set, value));
            }
            Action::ConfigPath => command_line.config_path = Some(PathBuf::from(value)),
            Action::Help if is_true(&value, &name)? => {
                // Go's flag package stops at -help, whatever follows.
                command_line.request = Request::Help;
                return Ok(command_line);
            }
            Action::Version if is_true(&value, &name)? => command_line.request = Request::Version,
            Action::Help | Action::Version => {}
        }
    }
    Ok(command_line)
}

fn is_true(value: &str, name: &str) -> Result<bool, ConfigError> {
    super::units::parse_bool(value).map_err(|message| {
        usage_error(format!(
            "invalid value {value:?} for flag -{name}: {message}"
        ))
    })
}

/// The daemon's flags in lexopt's form.
fn go_style(args: Vec<OsString>) -> Vec<OsString> {
    go_style_args(args, &|name| {
        FLAGS
            .iter()
            .any(|flag| flag.name == name && !flag.value.is_empty())
    })
}

/// Rewrites Go's single-dash flags to lexopt's `--name` form. The argument after a flag that
/// takes a value (as `takes_value` says) is passed through untouched, so values may start with
/// a dash (`-gc-percent -1`). The `handoff` tool parses its flags the same way.
pub fn go_style_args(args: Vec<OsString>, takes_value: &dyn Fn(&str) -> bool) -> Vec<OsString> {
    let mut rewritten = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let body = arg
            .to_str()
            .and_then(|text| text.strip_prefix("--").or_else(|| text.strip_prefix('-')));
        match body {
            // `--` ends the flags; what follows is positional, which lexopt reports.
            Some("") if arg.len() == 2 => {
                rewritten.push(arg);
                rewritten.extend(args);
                break;
            }
            Some(body) if !body.is_empty() => {
                let value_follows = !body.contains('=') && takes_value(body);
                rewritten.push(format!("--{body}").into());
                if value_follows {
                    rewritten.extend(args.next());
                }
            }
            _ => rewritten.push(arg),
        }
    }
    rewritten
}

fn usage_error(message: impl Into<String>) -> ConfigError {
    ConfigError::Usage {
        message: message.into(),
        usage: usage(),
    }
}

/// The `-help` text: every flag, its value, a line of help and its built-in default.
pub fn usage() -> String {
    let defaults = Config::default();
    let mut flags: Vec<&Flag> = FLAGS.iter().filter(|flag| flag.name != "h").collect();
    flags.sort_by_key(|flag| flag.name);
    let mut text = String::from(
        "Usage: streaming-daemon [flags]\n\n\
         Streams LLM responses as Server-Sent Events to clients handed off by Apache's mod_socket_handoff.\n\
         Flags take one dash or two and their value after a space or '=' (-socket /run/x.sock,\n\
         --socket=/run/x.sock); boolean flags stand alone or take =true/=false. Flags override\n\
         environment variables, which override the -config file, which overrides the defaults.\n\n",
    );
    for flag in flags {
        let names = if flag.name == "help" {
            "-h, -help".to_string()
        } else {
            format!("-{}", flag.name)
        };
        text.push_str(
            &format!("  {names} {}\n    \t{}", flag.value, flag.help).replace(" \n", "\n"),
        );
        if let Action::Set(_, show) = flag.action {
            let default = show(&defaults);
            if !default.is_empty() {
                text.push_str(&format!(" (default {default})"));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn parsed(list: &[&str]) -> Result<Config, ConfigError> {
        let command_line = parse(args(list))?;
        let mut config = Config::default();
        command_line.apply(&mut config)?;
        Ok(config)
    }

    fn message(list: &[&str]) -> String {
        match parse(args(list)) {
            Ok(command_line) => panic!("accepted {list:?}: {command_line:?}"),
            Err(error) => {
                assert!(
                    error.usage().is_some(),
                    "a command-line error carries the usage"
                );
                error.to_string()
            }
        }
    }

    #[test]
    fn every_go_spelling_of_a_value_flag() {
        for spelling in [
            &["-max-connections", "7"][..],
            &["-max-connections=7"],
            &["--max-connections", "7"],
            &["--max-connections=7"],
        ] {
            assert_eq!(
                parsed(spelling).map(|c| c.server.max_connections),
                Ok(7),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn boolean_flags() {
        assert_eq!(parsed(&["-benchmark"]).map(|c| c.benchmark), Ok(true));
        assert_eq!(parsed(&["--benchmark=true"]).map(|c| c.benchmark), Ok(true));
        assert_eq!(
            parsed(&["-benchmark=false"]).map(|c| c.benchmark),
            Ok(false)
        );
        assert_eq!(
            parsed(&["-benchmark", "-benchmark=0"]).map(|c| c.benchmark),
            Ok(false)
        );
        assert_eq!(
            parsed(&["-http2-enabled"]).map(|c| c.backend.openai.http2_enabled),
            Ok(true)
        );
        // As in Go, a boolean takes its value only after '='.
        assert_eq!(
            message(&["-benchmark", "false"]),
            "unexpected argument \"false\": every setting is a -flag"
        );
    }

    #[test]
    fn values_may_start_with_a_dash() {
        assert_eq!(
            parsed(&["-gc-percent", "-1"]).map(|c| c.server.gc_percent),
            Ok(Some(-1))
        );
        assert_eq!(
            message(&["-data-dir", "-backend"]),
            "invalid value \"-backend\" for flag -data-dir: must be an absolute path (starting with /)"
        );
    }

    #[test]
    fn every_setting_flag_reaches_its_setting() {
        let config = parsed(&[
            "-socket=/tmp/d.sock",
            "-socket-mode=0600",
            "-socket-type=seqpacket",
            "-max-connections=9",
            "-max-stream-duration-ms=0",
            "-max-handoff-bytes=1MiB",
            "-handoff-timeout=2s",
            "-write-timeout=1m30s",
            "-shutdown-timeout=0",
            "-memlimit=512 MiB",
            "-gc-percent=50",
            "-pprof-addr=localhost:6060",
            "-backend=typing",
            "-message-delay=1667ms",
            "-fortune-path=/bin/fortune",
            "-openai-base=http://127.0.0.1:1/v1",
            "-openai-socket=/run/o.sock",
            "-langgraph-base=http://127.0.0.1:2",
            "-langgraph-socket=/run/l.sock",
            "-langgraph-assistant=helper",
            "-metrics-addr=127.0.0.1:9100",
            "-log-level=debug",
            "-log-format=json",
            "-data-dir=/srv/handoff",
            "-workers=3",
            "-resume-window=1m",
        ])
        .expect("valid");
        assert_eq!(config.server.data_dir, Some(PathBuf::from("/srv/handoff")));
        assert_eq!(config.server.workers, std::num::NonZeroUsize::new(3));
        assert_eq!(config.server.resume_window, Duration::from_secs(60));
        let ms = Duration::from_millis;
        assert_eq!(config.server.socket_path, PathBuf::from("/tmp/d.sock"));
        assert_eq!(config.server.socket_mode, 0o600);
        assert_eq!(
            config.server.socket_type,
            super::super::SocketType::SeqPacket
        );
        assert_eq!(config.server.max_connections, 9);
        assert_eq!(config.server.max_stream_duration, Duration::ZERO);
        assert_eq!(config.server.max_handoff_bytes, 1 << 20);
        assert_eq!(config.server.handoff_timeout, ms(2000));
        assert_eq!(config.server.write_timeout, ms(90_000));
        assert_eq!(config.server.shutdown_timeout, Duration::ZERO);
        assert_eq!(config.server.mem_limit, Some(512 << 20));
        assert_eq!(config.server.gc_percent, Some(50));
        assert_eq!(config.server.pprof_addr.as_deref(), Some("localhost:6060"));
        assert_eq!(config.backend.provider, "typing");
        assert_eq!(config.backend.mock.message_delay, ms(1667));
        assert_eq!(
            config.backend.typing.fortune_path,
            PathBuf::from("/bin/fortune")
        );
        assert_eq!(config.backend.openai.api_base, "http://127.0.0.1:1/v1");
        assert_eq!(
            config.backend.openai.api_socket,
            Some(PathBuf::from("/run/o.sock"))
        );
        assert_eq!(config.backend.langgraph.api_base, "http://127.0.0.1:2");
        assert_eq!(
            config.backend.langgraph.api_socket,
            Some(PathBuf::from("/run/l.sock"))
        );
        assert_eq!(config.backend.langgraph.assistant_id, "helper");
        assert_eq!(config.metrics.listen_addr, "127.0.0.1:9100");
        assert_eq!(config.logging.level, log::LevelFilter::Debug);
        assert_eq!(config.logging.format, super::super::LogFormat::Json);
    }

    #[test]
    fn empty_metrics_address_disables_metrics() {
        for spelling in [
            &["-metrics-addr="][..],
            &["-metrics-addr", ""],
            &["--metrics-addr="],
        ] {
            assert_eq!(
                parsed(spelling).map(|c| c.metrics.enabled),
                Ok(false),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn help_version_and_config_path() {
        let command_line = parse(args(&["-config", "/etc/d.yaml", "-version"])).expect("valid");
        assert_eq!(command_line.request, Request::Version);
        assert_eq!(command_line.config_path, Some(PathBuf::from("/etc/d.yaml")));
        for help in ["-h", "-help", "--help", "--h"] {
            assert_eq!(
                parse(args(&[help, "-no-such-flag"]))
                    .map(|c| c.request)
                    .ok(),
                Some(Request::Help)
            );
        }
        assert_eq!(
            parse(args(&["-version=false"])).map(|c| c.request).ok(),
            Some(Request::Run)
        );
    }

    #[test]
    fn command_line_errors() {
        let cases: [(&[&str], &str); 12] = [
            (&["-socekt", "/x"], "flag provided but not defined: -socekt (did you mean -socket?)"),
            (&["-frobnicate"], "flag provided but not defined: -frobnicate"),
            (&["-socket"], "flag needs an argument: -socket"),
            (
                &["-max-connections", "many"],
                "invalid value \"many\" for flag -max-connections: expected a whole number (0x, 0o or a leading 0 select hex or octal)",
            ),
            (
                &["-message-delay=50"],
                "invalid value \"50\" for flag -message-delay: expected a duration such as 200ms, 1.5s or 1m30s (units ns, us, ms, s, m, h); a unit is missing",
            ),
            (&["-benchmark=maybe"], "invalid value \"maybe\" for flag -benchmark: expected true or false (also yes/no, on/off, 1/0)"),
            (&["-backend", "gpt"], "invalid value \"gpt\" for flag -backend: must be one of: langgraph, mock, openai, typing"),
            (&["--", "-socket=/x"], "unexpected argument \"-socket=/x\": every setting is a -flag"),
            (
                &["-shutdown-timeout", "3000000000000000h"],
                "invalid value \"3000000000000000h\" for flag -shutdown-timeout: must be at most 2562047h47m16.854775807s (Go's longest duration)",
            ),
            (
                &["-handoff-timeout", "9223372036854775807s"],
                "invalid value \"9223372036854775807s\" for flag -handoff-timeout: must be at most 2562047h47m16.854775807s (Go's longest duration)",
            ),
            (
                &["-max-stream-duration-ms", "9223372036855"],
                "invalid value \"9223372036855\" for flag -max-stream-duration-ms: must be at most 9223372036854 (Go's longest duration, about 292 years)",
            ),
            (&["-workers", "0"], "invalid value \"0\" for flag -workers: must be at least 1"),
        ];
        for (list, expected) in cases {
            assert_eq!(message(list), expected, "{list:?}");
        }
    }

    #[test]
    fn a_later_flag_wins() {
        assert_eq!(
            parsed(&["-backend=openai", "-backend", "typing"]).map(|c| c.backend.provider),
            Ok("typing".into())
        );
    }

    #[test]
    fn usage_lists_every_flag_with_its_default() {
        let text = usage();
        for flag in FLAGS {
            assert!(
                text.contains(&format!("-{} ", flag.name))
                    || text.contains(&format!("-{}\n", flag.name))
                    || text.contains(&format!("-{},", flag.name)),
                "-{} missing",
                flag.name
            );
        }
        assert!(text.contains("  -socket path\n    \tUnix socket Apache's mod_socket_handoff connects to; a relative path is taken from the working directory (default /var/run/streaming-daemon.sock)\n"));
        assert!(text.contains("  -message-delay duration\n    \tpause between the mock backend's events, e.g. 50ms or 1.5s; 0 for none (default 50ms)\n"));
        assert!(text.contains("  -benchmark\n    \tskip metric updates"));
        assert!(text.contains("(default 0660)"));
        assert!(text.contains("(default 2m0s)"));
        assert!(text.contains("(default info)"));
        assert!(text.contains("  -data-dir path\n"));
        assert!(text.contains("(default /run/handoff-data)"));
        assert!(text.contains("  -resume-window duration\n"));
        assert!(text.contains("  -workers int\n"));
        assert!(text.contains("(default 128KiB)"));
    }
}
