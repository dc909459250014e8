//! `cargo fixedip man`: the man page, generated from the command line (clap_mangen) so that it says
//! what `--help` says. The examples are kept as written (clap_mangen would fill them into one
//! paragraph) and the exit codes get their own EXIT STATUS section, from [`exit_code::ALL`].

use std::path::Path;

use clap_mangen::Man;
use roff::{bold, roman, Roff};

use super::Context;
use crate::cli::{fixedip_command, ManArgs};
use crate::error::CliError;
use crate::exit_code;

pub fn run(context: &Context, args: &ManArgs) -> Result<(), CliError> {
    let mut command = fixedip_command();
    command.build();
    match &args.out_dir {
        None => context
            .output
            .text(&page(&command, true))
            .map_err(CliError::Stdout),
        Some(dir) => write_pages(context, &command, dir),
    }
}

/// cargo-fixedip.1 and cargo-fixedip-COMMAND.1 for every command, into `dir`.
fn write_pages(context: &Context, command: &clap::Command, dir: &Path) -> Result<(), CliError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Io {
            what: "write the man page",
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut pages = vec![(command.clone(), true)];
    pages.extend(
        command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
            .map(|sub| (sub.clone(), false)),
    );
    for (page_command, top) in pages {
        let man = Man::new(page_command.clone());
        let path = dir.join(man.get_filename());
        std::fs::write(&path, page(&page_command, top)).map_err(io_error(&path))?;
        context.output.status("Written", path.display());
    }
    Ok(())
}

/// One page in roff: clap_mangen's sections, then EXAMPLES as written and, on the main page, EXIT
/// STATUS.
fn page(command: &clap::Command, top: bool) -> String {
    let man = Man::new(command.clone());
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    if command.has_subcommands() {
        let _ = man.render_subcommands_section(&mut out);
    }
    let mut roff = Roff::new();
    if let Some(examples) = examples(command) {
        roff.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in examples.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    }
    if top {
        roff.control("SH", ["EXIT STATUS"]);
        for (name, code, meaning) in exit_code::ALL {
            roff.control("TP", [])
                .text([bold(code.to_string()), roman(format!(" ({name})"))])
                .text([roman(*meaning)]);
        }
    }
    let _ = roff.to_writer(&mut out);
    if command.get_version().is_some() {
        let _ = man.render_version_section(&mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `Examples:` block of the command's long help, up to the next blank line, less its heading.
fn examples(command: &clap::Command) -> Option<String> {
    let help = command.get_after_long_help()?.to_string();
    let (_, rest) = help.split_once("Examples:\n")?;
    let block = rest.split("\n\n").next().unwrap_or(rest);
    Some(block.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> clap::Command {
        let mut command = fixedip_command();
        command.build();
        command
    }

    #[test]
    fn the_main_page_has_the_commands_examples_and_every_exit_code() {
        let page = page(&built(), true);
        assert!(page.contains("\n.TH cargo-fixedip 1 "), "{page}");
        for needed in [
            "deploy",
            "completions",
            "EXAMPLES",
            "EXIT STATUS",
            "plan \\-\\-offline",
        ] {
            assert!(page.contains(needed), "{needed} missing:\n{page}");
        }
        for (name, code, _) in exit_code::ALL {
            assert!(
                page.contains(&format!("\\fB{code}\\fR ({name})")),
                "{name}:\n{page}"
            );
        }
    }

    #[test]
    fn a_command_page_has_its_own_examples_and_no_exit_table() {
        let command = built();
        let deploy = command.find_subcommand("deploy").unwrap();
        let page = page(deploy, false);
        assert!(page.contains("cargo fixedip deploy \\-\\-zip"), "{page}");
        assert!(!page.contains("EXIT STATUS"), "{page}");
    }
}
