//! Support for the end-to-end tests: a private moto server per test, the AWS settings to reach it
//! (for the SDK in the test and for the `cargo-fixedip` binary run as a subprocess), the requests
//! moto recorded, and the artifacts under test (the CLI binary, the example function's zip).
//!
//! Every test starts its own [`Emulator`]: about half a second, and full isolation (no shared account,
//! no reset between tests, tests run in parallel). The emulator is installed by
//! `scripts/emulator.sh install`; without it the tests fail and say so: they never skip.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use base64::Engine as _;

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

/// Where `scripts/emulator.sh install` puts moto, honouring the same override.
fn moto_server_path() -> PathBuf {
    let venv = std::env::var_os("FIXEDIP_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/moto"));
    venv.join("bin/moto_server")
}

/// A moto server of this test's own on a free loopback port; stopped when dropped.
pub struct Emulator {
    server: Child,
    port: u16,
    /// Holds the server's log and request recording; removed with the emulator.
    dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts moto and waits until it answers. Panics with what to do when moto is not installed.
    pub fn start() -> Emulator {
        let server = moto_server_path();
        assert!(
            server.is_file(),
            "the AWS emulator is not installed ({} is missing): run scripts/emulator.sh install",
            server.display()
        );
        let mut dir = tempfile::Builder::new()
            .prefix("fixedip-moto-")
            .tempdir()
            .expect("a temp dir");
        // A port picked free can be taken before moto binds it: then moto exits and we try another.
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // See docs/emulator.md: managed policies for AttachRolePolicy, and validation
                // so that RunInstances rejects what AWS would.
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
                .env("MOTO_ENABLE_AMI_VALIDATION", "true")
                // Every request is recorded from the start, into this emulator's own file.
                .env("MOTO_ENABLE_RECORDING", "true")
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("moto log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("could not run {}: {e}", server.display()));
            let mut emulator = Emulator {
                server: child,
                port,
                dir,
            };
            match emulator.wait_until_ready() {
                Ok(()) => {
                    // There is no Docker engine: Lambda must not try to run functions in containers.
                    emulator.moto_api(
                        "POST",
                        "/moto-api/config",
                        r#"{"lambda":{"use_docker":false}}"#,
                    );
                    return emulator;
                }
                Err(failure) => {
                    last_failure = failure;
                    dir = emulator.stop_and_keep_dir();
                }
            }
        }
        panic!("moto_server did not start: {last_failure}");
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.server.try_wait().expect("moto status") {
                return Err(format!("it exited with {status}: {}", self.log()));
            }
            // moto answers its own API with 201, even to a GET.
            if let Ok((200..=299, _)) = self.try_moto_api("GET", "/moto-api/config", "") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on port {} within 30 s: {}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_and_keep_dir(mut self) -> tempfile::TempDir {
        self.stop();
        let dir = tempfile::Builder::new()
            .prefix("fixedip-moto-")
            .tempdir()
            .expect("a temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    /// What moto wrote to stdout and stderr, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`, the value of `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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

    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
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
            .dir
            .path()
            .join("no-such-aws-file")
            .display()
            .to_string();
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
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
        let path = self.dir.path().join("recording.jsonl");
        let recording = std::fs::read_to_string(&path).unwrap_or_default();
        // One JSON object per request. moto writes an object and its newline in two writes from
        // concurrent threads, so two objects can share a line: read a stream of values, not lines.
        serde_json::Deserializer::from_str(&recording)
            .into_iter::<serde_json::Value>()
            .map(|entry| entry.expect("moto's recording holds JSON objects"))
            .filter_map(|entry| AwsRequest::from_recording(&entry))
            .collect()
    }

    /// A point in the recording: [`Emulator::requests_since`] returns what came after it.
    pub fn mark(&self) -> RequestMark {
        RequestMark(self.requests().len())
    }

    pub fn requests_since(&self, mark: RequestMark) -> Vec<AwsRequest> {
        self.requests().split_off(mark.0)
    }

    /// Calls moto's own API (`/moto-api/...`); panics on anything but a 2xx.
    pub fn moto_api(&self, method: &str, path: &str, body: &str) -> String {
        match self.try_moto_api(method, path, body) {
            Ok((status, body)) if (200..300).contains(&status) => body,
            Ok((status, body)) => panic!("{method} {path}: moto answered {status}: {body}"),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// One HTTP/1.0 exchange with moto's admin API: HTTP/1.0 so that the answer is never chunked and
    /// ends when the connection closes. Only for `/moto-api/`; AWS calls go through the SDK.
    fn try_moto_api(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:?}")))?;
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or("");
        Ok((status, body.to_owned()))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A position in an emulator's request recording.
#[derive(Debug, Clone, Copy)]
pub struct RequestMark(usize);

/// One AWS API call as moto received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRequest {
    /// The signing name: `ec2`, `lambda`, `iam`, `sts`, ...
    pub service: String,
    /// The API operation: `DescribeVpcs`, `CreateFunction`, ...
    pub operation: String,
}

impl AwsRequest {
    /// Whether the call can change the account. Reads are the Describe/Get/List operations.
    pub fn is_mutating(&self) -> bool {
        !["Describe", "Get", "List"]
            .iter()
            .any(|read| self.operation.starts_with(read))
    }

    fn from_recording(entry: &serde_json::Value) -> Option<AwsRequest> {
        let url = entry["url"].as_str()?;
        let path = url_path(url);
        if path.starts_with("/moto-api/") {
            return None;
        }
        let headers = &entry["headers"];
        let header = |name: &str| {
            headers
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))?
                .1
                .as_str()
        };
        // `Credential=AKID/DATE/REGION/SERVICE/aws4_request` in the SigV4 Authorization header.
        let service = header("Authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|credential| credential.split('/').nth(3))
            .unwrap_or("unknown")
            .to_owned();
        let body = match (entry["body"].as_str(), entry["body_encoded"].as_bool()) {
            (Some(body), Some(true)) => String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap_or_default(),
            )
            .into_owned(),
            (Some(body), _) => body.to_owned(),
            (None, _) => String::new(),
        };
        let method = entry["method"].as_str().unwrap_or("GET");
        let operation = query_action(&body)
            .or_else(|| query_action(url.split_once('?').map(|(_, q)| q).unwrap_or("")))
            .or_else(|| {
                header("X-Amz-Target").map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
            })
            .unwrap_or_else(|| rest_operation(&service, method, path));
        Some(AwsRequest { service, operation })
    }
}

fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let path = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}

/// The `Action` of an AWS query-protocol request (EC2, IAM, STS).
fn query_action(form: &str) -> Option<String> {
    form.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

/// The operation of a REST-JSON request (Lambda), from its method and path.
fn rest_operation(service: &str, method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let operation = match (service, method, segments.as_slice()) {
        ("lambda", "POST", [_, "functions"]) => "CreateFunction",
        ("lambda", "GET", [_, "functions"]) => "ListFunctions",
        ("lambda", "GET", [_, "functions", _]) => "GetFunction",
        ("lambda", "DELETE", [_, "functions", _]) => "DeleteFunction",
        ("lambda", "GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("lambda", "PUT", [_, "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("lambda", "PUT", [_, "functions", _, "code"]) => "UpdateFunctionCode",
        ("lambda", "POST", [_, "functions", _, "invocations"]) => "Invoke",
        ("lambda", "GET", [_, "tags", ..]) => "ListTags",
        ("lambda", "POST", [_, "tags", ..]) => "TagResource",
        ("lambda", "DELETE", [_, "tags", ..]) => "UntagResource",
        _ => return format!("{method} {path}"),
    };
    operation.to_owned()
}

/// Counts of calls, for the benchmark figures and the "no mutating call" tests.
pub fn count(requests: &[AwsRequest]) -> (usize, usize) {
    (
        requests.len(),
        requests.iter().filter(|r| r.is_mutating()).count(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
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
    BIN.get_or_init(|| {
        let test = std::env::current_exe().expect("the test executable's path");
        let dir = test.parent().and_then(Path::parent).expect("target/debug");
        let name = format!("cargo-fixedip-under-test{}", std::env::consts::EXE_SUFFIX);
        // With a separate build directory (`CARGO_BUILD_BUILD_DIR`), test executables stay there
        // and binaries are copied out to the target directory.
        let profile = dir.file_name().expect("a profile directory");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let bin = [dir.join(&name), target_dir.join(profile).join(&name)]
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
    })
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
        write_lambda_zip(
            &zip,
            &std::fs::read(binary).expect("the example binary"),
            &[],
        );
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

/// The fixture functions' workspace (`tests/fixtures/functions`).
pub fn fixtures_manifest() -> PathBuf {
    workspace_root().join("tests/fixtures/functions/Cargo.toml")
}

/// A fixture function (`egress-one`, `egress-three`, `egress-four`, `second-function`, `other-stack`,
/// `no-attribute`) as a Lambda zip. The fixtures are built once per test process, into
/// `target/fixtures` of the main workspace.
pub fn fixture_zip(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target = workspace_root().join("target/fixtures");
        let status = cargo()
            .args(["build", "--quiet", "--workspace", "--manifest-path"])
            .arg(fixtures_manifest())
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo build of the fixtures");
        assert!(
            status.success(),
            "cargo build of tests/fixtures/functions failed"
        );
        target.join("debug")
    });
    let zip = dir.join(format!("{name}.fixedip-test.zip"));
    // Tests run on threads of one process: one writes a zip while the others wait for it.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    if !zip.exists() {
        let binary =
            std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        write_lambda_zip(&zip, &binary, &[]);
    }
    zip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_from_each_protocol() {
        assert_eq!(
            query_action("Action=DescribeVpcs&Version=2016-11-15"),
            Some("DescribeVpcs".into())
        );
        assert_eq!(
            rest_operation("lambda", "PUT", "/2015-03-31/functions/f/code"),
            "UpdateFunctionCode"
        );
        assert_eq!(
            url_path("http://127.0.0.1:5/2015-03-31/functions/f?Qualifier=1"),
            "/2015-03-31/functions/f"
        );
        let read = AwsRequest {
            service: "ec2".into(),
            operation: "DescribeAddresses".into(),
        };
        let write = AwsRequest {
            service: "ec2".into(),
            operation: "CreateNatGateway".into(),
        };
        assert!(!read.is_mutating());
        assert!(write.is_mutating());
    }
}
