//! Which stacks a command acts on, and in which regions: one resolution for every command.
//!
//! The stacks are those of the selected packages' functions, selected exactly as `deploy` selects
//! them: the package in or above the current directory, `--manifest-path`, `-p`, `--workspace`.
//! A function's stack is the `stack` of its `#[fixed_egress]` (read from the source when that is
//! certain, else from a host build: see [`crate::source`]); its region is `--region`, else its
//! `region` setting, else the AWS configuration's (profile, `AWS_REGION`). Functions of one stack
//! in one region make one [`StackTarget`]; one stack deployed to two regions makes two.
//!
//! `--stack NAME` replaces the stack of every selected function with `NAME` and keeps their
//! regions. It may also be given where there is no package at all (a directory without
//! Cargo.toml, a virtual workspace root without `-p`): then the region is `--region` or the AWS
//! configuration's.

use std::collections::BTreeMap;

use fixedip_core::requirements::StackName;
use fixedip_core::settings::DeploySettings;

use crate::build;
use crate::cli::BuildOptions;
use crate::commands::Context;
use crate::error::CliError;
use crate::source::{declared_stack, Declared};
use crate::workspace::{SelectedPackage, Selection, SelectionMode, Workspace};

/// One stack in one region, and the selected functions that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackTarget {
    pub stack: StackName,
    /// `--region`, else the functions' `region` setting; `None`: the AWS configuration's.
    pub region: Option<String>,
    /// The selected functions that declare this stack (none when `--stack` named it).
    pub functions: Vec<TargetFunction>,
}

/// A selected function: its Lambda name and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFunction {
    pub package: String,
    pub binary: String,
    pub settings: DeploySettings,
}

impl StackTarget {
    /// What `status` and `verify` observe: the stack, every function attached to it, and the
    /// selected functions wherever they run now.
    pub fn scope(&self) -> crate::aws::observe::Scope {
        crate::aws::observe::Scope {
            attached_functions: true,
            functions: self.functions.iter().map(|f| f.name().to_owned()).collect(),
            nat_groups: match self.functions.iter().any(|f| f.settings.nat_self_healing) {
                true => crate::aws::nat_group::NatGroupReads::All,
                false => crate::aws::nat_group::NatGroupReads::Skip,
            },
            ..crate::aws::observe::Scope::stack(self.stack.clone())
        }
    }
}

impl TargetFunction {
    /// The Lambda function's name.
    pub fn name(&self) -> &str {
        &self.settings.function_name
    }
}

impl Context {
    /// The stacks this command acts on; see the module docs. `stack` is the command's `--stack`;
    /// `options` those of the host build made where a source cannot tell its stack.
    pub fn stack_targets(
        &self,
        stack: Option<&str>,
        options: &BuildOptions,
    ) -> Result<Vec<StackTarget>, CliError> {
        let stack = stack
            .map(|name| {
                StackName::parse(name).map_err(|error| CliError::BadStack {
                    stack: name.to_owned(),
                    reason: error.to_string(),
                })
            })
            .transpose()?;
        let region = self.global.region.clone();
        let selection = match (&stack, self.selection()) {
            (_, Ok(selection)) => Some(selection),
            // `--stack` alone needs no package: a directory of no package is fine.
            (Some(_), Err(CliError::NoManifest { .. } | CliError::VirtualManifest { .. }))
                if !self.selects_explicitly() =>
            {
                None
            }
            (_, Err(error)) => return Err(error),
        };
        let Some((workspace, selection)) = selection else {
            let stack = stack.expect("only `--stack` goes without packages");
            return Ok(vec![StackTarget {
                stack,
                region,
                functions: Vec::new(),
            }]);
        };
        let functions = self.declared_functions(&workspace, &selection, options)?;
        let mut targets: BTreeMap<(StackName, Option<String>), Vec<TargetFunction>> =
            BTreeMap::new();
        for (declared, function) in functions {
            let region = region.clone().or_else(|| function.settings.region.clone());
            let key = (stack.clone().unwrap_or(declared), region);
            let members = targets.entry(key).or_default();
            // With `--stack`, the functions only say where to look; the stack is the named one.
            if stack.is_none() {
                members.push(function);
            }
        }
        Ok(targets
            .into_iter()
            .map(|((stack, region), functions)| StackTarget {
                stack,
                region,
                functions,
            })
            .collect())
    }

    /// Whether the user chose packages (`-p`, `--workspace`, `--manifest-path`) rather than
    /// leaving it to the current directory.
    fn selects_explicitly(&self) -> bool {
        let global = &self.global;
        !global.packages.is_empty() || global.workspace || global.manifest_path.is_some()
    }

    /// Every annotated binary of the selection with the stack it declares: from its source where
    /// that is certain, else from a host build of the packages where it is not.
    fn declared_functions(
        &self,
        workspace: &Workspace,
        selection: &Selection,
        options: &BuildOptions,
    ) -> Result<Vec<(StackName, TargetFunction)>, CliError> {
        let mut found = Vec::new();
        let mut to_build: Vec<SelectedPackage> = Vec::new();
        for package in &selection.packages {
            let others = package.other_sources();
            let mut annotated = Vec::new();
            let mut unsure = false;
            for (binary, root) in &package.bin_roots {
                match declared_stack(root, &others) {
                    Declared::Stack(stack) => annotated.push((stack, binary.clone())),
                    Declared::Nothing => {}
                    Declared::Unsure(why) => {
                        self.output.verbose(format!(
                            "binary `{binary}` of package `{}`: {why}; building it to read its record",
                            package.name
                        ));
                        unsure = true;
                    }
                }
            }
            if unsure {
                to_build.push(package.clone());
                continue;
            }
            if annotated.is_empty() {
                match selection.mode {
                    SelectionMode::Named => {
                        return Err(CliError::NoAnnotatedBinary {
                            package: package.name.clone(),
                            binaries: build::binary_list(package),
                        })
                    }
                    SelectionMode::Workspace => continue,
                }
            }
            for (stack, binary) in annotated {
                let settings = package.settings(&binary)?;
                found.push((
                    stack,
                    TargetFunction {
                        package: package.name.clone(),
                        binary,
                        settings,
                    },
                ));
            }
        }
        if !to_build.is_empty() {
            let names: Vec<&str> = to_build.iter().map(|p| p.name.as_str()).collect();
            self.output.status("Building", names.join(", "));
            let partial = Selection {
                mode: selection.mode,
                packages: to_build,
            };
            let built = build::build_release(workspace, &partial, options, &self.output)?;
            let annotated = match build::annotated_binaries(&partial, built, &self.output) {
                Ok(annotated) => annotated,
                // --workspace: none of these carries one; the others may.
                Err(CliError::NoAnnotatedMember) => Vec::new(),
                Err(error) => return Err(error),
            };
            for binary in annotated {
                found.push((
                    binary.record.requirements.stack.clone(),
                    TargetFunction {
                        package: binary.binary.package,
                        binary: binary.binary.target,
                        settings: binary.settings,
                    },
                ));
            }
        }
        if found.is_empty() {
            // Only reachable with --workspace: every candidate was skipped.
            return Err(CliError::NoAnnotatedMember);
        }
        Ok(found)
    }
}
