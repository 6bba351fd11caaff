//! `handoff`: does for a person what Apache's mod_socket_handoff does for the daemon.
//!
//! It makes a loopback TCP pair, hands one end to the daemon with SCM_RIGHTS together with the
//! handoff data, and prints what the daemon writes to the other end as it streams. With `-n` or
//! `-c` it is the load generator instead (see `load`).

mod args;
mod load;
mod mix;
mod single;

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match args::parse(std::env::args_os().skip(1).collect()) {
        Ok(args::Parsed::Run(options)) => options,
        Ok(args::Parsed::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("handoff: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match &options.load {
        Some(load) => load::run(&options, load),
        None => single::run(&options).map_err(|e| e.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("handoff: {e}");
            ExitCode::FAILURE
        }
    }
}
