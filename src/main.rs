//! The process entry point: read the configuration, set up logging, run. Exit codes: 0 after a
//! clean shutdown, `-help` or `-version`; 2 for a command-line or configuration error; 1 for a
//! runtime error (from `run`).

use std::process::ExitCode;
use std::time::Duration;

use streaming_daemon::config::{self, Invocation};
use streaming_daemon::logging;
use streaming_daemon::Startup;

fn main() -> ExitCode {
    streaming_daemon::sys::malloc::keep_large_blocks_mapped();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let invocation = config::load(args.clone(), &|name| {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    });
    let config = match invocation {
        Ok(Invocation::Run(config)) => config,
        Ok(Invocation::Help(text) | Invocation::Version(text)) => {
            println!("{}", text.trim_end());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("streaming-daemon: {error}");
            if let Some(usage) = error.usage() {
                eprint!("{usage}");
            }
            return ExitCode::from(2);
        }
    };
    // Before any thread starts (the log writer is one): the environment changes here.
    let startup = match Startup::take(&config, args) {
        Ok(startup) => startup,
        Err(error) => {
            eprintln!("streaming-daemon: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = logging::init(&config.logging) {
        eprintln!("streaming-daemon: {error}");
        return ExitCode::from(2);
    }
    // Masked in every log line, whatever an upstream echoes them inside.
    logging::set_secrets(config.secrets());
    for note in config.startup_notes() {
        log::log!(note.level, "{note}");
    }
    let code = streaming_daemon::run(config, startup);
    // Lines still queued for stderr (the reason for a failed start among them) are written
    // by the log thread, which `exit` would cut short.
    logging::flush(Duration::from_secs(1));
    std::process::exit(code)
}
