//! `fixedip-chaos`: the chaos proxy by hand, in front of a running moto server.
//!
//! ```text
//! scripts/emulator.sh start 5000 &
//! cargo run -p fixedip-chaos -- --upstream http://127.0.0.1:5000 --listen 127.0.0.1:5001 \
//!     --latency-ms 100 --throttle-rate 0.2 --nat-pending 60s --eni-linger 90s
//! AWS_ENDPOINT_URL=http://127.0.0.1:5001 cargo fixedip deploy
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fixedip_chaos::{
    CallMatcher, ChaosProxy, Fault, FaultRule, HyperplaneEnis, Latency, ProxyOptions, Scenario,
    Trigger,
};

/// A proxy between the AWS SDK and moto that adds AWS's latency, faults, timing and dependency rules.
#[derive(Parser, Debug)]
#[command(name = "fixedip-chaos", version)]
struct Args {
    /// The moto server to forward to.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    upstream: String,
    /// Where to listen (loopback only); give this to the client as AWS_ENDPOINT_URL.
    #[arg(long, default_value = "127.0.0.1:5001")]
    listen: SocketAddr,
    /// A scenario file (JSON, see docs/chaos.md); the flags below are applied on top of it.
    #[arg(long)]
    scenario: Option<std::path::PathBuf>,
    /// Fixed latency added to every AWS call.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Share of calls answered with the service's throttling error (0.0 to 1.0).
    #[arg(long)]
    throttle_rate: Option<f64>,
    /// Share of calls answered with HTTP 500 (0.0 to 1.0).
    #[arg(long)]
    error_rate: Option<f64>,
    /// Share of calls whose response is lost after moto applied them (0.0 to 1.0).
    #[arg(long)]
    lost_response_rate: Option<f64>,
    /// NAT gateways stay `pending` this long after creation and `deleting` after deletion (e.g. 60s).
    #[arg(long, value_parser = parse_duration)]
    nat_pending: Option<Duration>,
    /// Functions stay `Pending` this long after creation, and `InProgress` after an update.
    #[arg(long, value_parser = parse_duration)]
    lambda_pending: Option<Duration>,
    /// A new IAM role cannot be assumed by Lambda for this long.
    #[arg(long, value_parser = parse_duration)]
    role_propagation: Option<Duration>,
    /// Create Lambda's Hyperplane ENIs, and keep them this long after the function lets go of them.
    #[arg(long, value_parser = parse_duration)]
    eni_linger: Option<Duration>,
    /// Enforce the dependency rules moto skips (DeleteSubnet, DeleteSecurityGroup, ReleaseAddress,
    /// DetachInternetGateway, DeleteVpc).
    #[arg(long)]
    dependency_rules: bool,
    /// All of AWS's timing and rules at once, durations multiplied by this factor (1 = real AWS).
    #[arg(long)]
    aws_like: Option<f64>,
    /// Seed of the random choices, to replay a run.
    #[arg(long)]
    seed: Option<u64>,
    /// Do not print each call to stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// `250ms`, `8s`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. 500ms, 60s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in `{text}`: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn scenario(args: &Args) -> Result<Scenario, String> {
    let mut scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not a scenario: {e} (see docs/chaos.md)",
                    path.display()
                )
            })?
        }
        None => Scenario::default(),
    };
    if let Some(scale) = args.aws_like {
        let faults = std::mem::take(&mut scenario.faults);
        scenario = Scenario {
            faults,
            ..Scenario::aws_like(scale)
        };
    }
    let ms = |d: Duration| d.as_millis() as u64;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(latency) = args.latency_ms {
        scenario.latency = Some(Latency::Fixed { ms: latency });
    }
    let rates = [
        (args.throttle_rate, Fault::Throttle),
        (args.error_rate, Fault::InternalError),
        (args.lost_response_rate, Fault::LostResponse),
    ];
    for (rate, fault) in rates {
        if let Some(rate) = rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("a rate is between 0 and 1, not {rate}"));
            }
            scenario.faults.push(FaultRule {
                fault,
                matches: CallMatcher::default(),
                when: Trigger::Rate(rate),
            });
        }
    }
    if let Some(d) = args.nat_pending {
        scenario.timing.nat_pending_ms = ms(d);
        scenario.timing.nat_deleting_ms = ms(d);
    }
    if let Some(d) = args.lambda_pending {
        scenario.timing.lambda_pending_ms = ms(d);
        scenario.timing.lambda_update_ms = ms(d);
    }
    if let Some(d) = args.role_propagation {
        scenario.timing.role_propagation_ms = ms(d);
    }
    if let Some(d) = args.eni_linger {
        scenario.hyperplane_enis = Some(HyperplaneEnis { linger_ms: ms(d) });
    }
    scenario.dependency_rules |= args.dependency_rules;
    Ok(scenario)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let scenario = match scenario(&args) {
        Ok(scenario) => scenario,
        Err(message) => {
            eprintln!("fixedip-chaos: {message}");
            return ExitCode::from(2);
        }
    };
    let options = ProxyOptions {
        upstream: args.upstream.clone(),
        listen: args.listen,
        scenario,
        echo: !args.quiet,
    };
    match ChaosProxy::start_with(options).await {
        Ok(proxy) => {
            eprintln!(
                "fixedip-chaos: {} → {}  (export AWS_ENDPOINT_URL={}; log at {}/_chaos/log)",
                proxy.url(),
                args.upstream,
                proxy.url(),
                proxy.url()
            );
            tokio::select! {
                _ = proxy.serve_forever() => ExitCode::FAILURE,
                _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
            }
        }
        Err(error) => {
            eprintln!("fixedip-chaos: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("8"), Ok(Duration::from_secs(8)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_build_the_scenario() {
        let args = Args::parse_from([
            "fixedip-chaos",
            "--latency-ms",
            "100",
            "--throttle-rate",
            "0.2",
            "--nat-pending",
            "60s",
            "--eni-linger",
            "90s",
        ]);
        let s = scenario(&args).unwrap();
        assert_eq!(s.latency, Some(Latency::Fixed { ms: 100 }));
        assert_eq!(s.faults[0].when, Trigger::Rate(0.2));
        assert_eq!(s.timing.nat_pending_ms, 60_000);
        assert_eq!(
            s.hyperplane_enis,
            Some(HyperplaneEnis { linger_ms: 90_000 })
        );
    }
}
