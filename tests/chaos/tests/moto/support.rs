//! A moto server per test (its own state, so tests cannot see each other's resources), the proxy in
//! front of it, and SDK clients pointed at the proxy.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use bytes::Bytes;
use fixedip_chaos::{ChaosProxy, Scenario};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A moto server of the test's own, started as every suite starts it (fixedip-moto: port 0 and the
/// announced port, the full settings of docs/emulator.md, recording).
pub use fixedip_moto::Moto;

/// Starts moto without blocking the test's runtime.
pub async fn start_moto() -> Moto {
    tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto starts")
}

/// The port a child process says it listens on, in the first stderr line carrying `marker`
/// followed by the port. Its stderr is read to its end on a thread, so that the pipe never fills.
pub async fn announced_port(child: &mut Child, marker: &'static str) -> u16 {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = fixedip_moto::announced_port(&line, marker) {
                if let Some(tx) = port_tx.take() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    tokio::task::spawn_blocking(move || port_rx.recv_timeout(Duration::from_secs(60)))
        .await
        .expect("the port reader ends")
        .unwrap_or_else(|_| panic!("no `{marker}<port>` on stderr within 60 s"))
}

/// A plain HTTP call (for moto's and the proxy's own APIs); returns status and body.
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// moto and the proxy in front of it.
pub struct Rig {
    pub moto: Moto,
    pub proxy: ChaosProxy,
}

impl Rig {
    pub async fn start(scenario: Scenario) -> Rig {
        let moto = start_moto().await;
        let proxy = ChaosProxy::start(&moto.url(), scenario)
            .await
            .expect("the proxy starts");
        Rig { moto, proxy }
    }

    /// SDK configuration through the proxy, with `attempts` tries per call (the SDK's standard retry).
    pub async fn sdk(&self, attempts: u32) -> SdkConfig {
        sdk_config(&self.proxy.url(), attempts).await
    }

    /// SDK configuration straight to moto, to look at the truth behind the proxy.
    pub async fn direct(&self) -> SdkConfig {
        sdk_config(&self.moto.url(), 1).await
    }
}

async fn sdk_config(endpoint: &str, attempts: u32) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDCHAOSTEST",
            "secret",
            None,
            None,
            "chaos-tests",
        ))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .load()
        .await
}

/// The VPCs moto holds, besides the default one.
pub async fn vpc_count(config: &SdkConfig) -> usize {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    vpcs.vpcs()
        .iter()
        .filter(|v| v.is_default() != Some(true))
        .count()
}

/// The error code of a failed SDK call ("RequestLimitExceeded", "DependencyViolation"...).
pub fn code<E, R>(result: Result<impl Sized, aws_sdk_ec2::error::SdkError<E, R>>) -> String
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => "<succeeded>".to_string(),
        Err(error) => error
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_string)
            .unwrap_or_else(|| format!("<not a service error: {error:?}>")),
    }
}

/// A minimal VPC with one subnet, as the tests need it.
pub struct Network {
    pub vpc_id: String,
    pub subnet_id: String,
}

pub async fn network(ec2: &aws_sdk_ec2::Client) -> Network {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/24")
        .send()
        .await
        .expect("CreateVpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.0.0/28")
        .availability_zone("us-east-1a")
        .send()
        .await
        .expect("CreateSubnet");
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_string();
    Network { vpc_id, subnet_id }
}
