//! The one launcher of the local AWS emulator: a moto server of the caller's own on 127.0.0.1, with
//! the settings every fixedip test relies on (docs/emulator.md), and its request recording read back
//! as AWS operations.
//!
//! Every suite starts moto through [`Moto::start`]: the end-to-end tests (`fixedip-tests`), the chaos
//! proxy's tests (`fixedip-chaos`), and the scripts through the `fixedip-moto` binary
//! (`scripts/emulator.sh start`, `scripts/run-local.sh`). So all of them run against the same
//! emulator: the same validation, the same managed policies, the same Lambda without Docker.
//!
//! moto is installed by `scripts/emulator.sh install` (a venv in `$FIXEDIP_MOTO_VENV`, default
//! `<repo>/.venv/moto`); without it [`Moto::start`] fails and says what to run: tests never skip.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fixedip_core::operation;

/// The settings moto needs to behave as fixedip's tests expect (docs/emulator.md):
/// - managed policies: AttachRolePolicy of `AWSLambdaVPCAccessExecutionRole` needs them;
/// - instance type and AMI validation: RunInstances rejects what AWS would reject.
pub const SETTINGS: [(&str, &str); 3] = [
    ("MOTO_IAM_LOAD_MANAGED_POLICIES", "true"),
    ("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true"),
    ("MOTO_ENABLE_AMI_VALIDATION", "true"),
];

/// What werkzeug prints once it listens; the port follows.
const LISTENING: &str = "Running on http://127.0.0.1:";

/// The workspace root: this crate sits at `tests/moto`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/moto has a grandparent")
        .to_owned()
}

/// Where `scripts/emulator.sh install` puts `moto_server`, honouring the same override.
pub fn server_path() -> PathBuf {
    let venv = std::env::var_os("FIXEDIP_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/moto"));
    venv.join("bin/moto_server")
}

/// How to start moto.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The port to listen on; 0 (the default) lets moto bind a free one and announce it, so that
    /// no other process can take the port between its choice and moto's bind.
    pub port: u16,
    /// Copy moto's log (one line per request) to this process's stderr as well as to its file.
    pub echo: bool,
}

/// A moto server of the caller's own; stopped when dropped.
pub struct Moto {
    server: Child,
    port: u16,
    /// Holds moto's log and request recording; removed with the server.
    dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto on a port of its choosing and waits until it answers. Panics with what to do when
    /// moto is not installed or does not start.
    pub fn start() -> Moto {
        Moto::start_with(Options::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts moto as `options` say; the error says what went wrong and what to do.
    pub fn start_with(options: Options) -> Result<Moto, String> {
        let server = server_path();
        if !server.is_file() {
            return Err(format!(
                "the AWS emulator is not installed ({} is missing): run scripts/emulator.sh install",
                server.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("fixedip-moto-")
            .tempdir()
            .map_err(|e| format!("a temporary directory for moto: {e}"))?;
        let mut child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &options.port.to_string()])
            .envs(SETTINGS)
            // Every request is recorded from the start, into this server's own file.
            .env("MOTO_ENABLE_RECORDING", "true")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", server.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = dir.path().join("moto.log");
        let announced = copy_log(stderr, &log, options.echo, LISTENING);
        let port = match announced.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "moto_server did not announce its port within 60 s: {log}"
                ));
            }
        };
        let moto = Moto {
            server: child,
            port,
            dir,
        };
        moto.wait_until_ready()?;
        // There is no Docker engine: Lambda must not try to run functions in containers.
        moto.moto_api(
            "POST",
            "/moto-api/config",
            r#"{"lambda":{"use_docker":false}}"#,
        );
        Ok(moto)
    }

    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        // moto answers its own API with 201, even to a GET.
        while !matches!(
            self.try_moto_api("GET", "/moto-api/config", ""),
            Ok((200..=299, _))
        ) {
            if Instant::now() > deadline {
                return Err(format!(
                    "moto on port {} did not answer within 30 s: {}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, the value of `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A directory that lives as long as the server, for the caller's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What moto wrote to stderr (one line per request), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// Waits until the server exits (for the `fixedip-moto` binary).
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.server.wait()
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

    /// A point in the recording: [`Moto::requests_since`] returns what came after it.
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
    pub fn try_moto_api(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Copies a child's stderr to `log` (and to this process's stderr with `echo`) on a thread until it
/// closes, so that the pipe never fills; the first port announced after `marker` is sent back.
fn copy_log(
    stderr: ChildStderr,
    log: &Path,
    echo: bool,
    marker: &'static str,
) -> mpsc::Receiver<u16> {
    let (port_tx, port_rx) = mpsc::channel();
    let mut file = std::fs::File::create(log).ok();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(file) = file.as_mut() {
                let _ = writeln!(file, "{line}");
            }
            if echo {
                eprintln!("{line}");
            }
            if let Some(port) = announced_port(&line, marker) {
                if let Some(tx) = port_tx.take() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    port_rx
}

/// The port in a line like `... <marker>54321 ...`, if the line has the marker.
pub fn announced_port(line: &str, marker: &str) -> Option<u16> {
    let (_, rest) = line.split_once(marker)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A position in a server's request recording.
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
    /// Whether the call can change the account: fixedip-core's rule, shared with the CLI's call
    /// counter and the chaos proxy.
    pub fn is_mutating(&self) -> bool {
        operation::is_mutating(&self.operation)
    }

    /// The request of one recording entry, or `None` for moto's own API.
    fn from_recording(entry: &serde_json::Value) -> Option<AwsRequest> {
        let url = entry["url"].as_str()?;
        let header = |name: &str| {
            entry["headers"]
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))?
                .1
                .as_str()
        };
        let body = match (entry["body"].as_str(), entry["body_encoded"].as_bool()) {
            (Some(body), Some(true)) => base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default(),
            (Some(body), _) => body.as_bytes().to_vec(),
            (None, _) => Vec::new(),
        };
        let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
        let target = after_scheme
            .find('/')
            .map(|i| &after_scheme[i..])
            .unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let identified = operation::identify(&operation::Request {
            method: entry["method"].as_str().unwrap_or("GET"),
            path,
            query,
            authorization: header("Authorization"),
            target: header("X-Amz-Target"),
            body: &body,
        })?;
        Some(AwsRequest {
            service: identified.service,
            operation: identified.name,
        })
    }
}

/// Counts of calls (all, mutating), for the benchmark figures and the "no mutating call" tests.
pub fn count(requests: &[AwsRequest]) -> (usize, usize) {
    (
        requests.len(),
        requests.iter().filter(|r| r.is_mutating()).count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(entry: serde_json::Value) -> Option<AwsRequest> {
        AwsRequest::from_recording(&entry)
    }

    #[test]
    fn recording_entries_are_named_by_the_shared_classifier() {
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, \
                    SignedHeaders=host, Signature=0";
        let describe = recorded(serde_json::json!({
            "method": "POST",
            "url": "http://127.0.0.1:5000/",
            "headers": {"Authorization": auth},
            "body": base64::engine::general_purpose::STANDARD.encode("Action=DescribeVpcs&Version=2016-11-15"),
            "body_encoded": true,
        }))
        .unwrap();
        assert_eq!(
            (describe.service.as_str(), describe.operation.as_str()),
            ("ec2", "DescribeVpcs")
        );
        assert!(!describe.is_mutating());
        let lambda_auth = auth.replace("/ec2/", "/lambda/");
        let code = recorded(serde_json::json!({
            "method": "PUT",
            "url": "http://127.0.0.1:5000/2015-03-31/functions/f/code?Qualifier=1",
            "headers": {"authorization": lambda_auth},
            "body": "{}",
        }))
        .unwrap();
        assert_eq!(code.operation, "UpdateFunctionCode");
        assert!(code.is_mutating());
        assert_eq!(count(&[describe, code]), (2, 1));
        let admin = recorded(serde_json::json!({
            "method": "POST",
            "url": "http://127.0.0.1:5000/moto-api/reset",
            "headers": {},
            "body": "",
        }));
        assert_eq!(admin, None);
    }

    #[test]
    fn the_port_is_read_from_werkzeug_s_line() {
        let line = " * Running on http://127.0.0.1:54321 (Press CTRL+C to quit)";
        assert_eq!(announced_port(line, LISTENING), Some(54321));
        assert_eq!(
            announced_port("WARNING: development server", LISTENING),
            None
        );
    }
}
