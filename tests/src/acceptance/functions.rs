//! The functions the scenarios deploy: copies of the example (examples/hello-egress) that differ
//! only in their `#[fixed_egress(...)]` line and their `[package.metadata.fixedip]`, written at run
//! time into a workspace of the run's own (`target/acceptance/<run>/`).
//!
//! Generated rather than kept as fixtures because the run id must be in them: the stack is named by
//! the macro (`stack = "fixedip-acc-<run>"`, the tag fixedip puts on everything), the function's
//! tags and an existing VPC's id by the settings. The example stays the one source of the code: on
//! AWS the function really fetches a what-is-my-IP service, and on the emulator the twin runs the
//! very binary that was deployed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{RunId, RUN_TAG};
use crate::workspace_root;

/// The attribute line of the example, replaced in every copy.
const EXAMPLE_ATTRIBUTE: &str = "#[fixed_egress(azs = 2)]";
/// The example's dependencies, taken from the main workspace's `[workspace.dependencies]`.
const DEPENDENCIES: [&str; 6] = [
    "lambda_runtime",
    "tokio",
    "serde_json",
    "hyper",
    "hyper-util",
    "http-body-util",
];

/// One function package of the run.
#[derive(Debug, Clone)]
pub struct FunctionPackage {
    /// The package and binary name, e.g. `gateway`.
    pub package: &'static str,
    /// What goes between `#[fixed_egress(` and `)]`, without the stack.
    pub arguments: &'static str,
    /// The Lambda function's name.
    pub function_name: String,
    /// `vpc = "..."`: a network the suite built.
    pub vpc: Option<String>,
    /// `FIXEDIP_WHATISMYIP_URL`, when not the example's default.
    pub url: Option<String>,
    /// Bumped by the code-change scenario: a `#[used]` static, so that the binary differs.
    pub revision: u32,
}

impl FunctionPackage {
    /// The run's main function (`fixedip-acc-<run>`), in the mode `arguments` says.
    pub fn main(run: &RunId, package: &'static str, arguments: &'static str) -> FunctionPackage {
        FunctionPackage {
            package,
            arguments,
            function_name: run.stack(),
            vpc: None,
            url: None,
            revision: 1,
        }
    }

    /// The example's source with this package's attribute and revision.
    fn source(&self, example: &str, run: &RunId) -> String {
        let attribute = format!(
            "#[fixed_egress({}, stack = \"{}\")]",
            self.arguments,
            run.stack()
        );
        format!(
            "{}\n/// The acceptance suite's code change: another revision, another binary.\n\
             #[used]\nstatic ACCEPTANCE_REVISION: u32 = {};\n",
            example.replacen(EXAMPLE_ATTRIBUTE, &attribute, 1),
            self.revision
        )
    }

    fn manifest(&self, run: &RunId, az_ids: Option<&str>) -> String {
        let mut manifest = format!(
            "[package]\nname = \"{}\"\nversion = \"0.1.0-run-{}\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nfixedip-macros.workspace = true\n",
            self.package, run.0
        );
        for name in DEPENDENCIES {
            manifest.push_str(&format!("{name}.workspace = true\n"));
        }
        manifest.push_str(&format!(
            "\n[package.metadata.fixedip]\nfunction-name = \"{}\"\ntags = {{ \"{RUN_TAG}\" = \"{run}\" }}\n",
            self.function_name
        ));
        if let Some(vpc) = &self.vpc {
            manifest.push_str(&format!("vpc = \"{vpc}\"\n"));
        }
        if let (Some(ids), None) = (az_ids, &self.vpc) {
            manifest.push_str(&format!("az-ids = {ids}\n"));
        }
        if let Some(url) = &self.url {
            manifest.push_str(&format!(
                "environment = {{ FIXEDIP_WHATISMYIP_URL = \"{url}\" }}\n"
            ));
        }
        manifest
    }
}

/// The run's workspace of function packages.
#[derive(Debug, Clone)]
pub struct Functions {
    pub dir: PathBuf,
    run: RunId,
    /// `az-ids` of every package (but the existing VPC's), when the target needs them pinned.
    az_ids: Option<String>,
}

impl Functions {
    /// Creates `target/acceptance/<run>/` with the workspace's manifest and the main workspace's
    /// lock file, so that the packages build with the versions the example is tested with.
    pub fn create(run: &RunId, az_ids: Option<&str>) -> Result<Functions, String> {
        let dir = workspace_root().join("target/acceptance").join(&run.0);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write(&dir.join("Cargo.toml"), &workspace_manifest()?)?;
        std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
            .map_err(|e| format!("Cargo.lock: {e}"))?;
        Ok(Functions {
            dir,
            run: run.clone(),
            az_ids: az_ids.map(str::to_owned),
        })
    }

    /// Writes (or rewrites) `package`, and returns its directory: where `cargo fixedip` is run for
    /// it, as a user runs it from a function's directory.
    pub fn write(&self, package: &FunctionPackage) -> Result<PathBuf, String> {
        let example =
            std::fs::read_to_string(workspace_root().join("examples/hello-egress/src/main.rs"))
                .map_err(|e| format!("the example's source: {e}"))?;
        if !example.contains(EXAMPLE_ATTRIBUTE) {
            return Err(format!(
                "examples/hello-egress/src/main.rs no longer has `{EXAMPLE_ATTRIBUTE}`: update \
                 tests/src/acceptance/functions.rs"
            ));
        }
        let dir = self.dir.join(package.package);
        std::fs::create_dir_all(dir.join("src")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let manifest = package.manifest(&self.run, self.az_ids.as_deref());
        write(&dir.join("Cargo.toml"), &manifest)?;
        write(
            &dir.join("src/main.rs"),
            &package.source(&example, &self.run),
        )?;
        Ok(dir)
    }

    /// Builds every package of the workspace for this machine (debug, offline).
    pub fn build_all(&self) -> Result<(), String> {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&self.dir)
            .args(["build", "--offline", "--quiet", "--workspace"])
            .env("CARGO_TARGET_DIR", target_dir())
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
        match status.success() {
            true => Ok(()),
            false => Err("cargo build of the run's functions failed".into()),
        }
    }

    /// Builds `package` for this machine (debug, offline: the emulator runs never reach the
    /// internet) and zips it as Lambda wants it; returns the zip and the binary, a copy of the
    /// run's own.
    ///
    /// Runs share [`target_dir`]. Cargo tells their packages apart by version (the run's id is in
    /// it: with one version, every run's `gateway` would be one package to cargo, and a run would
    /// be handed another's binary as fresh), but every run's build is uplifted to the same
    /// `debug/gateway`: the build holds a lock file of the directory until its binary is copied
    /// out.
    pub fn build_zip(&self, package: &str) -> Result<(PathBuf, PathBuf), String> {
        let lock = target_dir().join("fixedip-acceptance.lock");
        std::fs::create_dir_all(target_dir()).map_err(|e| format!("{lock:?}: {e}"))?;
        let lock = std::fs::File::create(&lock).map_err(|e| format!("{lock:?}: {e}"))?;
        lock.lock().map_err(|e| format!("locking {lock:?}: {e}"))?;
        let built = self.build(package)?;
        let binary = self.dir.join(format!("{package}.bin"));
        std::fs::copy(&built, &binary).map_err(|e| format!("{}: {e}", built.display()))?;
        drop(lock);
        let bytes = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let zip = self.dir.join(format!("{package}.zip"));
        crate::write_lambda_zip(&zip, &bytes, &[]);
        Ok((zip, binary))
    }

    /// `cargo build` of `package`; the executable it names.
    fn build(&self, package: &str) -> Result<PathBuf, String> {
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&self.dir)
            .args([
                "build",
                "--offline",
                "--quiet",
                "--message-format=json",
                "--bin",
                package,
            ])
            .env("CARGO_TARGET_DIR", target_dir())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cargo build: {e}"))?;
        if !output.status.success() {
            return Err(format!("cargo build of {package} failed"));
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == package)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| format!("cargo build named no executable {package}"))
    }
}

/// Where every run's packages build: the dependencies are built once, not once per run.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target/acceptance/build")
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `[workspace]` with every package of the directory, and the example's dependencies as the main
/// workspace declares them.
fn workspace_manifest() -> Result<String, String> {
    let root = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
        .map_err(|e| format!("Cargo.toml: {e}"))?;
    let macros = workspace_root().join("fixedip-macros");
    let mut manifest = format!(
        "# Written by the acceptance suite (tests/src/acceptance/functions.rs).\n[workspace]\n\
         resolver = \"2\"\nmembers = [\"*\"]\nexclude = [\"target\"]\n\n\
         # Small binaries: `cargo fixedip` reads a 12 MB zip of a debug build for seconds.\n\
         [profile.dev]\ndebug = false\nstrip = true\n\n[workspace.dependencies]\n\
         fixedip-macros = {{ path = \"{}\" }}\n",
        macros.display()
    );
    for name in DEPENDENCIES {
        let line = root
            .lines()
            .find(|line| line.starts_with(&format!("{name} = ")))
            .ok_or_else(|| format!("the workspace declares no dependency {name}"))?;
        manifest.push_str(line);
        manifest.push('\n');
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_is_the_example_with_its_own_attribute_stack_and_tags() {
        let run = RunId("0a1b2c3d".into());
        let mut package = FunctionPackage::main(&run, "instance", "azs = 2, nat = \"instance\"");
        let source = package.source("x\n#[fixed_egress(azs = 2)]\nfn main() {}\n", &run);
        assert!(source.contains(
            "#[fixed_egress(azs = 2, nat = \"instance\", stack = \"fixedip-acc-0a1b2c3d\")]"
        ));
        assert!(source.contains("ACCEPTANCE_REVISION: u32 = 1;"));
        package.vpc = Some("vpc-1".into());
        let manifest = package.manifest(&run, Some("[\"use1-az1\"]"));
        assert!(manifest.contains("function-name = \"fixedip-acc-0a1b2c3d\""));
        assert!(
            !manifest.contains("az-ids"),
            "a network the suite runs has its own AZs"
        );
        assert!(manifest.contains("\"fixedip-acceptance\" = \"0a1b2c3d\""));
        assert!(manifest.contains("vpc = \"vpc-1\""));
    }

    #[test]
    fn the_workspace_takes_the_example_s_dependencies_from_the_main_one() {
        let manifest = workspace_manifest().unwrap();
        for name in DEPENDENCIES {
            assert!(
                manifest.contains(&format!("\n{name} = ")),
                "{name}: {manifest}"
            );
        }
    }
}
