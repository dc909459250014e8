//! The live probe: does the deployed function leave from one of the stack's IPs, or, isolated,
//! from nowhere while an AWS service behind its gateway endpoint still answers?
//!
//! On AWS the function itself fetches a what-is-my-IP service: it is invoked with the probe event
//! `{"fixedip": "probe"}` (what `cargo fixedip verify --probe` sends) and answers
//! `{"ip": …}`. On the emulator nothing runs, so the data-plane twin (`crate::twin`, docs/twin.md)
//! runs the same binary in network namespaces built from what fixedip's reader observes.

use std::collections::BTreeSet;
use std::path::Path;

use cargo_fixedip::aws::nat_instance::USER_DATA;
use cargo_fixedip::aws::network::{function_attachment, observe_network};
use cargo_fixedip::aws::Aws;

use super::Target;
use crate::twin::Twin;

/// What the probe expects of the function's egress.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Every answer is one of these IPs.
    FromIps(BTreeSet<String>),
    /// No answer from the internet; `s3_function` (on AWS: a function whose what-is-my-IP URL is
    /// S3's) reaches S3 through the gateway endpoint.
    Isolated { s3_function: String },
}

/// Probes `function` (its binary, for the twin) on `target`.
pub async fn probe(
    target: &Target,
    function: &str,
    binary: &Path,
    expect: &Expect,
) -> Result<String, String> {
    match target {
        Target::Emulator { .. } => twin_probe(target, function, binary, expect).await,
        Target::Aws { .. } => invoke_probe(target, function, expect).await,
    }
}

async fn twin_probe(
    target: &Target,
    function: &str,
    binary: &Path,
    expect: &Expect,
) -> Result<String, String> {
    let aws = Aws::from_config(target.sdk_config().await);
    let attachment = function_attachment(&aws, function)
        .await
        .map_err(|e| e.to_string())?;
    let network = observe_network(&aws, &attachment)
        .await
        .map_err(|e| e.to_string())?;
    let twin = Twin::build(&network, &attachment, USER_DATA)?;
    let seen = twin.egress_ips(binary).await;
    if seen.is_empty() {
        return Err("the function is in no subnet: nothing to probe".into());
    }
    for ((subnet, probe), answer) in &seen {
        let answer = answer
            .as_ref()
            .map(|ip| ip.to_string())
            .map_err(String::clone);
        check(expect, &answer).map_err(|e| format!("from {subnet} to {probe}: {e}"))?;
    }
    if let Expect::Isolated { .. } = expect {
        let s3 = twin
            .service_address("s3")
            .ok_or("no route to S3's gateway endpoint")?;
        for subnet in &attachment.subnet_ids {
            twin.egress_ip(subnet, s3, binary)
                .await
                .map_err(|e| format!("S3 from {subnet}: {e}"))?;
        }
    }
    Ok(format!("{} paths probed in the twin", seen.len()))
}

/// An answer as the expectation wants it.
fn check(expect: &Expect, answer: &Result<String, String>) -> Result<(), String> {
    match (expect, answer) {
        (Expect::FromIps(ips), Ok(ip)) if ips.contains(ip) => Ok(()),
        (Expect::FromIps(ips), Ok(ip)) => Err(format!("left from {ip}, not one of {ips:?}")),
        (Expect::FromIps(_), Err(e)) => Err(format!("no egress: {e}")),
        (Expect::Isolated { .. }, Ok(ip)) => Err(format!("an isolated function left from {ip}")),
        (Expect::Isolated { .. }, Err(_)) => Ok(()),
    }
}

async fn invoke_probe(target: &Target, function: &str, expect: &Expect) -> Result<String, String> {
    let lambda = aws_sdk_lambda::Client::new(&target.sdk_config().await);
    let answer = invoke(&lambda, function).await?;
    check(expect, &answer)?;
    match expect {
        Expect::FromIps(_) => Ok(format!("answered {}", answer.unwrap_or_default())),
        Expect::Isolated { s3_function } => match invoke(&lambda, s3_function).await? {
            // S3 answered (an error status or a document that is no address): reached.
            Err(e) if e.contains(" answered ") => Ok(format!("internet: none; S3: {e}")),
            Err(e) => Err(format!("S3 through the gateway endpoint: {e}")),
            Ok(ip) => Err(format!("S3's URL answered an address, {ip}")),
        },
    }
}

/// One invocation with the probe event: `Ok(ip)`, or the function's error message.
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<Result<String, String>, String> {
    let output = lambda
        .invoke()
        .function_name(function)
        .payload(aws_smithy_types::Blob::new(r#"{"fixedip":"probe"}"#))
        .send()
        .await
        .map_err(|e| format!("Invoke {function}: {}", cargo_fixedip::aws::error_chain(&e)))?;
    let payload: serde_json::Value = output
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or_default();
    if output.function_error().is_some() {
        let message = payload["errorMessage"].as_str().unwrap_or("no message");
        return Ok(Err(message.to_owned()));
    }
    match payload["ip"].as_str() {
        Some(ip) => Ok(Ok(ip.to_owned())),
        None => Err(format!("{function} answered {payload} without an ip")),
    }
}
