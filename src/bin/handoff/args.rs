//! The `handoff` tool's flags, in the daemon's Go style (`-flag value`, `-flag=value`, `--flag`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: handoff -socket PATH [-data JSON] [-seqpacket] [-socketpair] [-timeout DURATION]

Hands one connection to a running streaming-daemon, as Apache's mod_socket_handoff does,
and prints the response as it streams. Exits 0 when the stream ended with [DONE].

  -socket PATH        the daemon's Unix socket (default /var/run/streaming-daemon.sock)
  -data JSON          handoff data, as PHP would put in X-Handoff-Data (default: none)
  -seqpacket          connect with SOCK_SEQPACKET (for -socket-type seqpacket)
  -socketpair         hand off one end of an AF_UNIX socketpair instead of loopback TCP
  -timeout DURATION   give up after this long, e.g. 30s, 1m (default 60s)
  -help               print this help
";

#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    pub data: String,
    pub seqpacket: bool,
    pub socketpair: bool,
    pub timeout: Duration,
}

pub enum Parsed {
    Run(Options),
    Help,
}

pub fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    use lexopt::prelude::*;
    let mut options = Options {
        socket: PathBuf::from("/var/run/streaming-daemon.sock"),
        data: String::new(),
        seqpacket: false,
        socketpair: false,
        timeout: Duration::from_secs(60),
    };
    let takes_value = |name: &str| matches!(name, "socket" | "data" | "timeout");
    let mut parser =
        lexopt::Parser::from_args(streaming_daemon::config::go_style_args(args, &takes_value));
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("socket") => options.socket = parser.value().map_err(|e| e.to_string())?.into(),
            Long("data") => options.data = text(parser.value())?,
            Long("seqpacket") => options.seqpacket = flag(&mut parser)?,
            Long("socketpair") => options.socketpair = flag(&mut parser)?,
            Long("timeout") => {
                let value = text(parser.value())?;
                options.timeout = streaming_daemon::config::units::parse_go_duration(&value)
                    .map_err(|e| format!("-timeout: {e}"))?;
            }
            Long("help") | Short('h') => return Ok(Parsed::Help),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Parsed::Run(options))
}

fn text(value: Result<OsString, lexopt::Error>) -> Result<String, String> {
    value
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|_| "values must be UTF-8".to_string())
}

/// A boolean flag: `-flag` alone, or `-flag=true|false`.
fn flag(parser: &mut lexopt::Parser) -> Result<bool, String> {
    match parser.optional_value() {
        None => Ok(true),
        Some(value) => match value.to_str() {
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            _ => Err(format!("invalid boolean {value:?}")),
        },
    }
}
