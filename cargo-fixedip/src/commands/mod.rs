//! One module per subcommand. Each takes the [`Context`] and its own arguments, returns a typed
//! error, and prints its result through [`Output`].

pub mod plan;

use crate::build::{self, AnnotatedBinary};
use crate::cli::{Command, GlobalOptions};
use crate::error::CliError;
use crate::output::Output;
use crate::workspace::{Selection, Workspace};

/// What every command gets: the global options and where to print.
#[derive(Debug, Clone)]
pub struct Context {
    pub global: GlobalOptions,
    pub output: Output,
}

pub fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Plan(args) => plan::run(context, &args),
    }
}

impl Context {
    /// The workspace and the packages `-p`/`--workspace`/`--manifest-path` choose, settings checked.
    pub fn selection(&self) -> Result<(Workspace, Selection), CliError> {
        let workspace = Workspace::load(self.global.manifest_path.as_deref())?;
        let selection = workspace.select(&self.global.packages, self.global.workspace)?;
        Ok((workspace, selection))
    }

    /// Builds the selected packages for the host (`cargo build --release`) and reads the record of
    /// every annotated binary: what `plan` needs, where the code's hash does not matter.
    pub fn functions_built_for_host(&self) -> Result<Vec<AnnotatedBinary>, CliError> {
        let (workspace, selection) = self.selection()?;
        let names: Vec<&str> = selection.packages.iter().map(|p| p.name.as_str()).collect();
        self.output.status("Building", names.join(", "));
        let built = build::build_release(&workspace, &selection, &self.output)?;
        build::annotated_binaries(&selection, built, &self.output)
    }
}
