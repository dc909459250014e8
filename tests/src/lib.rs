//! Support for the end-to-end tests: a private moto server per test, the AWS settings to reach it
//! (for the SDK in the test and for the `cargo-fixedip` binary run as a subprocess), the requests
//! moto recorded, and the artifacts under test (the CLI binary, the example function's zip).
//!
//! Every test starts its own [`Emulator`]: about half a second, and full isolation (no shared account,
//! no reset between tests, tests run in parallel). The emulator is installed by
//! `scripts/emulator.sh install` and started by `fixedip-moto` (tests/moto), the launcher every
//! suite shares; without it the tests fail and say so: they never skip.
//!
//! cargo-nextest runs each test in a process of its own, many at once: what is built or written
//! "once per test process" here is shared between processes through files, written under a
//! temporary name and renamed into place, so that no process ever reads another's half-written zip.

pub mod acceptance;
pub mod console;
pub mod iam_policy;
pub mod twin;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use fixedip_moto::Moto;
pub use fixedip_moto::{count, AwsRequest, RequestMark};

/// The region every emulator test deploys to.
pub const REGION: &str = "us-east-1";
/// The dummy credentials moto accepts; never real ones.
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";

/// The workspace root: the tests crate sits one level below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The example function's own directory: where a user runs `cargo fixedip` for it, and where the
/// end-to-end tests run it (commands act on the stack of the package in the current directory).
pub fn example_dir() -> PathBuf {
    workspace_root().join("examples/hello-egress")
}

/// A moto server of this test's own (fixedip-moto, the launcher every suite shares), with the
/// SDK settings pointed at it and the CLI pointed at a proxy in front of it that only watches;
/// stopped when dropped. Dropped at the end of a test that did not fail, it checks that every call
/// the CLI made is one `cargo fixedip iam-policy` allows ([`iam_policy`]).
pub struct Emulator {
    watcher: iam_policy::Watcher,
    moto: Moto,
}

impl Emulator {
    /// Starts moto and waits until it answers. Panics with what to do when moto is not installed.
    pub fn start() -> Emulator {
        let moto = Moto::start();
        Emulator {
            watcher: iam_policy::Watcher::start(&moto.url()),
            moto,
        }
    }

    /// Every call the CLI made through this emulator, with what IAM authorizes for each.
    pub fn cli_calls(&self) -> Vec<fixedip_chaos::LogEntry> {
        self.watcher.log()
    }

    /// What moto wrote to stderr, for failure messages.
    pub fn log(&self) -> String {
        self.moto.log()
    }

    /// moto's own `http://127.0.0.1:PORT`: the test's own SDK calls go there, unwatched.
    pub fn endpoint(&self) -> String {
        self.moto.url()
    }

    /// An SDK configuration for the test's own calls to the emulator: dummy static credentials,
    /// the test region, the emulator's endpoint.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "fixedip-tests",
            ))
            .load()
            .await
    }

    /// NAT gateways moto holds `pending` or `available` (not deleting or deleted).
    pub async fn live_nat_gateways(&self) -> usize {
        self.nat_gateways_in(&["pending", "available"]).await
    }

    /// NAT gateways moto holds `available`.
    pub async fn available_nat_gateways(&self) -> usize {
        self.nat_gateways_in(&["available"]).await
    }

    async fn nat_gateways_in(&self, states: &[&str]) -> usize {
        let answer = self
            .ec2()
            .await
            .describe_nat_gateways()
            .send()
            .await
            .unwrap();
        answer
            .nat_gateways()
            .iter()
            .filter(|n| n.state().is_some_and(|s| states.contains(&s.as_str())))
            .count()
    }

    /// The security groups moto holds tagged with a `fixedip:component` (e.g. the NAT
    /// instances' `nat-security-group`).
    pub async fn security_groups(&self, component: &str) -> usize {
        let answer = self
            .ec2()
            .await
            .describe_security_groups()
            .filters(tag_filter("fixedip:component", component))
            .send()
            .await
            .unwrap();
        answer.security_groups().len()
    }

    /// Every Elastic IP moto holds, as DescribeAddresses lists it.
    pub async fn addresses(&self) -> Vec<aws_sdk_ec2::types::Address> {
        let answer = self.ec2().await.describe_addresses().send().await;
        answer.expect("DescribeAddresses").addresses().to_vec()
    }

    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
    }

    /// An EC2 client whose calls go through the CLI's proxy, so that what the proxy models of
    /// AWS (a terminated instance's interfaces detached, a self-healing NAT's boot) follows
    /// them, as it follows the CLI's; they are judged by the IAM check too.
    pub async fn ec2_through_proxy(&self) -> aws_sdk_ec2::Client {
        let config = self.sdk_config().await;
        let config = aws_sdk_ec2::config::Builder::from(&config)
            .endpoint_url(self.watcher.url())
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    pub async fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk_config().await)
    }

    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk_config().await)
    }

    pub async fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk_config().await)
    }

    /// The environment that points the standard AWS chain at the emulator, and nowhere else: no
    /// profile, no shared files, no instance metadata.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        let nowhere = self
            .moto
            .dir()
            .join("no-such-aws-file")
            .display()
            .to_string();
        vec![
            ("AWS_ENDPOINT_URL", self.watcher.url()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_CONFIG_FILE", nowhere.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", nowhere),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// The `cargo-fixedip` binary, run as `cargo fixedip ...` is, against this emulator.
    pub fn cargo_fixedip(&self) -> Command {
        let mut command = Command::new(cargo_fixedip_bin());
        command.arg("fixedip");
        clear_aws_env(&mut command);
        command.envs(self.aws_env());
        command.env("NO_COLOR", "1");
        command
    }

    /// Every AWS request moto has received so far (its own `/moto-api/` calls left out), in order.
    pub fn requests(&self) -> Vec<AwsRequest> {
        self.moto.requests()
    }

    /// A point in the recording: [`Emulator::requests_since`] returns what came after it.
    pub fn mark(&self) -> RequestMark {
        self.moto.mark()
    }

    pub fn requests_since(&self, mark: RequestMark) -> Vec<AwsRequest> {
        self.moto.requests_since(mark)
    }

    /// Calls moto's own API (`/moto-api/...`); panics on anything but a 2xx.
    pub fn moto_api(&self, method: &str, path: &str, body: &str) -> String {
        self.moto.moto_api(method, path, body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            iam_policy::assert_allowed_by_iam_policy(&self.watcher.log());
        }
    }
}

/// Removes whatever AWS settings the test runner's environment has, so that only the emulator's
/// (or a test's deliberate ones) apply.
pub fn clear_aws_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
}

/// The `cargo` running these tests (cargo sets `CARGO`), or the one on the PATH.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Builds a binary of the workspace once per test process and returns its path.
fn build_binary(package: &str, bin: &str) -> PathBuf {
    let output = cargo()
        .args([
            "build",
            "--quiet",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo build -p {package}: {e}"));
    assert!(output.status.success(), "cargo build -p {package} failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == bin
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo build -p {package} named no executable {bin}"))
}

/// The `cargo-fixedip` binary: this package's `cargo-fixedip-under-test`, which cargo builds next
/// to the test executables (`target/debug/`, the parent of `target/debug/deps/`) before it runs them.
pub fn cargo_fixedip_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| package_bin("cargo-fixedip-under-test"))
}

/// The acceptance suite's binary, `fixedip-acceptance` (tests/src/acceptance).
pub fn acceptance_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| package_bin("fixedip-acceptance"))
}

/// A binary of this package, found beside the running test executable or tool.
fn package_bin(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test executable's path");
    let dir = test.parent().and_then(Path::parent).expect("target/debug");
    let name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    // With a separate build directory (`CARGO_BUILD_BUILD_DIR`), test executables stay there
    // and binaries are copied out to the target directory.
    let profile = dir.file_name().expect("a profile directory");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    // A tool of this package (`record-network-answers`) runs from `target/debug/` itself.
    let bin = [
        dir.join(&name),
        target_dir.join(profile).join(&name),
        test.with_file_name(&name),
    ]
    .into_iter()
    .find(|bin| bin.exists())
    .unwrap_or_else(|| dir.join(&name));
    assert!(
        bin.exists(),
        "{} is missing: run the end-to-end tests through `cargo test -p fixedip-tests`, \
         which builds it",
        bin.display()
    );
    bin
}

/// The example function `hello-egress`, built for the host once per test process.
pub fn example_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_binary("hello-egress", "hello-egress"))
}

/// The example as a Lambda zip (`bootstrap` at its root). The emulator never runs it; the CLI
/// reads its requirements record.
pub fn example_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| {
        let binary = example_binary();
        let zip = binary.with_file_name("hello-egress.fixedip-test.zip");
        replace_with_lambda_zip(&zip, &std::fs::read(binary).expect("the example binary"));
        zip
    })
}

/// Writes a Lambda zip: `bootstrap` (mode 755), then any extra files, e.g. to change the code's hash.
pub fn write_lambda_zip(path: &Path, bootstrap: &[u8], extra: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).expect("zip file");
    let mut zip = zip::ZipWriter::new(file);
    let executable = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", executable).expect("zip entry");
    zip.write_all(bootstrap).expect("zip write");
    for (name, bytes) in extra {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    }
    zip.finish().expect("zip finish");
}

/// Writes a Lambda zip of `bootstrap` at `path` atomically: other test processes read either the
/// zip they found there or this one, never a part of it.
fn replace_with_lambda_zip(path: &Path, bootstrap: &[u8]) {
    let temporary = path.with_extension(format!("zip.{}.tmp", std::process::id()));
    write_lambda_zip(&temporary, bootstrap, &[]);
    std::fs::rename(&temporary, path)
        .unwrap_or_else(|e| panic!("{} → {}: {e}", temporary.display(), path.display()));
}

/// The fixture functions' workspace (`tests/fixtures/functions`).
pub fn fixtures_manifest() -> PathBuf {
    workspace_root().join("tests/fixtures/functions/Cargo.toml")
}

/// A fixture function's own directory (`tests/fixtures/functions/<name>`): where a user runs
/// `cargo fixedip` for it, with no `--manifest-path` and no `--stack`.
pub fn fixture_dir(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/functions").join(name)
}

/// An EC2 `Describe*` filter on one tag's value (`tag:KEY` = `value`).
pub fn tag_filter(key: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// A fixture function (`egress-one`, `egress-three`, `egress-four`, `second-function`, `other-stack`,
/// `no-attribute`) as a Lambda zip. The fixtures are built once per test process, into
/// `target/fixtures` of the main workspace.
pub fn fixture_zip(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    workspace_zip(&BUILT, &fixtures_manifest(), name)
}

/// Deploys the fixture function `fixture` with the CLI (`deploy -p <fixture> --zip <its zip>` in the
/// fixtures' workspace), as a user does, and returns deploy's `--json` report.
pub fn deploy_fixture(emulator: &Emulator, fixture: &str) -> serde_json::Value {
    let output = emulator
        .cargo_fixedip()
        .args([
            "deploy",
            "--json",
            "--poll-interval",
            "0.2",
            "--manifest-path",
        ])
        .arg(fixtures_manifest())
        .args(["-p", fixture, "--zip"])
        .arg(fixture_zip(fixture))
        .output()
        .expect("cargo-fixedip runs");
    assert!(
        output.status.success(),
        "deploy of {fixture}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("deploy's --json report")
}

/// The scope fixtures' workspace (`tests/fixtures/scope`): functions of two stacks, one of them in
/// two regions, for the tests that run the CLI from a function's own directory.
pub fn scope_manifest() -> PathBuf {
    workspace_root().join("tests/fixtures/scope/Cargo.toml")
}

/// A function of the scope fixtures (`alpha`, `billing`, `billing-eu`) as a Lambda zip.
pub fn scope_zip(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    workspace_zip(&BUILT, &scope_manifest(), name)
}

/// Builds the workspace of `manifest` once per test process into `target/fixtures`, and zips its
/// binary `name`.
fn workspace_zip(built: &OnceLock<PathBuf>, manifest: &Path, name: &str) -> PathBuf {
    let dir = built.get_or_init(|| {
        let target = workspace_root().join("target/fixtures");
        let status = cargo()
            .args(["build", "--quiet", "--workspace", "--manifest-path"])
            .arg(manifest)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo build of the fixtures");
        assert!(
            status.success(),
            "cargo build of {} failed",
            manifest.display()
        );
        target.join("debug")
    });
    let zip = dir.join(format!("{name}.fixedip-test.zip"));
    // Written once per process, from the binary just built (a zip left by an earlier run may hold
    // an older build); tests on threads of one process wait for the first writer.
    static WRITTEN: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    if written.insert(name.to_owned()) {
        let binary =
            std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        replace_with_lambda_zip(&zip, &binary);
    }
    zip
}
