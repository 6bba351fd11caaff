//! The `handoff` tool's flags, in the daemon's Go style (`-flag value`, `-flag=value`, `--flag`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: handoff -socket PATH [-data JSON] [-seqpacket] [-socketpair] [-timeout DURATION]
       handoff -socket PATH -n STREAMS [-c IN_FLIGHT] [-ramp-up DURATION] [-pid PID]
               [-output FILE] [-data JSON] [-seqpacket] [-socketpair] [-timeout DURATION]

Hands one connection to a running streaming-daemon, as Apache's mod_socket_handoff does,
and prints the response as it streams. Exits 0 when the stream ended with [DONE].

With -n or -c it is a load generator instead: it hands off -n streams, at most -c at a time,
reads every response, and prints a JSON summary (to -output FILE, else stdout) and one line
for people on stderr. Exits 1 if any stream failed.

  -socket PATH        the daemon's Unix socket (default /var/run/streaming-daemon.sock)
  -data JSON          handoff data, as PHP would put in X-Handoff-Data (default: none)
  -seqpacket          connect with SOCK_SEQPACKET (for -socket-type seqpacket)
  -socketpair         hand off one end of an AF_UNIX socketpair instead of loopback TCP
  -timeout DURATION   give up on a stream after this long, e.g. 30s, 1m (default 60s)
  -help               print this help

Load mode:
  -n STREAMS          streams in total (default: -c)
  -c IN_FLIGHT        most streams in flight at once (default: -n, at most 100)
  -ramp-up DURATION   spread the first -c handoffs evenly over this long (default 0)
  -pid PID            sample the daemon's RSS, CPU time and threads from /proc/PID
  -output FILE        write the JSON summary here instead of stdout
";

#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    pub data: String,
    pub seqpacket: bool,
    pub socketpair: bool,
    pub timeout: Duration,
    /// Present when `-n` or `-c` was given: run as a load generator.
    pub load: Option<LoadOptions>,
}

/// The load generator's own settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Streams in total; at least 1.
    pub streams: u64,
    /// Most streams in flight at once; at least 1 and at most `streams`.
    pub concurrency: u64,
    pub ramp_up: Duration,
    pub pid: Option<u32>,
    pub output: Option<PathBuf>,
}

/// Load-mode flags as given, before defaults fill the gaps.
#[derive(Default)]
struct LoadFlags {
    streams: Option<u64>,
    concurrency: Option<u64>,
    ramp_up: Option<Duration>,
    pid: Option<u32>,
    output: Option<PathBuf>,
}

/// `-c` when only `-n` is given: enough to load a daemon, few enough for any fd limit.
const DEFAULT_CONCURRENCY: u64 = 100;

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
        load: None,
    };
    let mut load = LoadFlags::default();
    let takes_value = |name: &str| {
        matches!(
            name,
            "socket" | "data" | "timeout" | "n" | "c" | "ramp-up" | "pid" | "output"
        )
    };
    let mut parser =
        lexopt::Parser::from_args(streaming_daemon::config::go_style_args(args, &takes_value));
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("socket") => options.socket = parser.value().map_err(|e| e.to_string())?.into(),
            Long("data") => options.data = text(parser.value())?,
            Long("seqpacket") => options.seqpacket = flag(&mut parser)?,
            Long("socketpair") => options.socketpair = flag(&mut parser)?,
            Long("timeout") => options.timeout = duration("timeout", parser.value())?,
            Long("n") => load.streams = Some(number("n", parser.value())?),
            Long("c") => load.concurrency = Some(number("c", parser.value())?),
            Long("ramp-up") => load.ramp_up = Some(duration("ramp-up", parser.value())?),
            Long("pid") => load.pid = Some(number("pid", parser.value())?),
            Long("output") => load.output = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("help") | Short('h') => return Ok(Parsed::Help),
            other => return Err(other.unexpected().to_string()),
        }
    }
    options.load = load_options(load)?;
    Ok(Parsed::Run(options))
}

/// Load mode is on when `-n` or `-c` is given; its other flags alone are a mistake worth saying.
fn load_options(flags: LoadFlags) -> Result<Option<LoadOptions>, String> {
    let (streams, concurrency) = match (flags.streams, flags.concurrency) {
        (None, None) => {
            if flags.ramp_up.is_some() || flags.pid.is_some() || flags.output.is_some() {
                return Err("-ramp-up, -pid and -output need load mode (-n or -c)".into());
            }
            return Ok(None);
        }
        (Some(n), None) => (n, n.min(DEFAULT_CONCURRENCY)),
        (None, Some(c)) => (c, c),
        (Some(n), Some(c)) => (n, c.min(n)),
    };
    if streams == 0 || concurrency == 0 {
        return Err("-n and -c must be at least 1".into());
    }
    Ok(Some(LoadOptions {
        streams,
        concurrency,
        ramp_up: flags.ramp_up.unwrap_or(Duration::ZERO),
        pid: flags.pid,
        output: flags.output,
    }))
}

fn duration(name: &str, value: Result<OsString, lexopt::Error>) -> Result<Duration, String> {
    streaming_daemon::config::units::parse_go_duration(&text(value)?)
        .map_err(|e| format!("-{name}: {e}"))
}

fn number<T: std::str::FromStr>(
    name: &str,
    value: Result<OsString, lexopt::Error>,
) -> Result<T, String> {
    let value = text(value)?;
    value
        .parse()
        .map_err(|_| format!("-{name}: {value:?} is not a whole number"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Options, String> {
        match parse(words.iter().map(OsString::from).collect())? {
            Parsed::Run(options) => Ok(options),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn without_n_or_c_it_is_a_single_handoff() {
        let options = parse_words(&["-socket", "/x.sock", "-timeout=5s"]).unwrap();
        assert!(options.load.is_none());
        assert_eq!(options.timeout, Duration::from_secs(5));
    }

    #[test]
    fn load_flags_take_go_style_values() {
        let options = parse_words(&[
            "-n",
            "50000",
            "--c=200",
            "-ramp-up",
            "1.5s",
            "-pid",
            "42",
            "-output",
            "/tmp/o.json",
            "-socketpair",
        ])
        .unwrap();
        let load = options.load.unwrap();
        assert_eq!((load.streams, load.concurrency), (50000, 200));
        assert_eq!(load.ramp_up, Duration::from_millis(1500));
        assert_eq!(load.pid, Some(42));
        assert_eq!(load.output, Some(PathBuf::from("/tmp/o.json")));
        assert!(options.socketpair);
    }

    #[test]
    fn missing_n_or_c_is_filled_in_and_c_never_exceeds_n() {
        let only_n = parse_words(&["-n", "1000"]).unwrap().load.unwrap();
        assert_eq!((only_n.streams, only_n.concurrency), (1000, 100));
        let only_c = parse_words(&["-c", "7"]).unwrap().load.unwrap();
        assert_eq!((only_c.streams, only_c.concurrency), (7, 7));
        let both = parse_words(&["-n", "5", "-c", "50"]).unwrap().load.unwrap();
        assert_eq!((both.streams, both.concurrency), (5, 5));
    }

    #[test]
    fn bad_load_flags_are_usage_errors() {
        assert!(parse_words(&["-n", "0"]).is_err());
        assert!(parse_words(&["-n", "ten"]).is_err());
        assert!(parse_words(&["-c", "-1"]).is_err());
        assert!(parse_words(&["-pid", "42"]).is_err());
        assert!(parse_words(&["-n", "1", "-ramp-up", "soon"]).is_err());
    }
}
