//! The Cargo workspace and the packages a command works on, with their settings.
//!
//! Selection follows cargo: `-p NAME` (repeatable) picks members by name; `--workspace` picks every
//! member that has a binary and depends on `fixedip-macros` (the others cannot carry
//! `#[fixed_egress]`, and building them would only cost time), less those `--exclude` names; with
//! neither, the package of the manifest given by `--manifest-path` or found in or above the
//! current directory. A glob (`-p 'fn-*'`, `--exclude 'test-*'`) picks among members as
//! `--workspace` does: the matching members without an annotated binary are skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, MetadataCommand, Package, PackageId, TargetKind};
use fixedip_core::settings::DeploySettings;

use crate::error::CliError;
use crate::package_spec;

/// The crate users depend on for `#[fixed_egress]`.
pub const MACRO_CRATE: &str = "fixedip-macros";

/// The workspace around the manifest the user pointed at.
#[derive(Debug)]
pub struct Workspace {
    pub metadata: Metadata,
    /// The manifest the command runs from: `--manifest-path`, or the nearest Cargo.toml.
    pub manifest_path: PathBuf,
}

/// How the packages were chosen: it decides whether a package without `#[fixed_egress]` is an
/// error (the user named it) or is skipped (`--workspace` took it in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionMode {
    /// `-p NAME`, or the current package: each must have an annotated binary.
    Named,
    /// `--workspace`: packages without an annotated binary are skipped.
    Workspace,
}

/// A package a command works on.
#[derive(Debug, Clone)]
pub struct SelectedPackage {
    pub name: String,
    pub id: PackageId,
    pub manifest_path: PathBuf,
    /// Its binary targets; each may be a Lambda function.
    pub binaries: Vec<String>,
    /// The root source file of each binary target, by name.
    pub bin_roots: BTreeMap<String, PathBuf>,
    /// The directories holding its library's and binaries' sources (`src/`, usually).
    pub source_dirs: Vec<PathBuf>,
    /// `package.metadata` as cargo reports it (`null` when there is none).
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Selection {
    pub mode: SelectionMode,
    pub packages: Vec<SelectedPackage>,
}

impl Workspace {
    /// Runs `cargo metadata` (without dependencies: only the members are needed).
    pub fn load(manifest_path: Option<&Path>) -> Result<Workspace, CliError> {
        let manifest_path = match manifest_path {
            Some(path) => absolute(path)?,
            None => find_manifest()?,
        };
        let metadata = MetadataCommand::new()
            .manifest_path(&manifest_path)
            .no_deps()
            .exec()
            .map_err(|source| CliError::Metadata {
                manifest: manifest_path.clone(),
                source,
            })?;
        Ok(Workspace {
            metadata,
            manifest_path,
        })
    }

    /// The workspace's root manifest, for `cargo build --manifest-path`.
    pub fn root_manifest(&self) -> PathBuf {
        self.metadata
            .workspace_root
            .join("Cargo.toml")
            .into_std_path_buf()
    }

    /// The packages to work on; see the module docs. Settings are checked here, before any build,
    /// so that a typo in Cargo.toml fails in a second rather than after a release build.
    pub fn select(
        &self,
        packages: &[String],
        workspace: bool,
        exclude: &[String],
    ) -> Result<Selection, CliError> {
        let members = self.metadata.workspace_packages();
        let (mode, chosen): (_, Vec<&Package>) = if workspace {
            let excluded = matching_each(&members, exclude)?;
            let annotated: Vec<&Package> = members
                .iter()
                .copied()
                .filter(|p| may_be_annotated(p) && !excluded.contains(p))
                .collect();
            if annotated.is_empty() {
                return Err(CliError::NoAnnotatedMember);
            }
            (SelectionMode::Workspace, annotated)
        } else if packages.iter().any(|spec| package_spec::is_glob(spec)) {
            let chosen: Vec<&Package> = matching_each(&members, packages)?
                .into_iter()
                .filter(|p| may_be_annotated(p))
                .collect();
            if chosen.is_empty() {
                return Err(CliError::NoAnnotatedMember);
            }
            (SelectionMode::Workspace, chosen)
        } else if !packages.is_empty() {
            (SelectionMode::Named, matching_each(&members, packages)?)
        } else {
            (SelectionMode::Named, vec![self.current_package(&members)?])
        };

        let mut selected = Vec::new();
        for package in chosen {
            if selected
                .iter()
                .any(|s: &SelectedPackage| s.id == package.id)
            {
                continue;
            }
            let binaries: Vec<String> = package
                .targets
                .iter()
                .filter(|t| t.is_kind(TargetKind::Bin))
                .map(|t| t.name.clone())
                .collect();
            if binaries.is_empty() {
                return Err(CliError::NoBinaryTarget {
                    package: package.name.to_string(),
                });
            }
            let bin_roots = package
                .targets
                .iter()
                .filter(|t| t.is_kind(TargetKind::Bin))
                .map(|t| (t.name.clone(), t.src_path.clone().into_std_path_buf()))
                .collect();
            let mut source_dirs: Vec<PathBuf> = package
                .targets
                .iter()
                .filter(|t| t.is_kind(TargetKind::Bin) || t.is_kind(TargetKind::Lib))
                .filter_map(|t| {
                    t.src_path
                        .parent()
                        .map(|d| d.to_path_buf().into_std_path_buf())
                })
                .collect();
            source_dirs.sort();
            source_dirs.dedup();
            let selected_package = SelectedPackage {
                name: package.name.to_string(),
                id: package.id.clone(),
                manifest_path: package.manifest_path.clone().into_std_path_buf(),
                binaries,
                bin_roots,
                source_dirs,
                metadata: package.metadata.clone(),
            };
            for binary in &selected_package.binaries {
                selected_package.settings(binary)?;
            }
            selected.push(selected_package);
        }
        Ok(Selection {
            mode,
            packages: selected,
        })
    }

    /// The member whose manifest is the one the command runs from.
    fn current_package<'m>(&self, members: &[&'m Package]) -> Result<&'m Package, CliError> {
        let wanted = canonical(&self.manifest_path);
        members
            .iter()
            .copied()
            .find(|p| canonical(p.manifest_path.as_std_path()) == wanted)
            .ok_or_else(|| CliError::VirtualManifest {
                manifest: self.manifest_path.clone(),
            })
    }
}

impl SelectedPackage {
    /// Its `.rs` files that are no binary's root: its library and the modules of its targets.
    pub fn other_sources(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in &self.source_dirs {
            rust_files(dir, &mut files);
        }
        files.sort();
        files.dedup();
        files.retain(|file| !self.bin_roots.values().any(|root| root == file));
        files
    }

    /// The deployment settings of one of its binaries.
    pub fn settings(&self, binary: &str) -> Result<DeploySettings, CliError> {
        DeploySettings::from_metadata(&self.metadata, binary).map_err(|source| CliError::Settings {
            package: self.name.clone(),
            manifest: self.manifest_path.clone(),
            source,
        })
    }
}

/// The members each spec names, in order; a spec that names none is an error.
fn matching_each<'m>(
    members: &[&'m Package],
    specs: &[String],
) -> Result<Vec<&'m Package>, CliError> {
    let mut found = Vec::new();
    for spec in specs {
        let matched = package_spec::matching(members, spec);
        if matched.is_empty() {
            let mut names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            return Err(CliError::UnknownPackage {
                spec: spec.to_owned(),
                members: names.join(", "),
            });
        }
        found.extend(matched);
    }
    Ok(found)
}

/// Whether a member can carry `#[fixed_egress]` at all.
fn may_be_annotated(package: &Package) -> bool {
    has_binary(package) && depends_on_macro(package)
}

/// Every `.rs` file under `dir`, build output left out.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn has_binary(package: &Package) -> bool {
    package.targets.iter().any(|t| t.is_kind(TargetKind::Bin))
}

fn depends_on_macro(package: &Package) -> bool {
    package.dependencies.iter().any(|d| d.name == MACRO_CRATE)
}

/// The nearest Cargo.toml in or above the current directory, as cargo finds it.
fn find_manifest() -> Result<PathBuf, CliError> {
    let dir = std::env::current_dir().map_err(|source| CliError::Io {
        what: "read the current directory",
        path: PathBuf::from("."),
        source,
    })?;
    dir.ancestors()
        .map(|d| d.join("Cargo.toml"))
        .find(|m| m.is_file())
        .ok_or(CliError::NoManifest { dir })
}

fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path).map_err(|source| CliError::Io {
        what: "resolve the path",
        path: path.to_owned(),
        source,
    })
}

/// Symlinks and `..` resolved where the file exists, so that two spellings of one manifest match.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}
