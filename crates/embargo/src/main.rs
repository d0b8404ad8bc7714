//! The `embargo` binary: one executable for the server, the workers and the admin tools.
//!
//! Errors are printed as one clear line on standard error (never a panic or backtrace) and
//! mapped to exit codes from sysexits, so that an MTA piping into `embargo ingest-mail`
//! retries temporary failures (75) and bounces bad input (65).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod disclosure;
mod fix;
mod ops;
mod output;
mod partner;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: a page allocates and frees many small values (rows,
/// strings, escaped HTML) on two runtime threads and a database thread per connection, and
/// glibc's arenas cost about a tenth of the server's CPU there; measured side by side, the
/// report page used 6 % less CPU per request (ADR 38).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic is a bug; say so plainly instead of printing a backtrace at the user.
    std::panic::set_hook(Box::new(|info| {
        // Except one: `println!` panics when standard output was closed by the reader
        // (`embargo report list | head -1`). Nobody is left to read the rest, which is not
        // an error: stop quietly, as other command-line tools do.
        if stdout_closed(info.payload()) {
            std::process::exit(0);
        }
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

/// Whether a panic is `print!`'s on a standard output whose reader has gone (EPIPE).
fn stdout_closed(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    // std formats it as "failed printing to stdout: Broken pipe (os error 32)".
    message.starts_with("failed printing to stdout") && message.to_ascii_lowercase().contains("broken pipe")
}
