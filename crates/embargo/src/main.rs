//! The `embargo` binary: one executable for the server, the workers and the admin tools.
//!
//! Errors are printed as one clear line on standard error (never a panic or backtrace) and
//! mapped to exit codes from sysexits, so that an MTA piping into `embargo ingest-mail`
//! retries temporary failures (75) and bounces bad input (65).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A panic is a bug; say so plainly instead of printing a backtrace at the user.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("embargo: internal error{location}; please report this bug");
    }));
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("embargo: cannot start the async runtime: {err}");
            return ExitCode::from(commands::EX_OSERR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("embargo: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
