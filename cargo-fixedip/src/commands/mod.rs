//! One module per subcommand. Each takes the [`Context`] and its own arguments, returns a typed
//! error, and prints its result through [`Output`].

pub mod completions;
pub mod deploy;
pub mod destroy;
pub mod iam_policy;
pub mod ips;
pub mod man;
pub mod plan;
pub mod status;
pub mod unlock;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;

use fixedip_core::reader;
use fixedip_core::settings::DeploySettings;

use crate::aws::{Aws, AwsError};
use crate::build::{self, AnnotatedBinary, BuiltBinary};
use crate::cli::{BuildOptions, Command, GlobalOptions};
use crate::error::CliError;
use crate::output::Output;
use crate::package::LambdaZip;
use crate::workspace::{SelectedPackage, Selection, Workspace};

/// What every command gets: the global options and where to print.
#[derive(Debug, Clone)]
pub struct Context {
    pub global: GlobalOptions,
    pub output: Output,
}

pub fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Plan(args) => plan::run(context, &args),
        Command::Deploy(args) => deploy::run(context, &args),
        Command::Ips(args) => ips::run(context, &args),
        Command::Status(args) => status::run(context, &args),
        Command::Destroy(args) => destroy::run(context, &args),
        Command::IamPolicy => iam_policy::run(context),
        Command::Verify(args) => verify::run(context, &args),
        Command::Unlock(args) => unlock::run(context, &args),
        Command::Completions(args) => completions::run(context, &args),
        Command::Man(args) => man::run(context, &args),
    }
}

impl Context {
    /// Where the AWS commands find the account: the global `--region`, and `--profile` (else
    /// `AWS_PROFILE`), whose credentials win over keys in the environment.
    pub fn aws_options(&self, region: Option<String>) -> crate::aws::AwsOptions {
        let profile = crate::aws::AwsOptions::named_profile(self.global.profile.as_deref());
        if let Some(profile) = &profile {
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    self.output.note(format!(
                        "using the credentials of profile `{profile}`; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment are not used"
                    ))
                });
            }
        }
        crate::aws::AwsOptions {
            region: region.or_else(|| self.global.region.clone()),
            profile,
        }
    }

    /// The region each function of the selection deploys to: `--region`, else its `region`
    /// setting, else the AWS configuration's (`None`). Read from Cargo.toml, without a build, so
    /// that credentials and regions are checked before a build takes minutes.
    pub fn selected_regions(&self) -> Result<Vec<Option<String>>, CliError> {
        let (_, selection) = self.selection()?;
        let mut regions = Vec::new();
        for package in &selection.packages {
            for binary in &package.binaries {
                let wanted = self.wanted_region(&package.settings(binary)?);
                if !regions.contains(&wanted) {
                    regions.push(wanted);
                }
            }
        }
        Ok(regions)
    }

    /// `--region`, else the function's `region` setting; `None`: the AWS configuration's.
    pub fn wanted_region(&self, settings: &DeploySettings) -> Option<String> {
        self.global
            .region
            .clone()
            .or_else(|| settings.region.clone())
    }

    /// The workspace and the packages `-p`/`--workspace`/`--manifest-path` choose, settings checked.
    pub fn selection(&self) -> Result<(Workspace, Selection), CliError> {
        let workspace = Workspace::load(self.global.manifest_path.as_deref())?;
        let selection = workspace.select(
            &self.global.packages,
            self.global.workspace,
            &self.global.exclude,
        )?;
        Ok((workspace, selection))
    }

    /// Builds the selected packages for the host (`cargo build --release`) and reads the record of
    /// every annotated binary: what `plan` needs, where the code's hash does not matter.
    pub fn functions_built_for_host(
        &self,
        options: &BuildOptions,
    ) -> Result<Vec<AnnotatedBinary>, CliError> {
        let (workspace, selection) = self.selection()?;
        let names: Vec<&str> = selection.packages.iter().map(|p| p.name.as_str()).collect();
        self.output.status("Building", names.join(", "));
        let built = build::build_release(&workspace, &selection, options, &self.output)?;
        build::annotated_binaries(&selection, built, &self.output)
    }
}

/// A function ready to deploy: what it needs (record, settings) and the zip to upload.
#[derive(Debug, Clone)]
pub struct PackagedFunction {
    pub function: AnnotatedBinary,
    pub zip: LambdaZip,
}

impl Context {
    /// Builds the selected packages for Lambda (see [`build::build_for_lambda`]) and zips every
    /// annotated binary: what `deploy` uploads.
    pub fn functions_built_for_lambda(
        &self,
        options: &BuildOptions,
    ) -> Result<Vec<PackagedFunction>, CliError> {
        let (workspace, selection) = self.selection()?;
        let names: Vec<&str> = selection.packages.iter().map(|p| p.name.as_str()).collect();
        self.output
            .status("Building", format!("{} for Lambda", names.join(", ")));
        let built = build::build_for_lambda(&workspace, &selection, options, &self.output)?;
        let functions = build::annotated_binaries(&selection, built, &self.output)?;
        // Deflating a binary takes a CPU for a moment: one thread per function.
        std::thread::scope(|scope| {
            let zipping: Vec<_> = functions
                .into_iter()
                .map(|function| {
                    scope.spawn(move || {
                        let zip = LambdaZip::from_binary(&function.binary.path)?;
                        Ok(PackagedFunction { function, zip })
                    })
                })
                .collect();
            zipping
                .into_iter()
                .map(|thread| thread.join().expect("zipping does not panic"))
                .collect()
        })
    }

    /// A Lambda zip built elsewhere (`deploy --zip PATH`): its record says which package and
    /// binary it comes from, and that package's settings in this workspace apply.
    pub fn function_from_zip(&self, path: &Path) -> Result<PackagedFunction, CliError> {
        // A zip that cannot be read is a function that cannot be read (NO_FUNCTION), as a record
        // that cannot be read is, not a local failure.
        let bytes = std::fs::read(path).map_err(|source| {
            CliError::from(reader::ReaderError::Io {
                file: path.to_owned(),
                source,
            })
        })?;
        let record = reader::read_single_from_bytes(&bytes, &path.display().to_string())?;
        let workspace = Workspace::load(self.global.manifest_path.as_deref())?;
        let selection = workspace.select(std::slice::from_ref(&record.package), false, &[])?;
        let package = &selection.packages[0];
        let target =
            binary_of(package, &record.function).ok_or_else(|| CliError::ZipFromElsewhere {
                zip: path.to_owned(),
                function: record.function.clone(),
                package: package.name.clone(),
            })?;
        let settings = package.settings(&target)?;
        let binary = BuiltBinary {
            package: package.name.clone(),
            package_id: package.id.clone(),
            target,
            path: path.to_owned(),
        };
        Ok(PackagedFunction {
            function: AnnotatedBinary {
                binary,
                record,
                settings,
            },
            zip: LambdaZip::from_zip_bytes(bytes),
        })
    }
}

/// The binary target of `package` that compiled `function` (`hello_egress::main`): the first
/// segment of a module path is the crate name, the target name with `-` as `_`.
fn binary_of(package: &SelectedPackage, function: &str) -> Option<String> {
    let krate = function.split("::").next()?;
    package
        .binaries
        .iter()
        .find(|bin| bin.replace('-', "_") == krate)
        .cloned()
}

/// One connection per region asked for (`None`: the AWS configuration's), shared by every stack
/// in it: the commands that act on several stacks connect once per region.
#[derive(Default)]
pub struct Connections {
    by_wanted: BTreeMap<Option<String>, Aws>,
}

/// Whether a connection proves its credentials with STS GetCallerIdentity first (and learns the
/// account), with the availability zones its observation reads anyway (`Zones`: deploy, plan,
/// destroy), or answers with its first real call (`ips`: one call in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Checked,
    Zones,
    Unchecked,
}

impl Connections {
    /// The connection to `wanted`, made on first use. Read-only commands pass `read_only`: the
    /// call log then refuses any mutating call.
    pub async fn to(
        &mut self,
        context: &Context,
        wanted: &Option<String>,
        identity: Identity,
        read_only: bool,
    ) -> Result<&Aws, AwsError> {
        if !self.by_wanted.contains_key(wanted) {
            let options = context.aws_options(wanted.clone());
            let aws = match identity {
                Identity::Checked => Aws::connect(&options).await?,
                Identity::Zones => Aws::connect_by_zones(&options).await?,
                Identity::Unchecked => Aws::connect_unverified(&options).await?,
            };
            if read_only {
                aws.calls.forbid_mutations();
            }
            match aws.account.as_str() {
                "" => context.output.verbose(format!("AWS region {}", aws.region)),
                account => context
                    .output
                    .verbose(format!("AWS account {account} in {}", aws.region)),
            }
            self.by_wanted.insert(wanted.clone(), aws);
        }
        Ok(&self.by_wanted[wanted])
    }

    /// The connection that reached `region`. Only regions connected to are asked for.
    pub fn in_region(&self, region: &str) -> &Aws {
        self.by_wanted
            .values()
            .find(|aws| aws.region == region)
            .expect("a region that was connected to")
    }

    /// The region a connection to `wanted` reached. Only regions connected to are asked for.
    pub fn region_of(&self, wanted: &Option<String>) -> String {
        self.by_wanted[wanted].region.clone()
    }

    /// Every connection made, by the region it reached.
    pub fn by_region(self) -> BTreeMap<String, Aws> {
        self.by_wanted
            .into_values()
            .map(|aws| (aws.region.clone(), aws))
            .collect()
    }
}

/// The AWS SDK is async; the commands are not. One runtime per command run.
pub fn async_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}
