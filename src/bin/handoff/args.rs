//! The `handoff` tool's flags, in the daemon's Go style (`-flag value`, `-flag=value`, `--flag`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::load::fault;
use crate::mix::Mix;

pub const USAGE: &str = "\
Usage: handoff -socket PATH [-data JSON] [-seqpacket] [-socketpair] [-timeout DURATION]
       handoff -socket PATH -n STREAMS [-c IN_FLIGHT] [-ramp-up DURATION] [-pid PID]
               [-output FILE] [-data JSON] [-seqpacket] [-socketpair] [-timeout DURATION]
               [-faults KIND=WEIGHT,...] [-fault-bytes K]

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

Faults (load mode): a mix of client behaviours, assigned by stream number so that the count of
each is known in advance (every cycle of WEIGHT-sum streams holds WEIGHT of each, spread out).
The summary then has a faults object with, per kind, the streams that behaved as planned,
the late ones (the daemon completed the stream before the client closed it: no failure) and
the failed ones. A stream fails when it does not end the way its kind should.
  -faults SPEC        e.g. read=80,close=5,reset=5,noread=2,halfclose=5,badjson=2,nofd=1
                      (default read=1); kinds:
                      read       reads everything; expects a complete stream
                      close      reads -fault-bytes, then closes when nothing is left unread
                      reset      reads exactly -fault-bytes, then closes with bytes unread, which
                                 makes TCP send a reset (always loopback TCP)
                      noread     never reads; expects the daemon to close it (its -write-timeout);
                                 always an AF_UNIX pair whose daemon end has the smallest send
                                 buffer, so the daemon's writes block after a few KiB
                      halfclose  shuts its sending side right after the handoff, then reads
                                 everything; expects a complete stream
                      badjson    handed off with data that is not JSON; expects a 400
                      nofd       no client: the handoff data goes without an fd, then the
                                 connection closes (the daemon counts a no_fd rejection)
  -fault-bytes K      bytes close and reset read first (default 128: past the daemon's head)
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
    /// Which client behaviour each stream gets; all `read` unless `-faults` says otherwise.
    pub faults: Mix,
    /// Whether `-faults` was given: the summary then reports per kind.
    pub faults_given: bool,
    /// Bytes a `close` or `reset` stream reads before it closes; at least 1.
    pub fault_bytes: u64,
}

/// Load-mode flags as given, before defaults fill the gaps.
#[derive(Default)]
struct LoadFlags {
    streams: Option<u64>,
    concurrency: Option<u64>,
    ramp_up: Option<Duration>,
    pid: Option<u32>,
    output: Option<PathBuf>,
    faults: Option<Mix>,
    fault_bytes: Option<u64>,
}

/// `-c` when only `-n` is given: enough to load a daemon, few enough for any fd limit.
const DEFAULT_CONCURRENCY: u64 = 100;
/// `-fault-bytes` by default: just past the daemon's 119-byte success head, so a `close` or
/// `reset` stream has seen its status before it goes.
const DEFAULT_FAULT_BYTES: u64 = 128;

pub enum Parsed {
    /// Boxed: the options are large beside `Help`, and made once.
    Run(Box<Options>),
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
            "socket"
                | "data"
                | "timeout"
                | "n"
                | "c"
                | "ramp-up"
                | "pid"
                | "output"
                | "faults"
                | "fault-bytes"
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
            Long("faults") => {
                let spec = text(parser.value())?;
                load.faults =
                    Some(Mix::parse(&spec, fault::NAMES).map_err(|e| format!("-faults: {e}"))?);
            }
            Long("fault-bytes") => load.fault_bytes = Some(number("fault-bytes", parser.value())?),
            Long("help") | Short('h') => return Ok(Parsed::Help),
            other => return Err(other.unexpected().to_string()),
        }
    }
    options.load = load_options(load)?;
    Ok(Parsed::Run(Box::new(options)))
}

/// Load mode is on when `-n` or `-c` is given; its other flags alone are a mistake worth saying.
fn load_options(flags: LoadFlags) -> Result<Option<LoadOptions>, String> {
    let (streams, concurrency) = match (flags.streams, flags.concurrency) {
        (None, None) => {
            if flags.ramp_up.is_some()
                || flags.pid.is_some()
                || flags.output.is_some()
                || flags.faults.is_some()
                || flags.fault_bytes.is_some()
            {
                return Err(
                    "-ramp-up, -pid, -output, -faults and -fault-bytes need load mode (-n or -c)"
                        .into(),
                );
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
    if flags.fault_bytes == Some(0) {
        return Err("-fault-bytes must be at least 1".into());
    }
    Ok(Some(LoadOptions {
        streams,
        concurrency,
        ramp_up: flags.ramp_up.unwrap_or(Duration::ZERO),
        pid: flags.pid,
        output: flags.output,
        faults_given: flags.faults.is_some(),
        faults: flags
            .faults
            .unwrap_or_else(|| Mix::only_first(fault::NAMES)),
        fault_bytes: flags.fault_bytes.unwrap_or(DEFAULT_FAULT_BYTES),
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
            Parsed::Run(options) => Ok(*options),
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

    #[test]
    fn faults_take_a_mix_and_fault_bytes_a_count() {
        let load = parse_words(&["-n", "10", "-faults", "read=3,reset=1", "-fault-bytes=50"])
            .unwrap()
            .load
            .unwrap();
        assert!(load.faults_given);
        assert_eq!(
            load.faults.spec(),
            "read=3,close=0,reset=1,noread=0,halfclose=0,badjson=0,nofd=0"
        );
        assert_eq!(load.fault_bytes, 50);
        let plain = parse_words(&["-n", "10"]).unwrap().load.unwrap();
        assert!(!plain.faults_given);
        assert!(!plain.faults.has(fault::Fault::Close.index()));
        assert_eq!(plain.fault_bytes, DEFAULT_FAULT_BYTES);
    }

    #[test]
    fn bad_fault_flags_are_usage_errors() {
        let error = |words: &[&str]| parse_words(words).unwrap_err();
        assert!(error(&["-n", "1", "-faults", "read=1,x=1"]).starts_with("-faults: unknown kind"));
        assert!(error(&["-n", "1", "-faults", "read=0"]).starts_with("-faults:"));
        assert!(error(&["-n", "1", "-fault-bytes", "0"]).contains("at least 1"));
        assert!(error(&["-faults", "read=1"]).contains("need load mode"));
        assert!(error(&["-fault-bytes", "9"]).contains("need load mode"));
    }
}
