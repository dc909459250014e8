//! `cargo fixedip`: the CLI, building and packaging the function, observing the account by tags,
//! executing a plan with the AWS SDK, rendering results. `main.rs` only calls [`main`]; the
//! modules are a library so that the end-to-end tests can reach them too.

pub mod aws;
pub mod build;
pub mod cli;
pub mod commands;
pub(crate) mod converge;
pub mod error;
pub mod exit_code;
pub mod lambda_build;
pub mod output;
pub mod package;
pub mod package_spec;
pub mod render;
pub mod report;
pub mod source;
pub mod stacks;
pub mod verification;
pub mod workspace;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use clap::Parser;

use crate::cli::Cargo;
use crate::commands::Context;
use crate::error::CliError;
use crate::output::Output;

/// Runs `cargo fixedip` with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    run(std::env::args_os())
}

/// Runs `cargo fixedip` with the given arguments (the first is the program name, the second
/// `fixedip`, as cargo passes them); returns the exit code.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let Cargo::Fixedip(args) = match Cargo::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => {
            // `--help` and `--version` are "errors" with exit code 0 that print to stdout; a
            // closed stdout (`--help | head -1`) changes nothing to that.
            let _ = error.print();
            return error.exit_code();
        }
    };
    let output = Output::new(&args.global);
    install_error_renderer(&output);
    let context = Context {
        global: args.global,
        output,
    };
    match commands::run(&context, args.command) {
        Ok(()) => exit_code::SUCCESS,
        Err(error) if reader_went_away(&error) => exit_code::SUCCESS,
        Err(error) => {
            let code = error.exit_code();
            // Not eprintln!, which panics when stderr is closed too.
            let _ = writeln!(std::io::stderr(), "{:?}", miette::Report::new(error));
            code
        }
    }
}

/// Whether stdout's reader closed its end before the result was written (`cargo fixedip status |
/// head -1`). As cargo does, that ends the run quietly and successfully: the reader has what it
/// wanted, and everything before printing the result was done.
fn reader_went_away(error: &CliError) -> bool {
    matches!(error, CliError::Stdout(error) if error.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Errors render with miette: the message, its causes, and a `help` line saying what to do; in
/// color only when stderr gets color, wrapped only on a terminal (a log keeps one message a line,
/// so that it can be searched).
fn install_error_renderer(output: &Output) {
    let color = output.stderr_has_color();
    let terminal = std::io::stderr().is_terminal();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                .wrap_lines(terminal)
                .build(),
        )
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_on_stdout_is_a_quiet_success() {
        let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(reader_went_away(&CliError::Stdout(broken)));
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(!reader_went_away(&CliError::Stdout(full)));
        assert!(!reader_went_away(&CliError::NoAnnotatedMember));
    }
}
