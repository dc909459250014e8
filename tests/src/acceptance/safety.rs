//! Before a run against AWS spends anything: what it creates, what it costs (from fixedip's own
//! price table, `fixedip_core::cost`), how long it takes, and a yes from the maintainer.

use std::io::{BufRead, IsTerminal, Write};

use fixedip_core::cost::{self, Usd};

/// What a run holds, counted the way AWS bills it: a NAT gateway by the hour or part of one, so
/// each one the scenarios create counts at least an hour; every public IPv4 address by the hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// NAT gateways created: 2 (first deploy), 3 (`azs = 3`), 3 (the redeploy after destroy),
    /// 2 (the existing VPC): each under an hour in a run that goes well.
    pub nat_gateway_hours: u64,
    /// At most 5 addresses (3 of the stack, 2 of the existing VPC) for the run's length.
    pub ipv4_hours: u64,
    /// 2 t4g.nano NAT instances, under an hour.
    pub instance_hours: u64,
    pub total: Usd,
    /// The expected wall time; Lambda's interfaces can add 45 minutes to a destroy on a bad day.
    pub minutes: u64,
}

/// A run's expected wall time on AWS: NAT gateways take 1–3 minutes to come and go, NAT
/// instances 1–2 to boot, and each destroy waits for Lambda's interfaces (often 20 minutes).
pub const EXPECTED_MINUTES: u64 = 90;

pub fn estimate(region: &str) -> Result<Estimate, String> {
    let prices = cost::prices(region).map_err(|e| e.to_string())?;
    let hours = EXPECTED_MINUTES.div_ceil(60);
    let (nat_gateway_hours, ipv4_hours, instance_hours) = (10, 5 * hours, 2);
    // Not every region of the table prices the instance: a few cents either way.
    let nano = prices.t4g_nano_hour.unwrap_or_default();
    let micros = nat_gateway_hours * prices.nat_gateway_hour.micros
        + ipv4_hours * prices.public_ipv4_hour.micros
        + instance_hours * nano.micros;
    Ok(Estimate {
        nat_gateway_hours,
        ipv4_hours,
        instance_hours,
        total: Usd::from_micros(micros),
        minutes: EXPECTED_MINUTES,
    })
}

/// What the maintainer reads before saying yes.
pub fn announcement(region: &str, stack: &str, estimate: &Estimate) -> String {
    format!(
        "The acceptance suite will create, in AWS region {region}, stack {stack}:\n\
         - a VPC in 2, then 3 AZs: subnets, an internet gateway, NAT gateways, NAT instances \
         (t4g.nano), no NAT with an S3 gateway endpoint;\n\
         - up to 3 Elastic IPs, released at the end;\n\
         - an IAM role and 2 Lambda functions (examples/hello-egress, built for Lambda by deploy);\n\
         - a VPC of its own with 2 NAT gateways and 2 Elastic IPs (the existing-VPC scenario).\n\
         Everything carries the run's tag and is swept at the end, even after a failure.\n\
         Estimated cost: {} ({} NAT gateway-hours, {} public IPv4 address-hours, {} t4g.nano hours \
         at fixedip's {region} prices; data and Lambda are cents).\n\
         Expected time: about {} minutes (more if Lambda keeps its network interfaces long).\n",
        estimate.total,
        estimate.nat_gateway_hours,
        estimate.ipv4_hours,
        estimate.instance_hours,
        estimate.minutes,
    )
}

/// `--yes`, or `yes` typed at a terminal; anything else refuses.
pub fn confirmed(yes: bool) -> Result<(), String> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err("not a terminal: pass --yes to start a run against AWS".into());
    }
    eprint!("Type yes to start: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    match answer.trim() {
        "yes" => Ok(()),
        _ => Err("not confirmed: nothing was created".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_in_us_east_1_costs_what_the_price_table_says() {
        let us = estimate("us-east-1").unwrap();
        let prices = cost::prices("us-east-1").unwrap();
        assert_eq!(
            us.total.micros,
            10 * prices.nat_gateway_hour.micros
                + 10 * prices.public_ipv4_hour.micros
                + 2 * prices.t4g_nano_hour.unwrap().micros
        );
        let text = announcement("us-east-1", "fixedip-acc-0a1b2c3d", &us);
        assert!(text.contains(&us.total.to_string()), "{text}");
        assert!(estimate("xx-nowhere-1").is_err());
    }
}
