//! The command-line proxy, as a person would start it in front of moto.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{announced_port, code, http, start_moto};

/// Kills the proxy process when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_starts_a_proxy_with_the_flags_scenario() {
    let moto = start_moto().await;
    // Port 0: the proxy binds a free port and prints it (a port picked first could be taken
    // meanwhile by a test running alongside).
    let mut child = Command::new(env!("CARGO_BIN_EXE_fixedip-chaos"))
        .args([
            "--upstream",
            &moto.url(),
            "--listen",
            "127.0.0.1:0",
            "--quiet",
        ])
        .args([
            "--throttle-rate",
            "1",
            "--nat-pending",
            "2s",
            "--eni-linger",
            "500ms",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("fixedip-chaos starts");
    let port = announced_port(&mut child, "fixedip-chaos: http://127.0.0.1:").await;
    let _proxy = Running(child);
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let scenario = loop {
        if let Ok((200, body)) = http(&url, "GET", "/_chaos/scenario", "").await {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not answer on {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(scenario["timing"]["nat_pending_ms"], 2000);
    assert_eq!(scenario["hyperplane_enis"]["linger_ms"], 500);
    assert_eq!(scenario["faults"][0]["when"]["rate"], 1.0);

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "a", "b", None, None, "t",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    assert_eq!(
        code(ec2.describe_vpcs().send().await),
        "RequestLimitExceeded"
    );
}

#[test]
fn a_non_loopback_address_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_fixedip-chaos"))
        .args(["--listen", "0.0.0.0:5001"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
}
