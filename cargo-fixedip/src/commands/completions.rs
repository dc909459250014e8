//! `cargo fixedip completions <shell>`: a completion script, generated from the command line itself
//! so that it cannot fall behind it.
//!
//! cargo's own completion (rustup installs it for bash and zsh) hands `cargo fixedip <TAB>` to the
//! completion of the `cargo-fixedip` command, with `fixedip` as the command's name: so the script
//! completes a `cargo-fixedip` whose arguments are `cargo fixedip`'s. fish has no such hand-over, but
//! adds completions instead of replacing them: its script completes `cargo fixedip` directly.

use clap::CommandFactory;
use clap_complete::Shell;

use super::Context;
use crate::cli::{fixedip_command, Cargo, CompletionsArgs};
use crate::error::CliError;

pub fn run(context: &Context, args: &CompletionsArgs) -> Result<(), CliError> {
    let mut script = Vec::new();
    match args.shell {
        Shell::Fish => {
            clap_complete::generate(args.shell, &mut Cargo::command(), "cargo", &mut script)
        }
        shell => {
            clap_complete::generate(shell, &mut fixedip_command(), "cargo-fixedip", &mut script)
        }
    }
    context
        .output
        .text(&String::from_utf8_lossy(&script))
        .map_err(CliError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut script = Vec::new();
        let mut command = match shell {
            Shell::Fish => Cargo::command(),
            _ => fixedip_command(),
        };
        let name = command.get_name().to_owned();
        clap_complete::generate(shell, &mut command, name, &mut script);
        String::from_utf8(script).unwrap()
    }

    #[test]
    fn bash_and_zsh_complete_the_cargo_fixedip_command_that_cargo_hands_over_to() {
        let bash = script(Shell::Bash);
        // clap names the function `_cargo__fixedip`; what matters is the command it completes.
        assert!(bash.contains("-o default cargo-fixedip\n"), "{bash}");
        for word in [
            "deploy",
            "--release-ips",
            "--features",
            "--exclude",
            "completions",
        ] {
            assert!(bash.contains(word), "{word} missing from the bash script");
        }
        let zsh = script(Shell::Zsh);
        assert!(zsh.starts_with("#compdef cargo-fixedip"), "{zsh}");
        assert!(
            zsh.contains("_cargo-fixedip()"),
            "cargo's _cargo calls _cargo-fixedip"
        );
    }

    #[test]
    fn fish_adds_to_cargos_own_completions() {
        let fish = script(Shell::Fish);
        assert!(fish.contains("complete -c cargo"), "{fish}");
        assert!(fish.contains("fixedip"), "{fish}");
        assert!(fish.contains("release-ips"), "{fish}");
    }
}
