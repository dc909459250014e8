//! The cost model: what a stack costs per month before any data flows, and what each GB through
//! its NAT gateways adds, from a dated price table kept in the repository.
//!
//! Prices are per hour and per GB in US dollars, held exactly (in millionths). A month is
//! [`HOURS_PER_MONTH`] hours. What is billed by the hour: each NAT gateway or NAT instance, and
//! each public IPv4
//! address (the Elastic IP of every NAT, and every address the stack retains or adopted, since AWS
//! bills addresses whether or not they are in use), and each interface VPC endpoint per AZ. Data
//! through a NAT gateway (and through an interface endpoint) is billed per GB on top; data transfer
//! out to the internet, billed the same with or without fixedip, is left out. Gateway endpoints (S3,
//! DynamoDB) are free, and the traffic they carry no longer pays the NAT's per-GB price.
//!
//! A NAT instance (`nat = "instance"`) is billed as the EC2 instance it is, with no per-GB
//! processing charge; only its default type, [`NAT_INSTANCE_TYPE_PRICED`], is in the table, in
//! the regions whose price was read. Its root volume (8 GB of gp3, about $0.64 a month in
//! us-east-1 and $0.77 in ap-northeast-1) is not billed by the hour and is left out: `plan` says so.

use std::fmt;

use crate::plan::Plan;
use crate::requirements::EndpointKind;

/// The date the price table was last read from the AWS price pages.
pub const PRICES_DATE: &str = "2026-11-01";
/// Hours in a month, as AWS's own price calculator counts them.
pub const HOURS_PER_MONTH: u64 = 730;

/// An amount of US dollars, held in millionths so that prices and their sums are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd {
    pub micros: u64,
}

impl Usd {
    pub const fn from_micros(micros: u64) -> Usd {
        Usd { micros }
    }

    /// The amount in dollars, for display and JSON.
    pub fn dollars(self) -> f64 {
        self.micros as f64 / 1_000_000.0
    }
}

impl Usd {
    /// A price per unit with the precision it has: `$0.045`, `$0.0042`, `$1.20`. Amounts (what a
    /// month costs) are rounded to the cent by `Display`; prices never are, so that every command
    /// shows a price the same way.
    pub fn as_rate(self) -> String {
        let dollars = self.micros / 1_000_000;
        let fraction = format!("{:06}", self.micros % 1_000_000);
        let trimmed = fraction.trim_end_matches('0');
        let decimals = if trimmed.len() < 2 {
            &fraction[..2]
        } else {
            trimmed
        };
        format!("${dollars}.{decimals}")
    }
}

impl fmt::Display for Usd {
    /// Rounded to the cent: `$73.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = (self.micros + 5_000) / 10_000;
        write!(f, "${}.{:02}", cents / 100, cents % 100)
    }
}

impl serde::Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.dollars())
    }
}

/// The prices of one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RegionPrices {
    pub region: &'static str,
    /// The NAT gateway price was read from an AWS price list or bill ([`RegionPrices::source`]);
    /// `false`: not confirmed by one, `plan` says so.
    pub checked: bool,
    /// Where the NAT gateway price comes from, and when it was read.
    pub source: &'static str,
    pub nat_gateway_hour: Usd,
    /// Data processed by a NAT gateway, per GB.
    pub nat_gateway_gb: Usd,
    /// Every public IPv4 address, Elastic IPs included, in use or not.
    pub public_ipv4_hour: Usd,
    /// A t4g.nano instance (Linux, on demand), for `nat = "instance"`; `None`: not in the table.
    pub t4g_nano_hour: Option<Usd>,
}

/// What is billed by the hour: the count of each kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Topology {
    pub nat_gateways: u32,
    /// NAT instances, of [`NAT_INSTANCE_TYPE_PRICED`].
    pub nat_instances: u32,
    /// Elastic IPs: those of the NATs, retained ones and adopted ones alike.
    pub public_ipv4: u32,
    /// Interface VPC endpoints times the AZs each has network interfaces in.
    pub interface_endpoint_azs: u32,
    /// Gateway VPC endpoints (free).
    pub gateway_endpoints: u32,
}

impl Topology {
    /// What exists once the plan is applied: its AZs (a held-back AZ has its address but no NAT
    /// yet), the slots beyond them that stay, retained addresses. Removed slots and destroyed
    /// stacks count only the addresses they keep.
    pub fn of_plan(plan: &Plan) -> Topology {
        let network = &plan.network;
        let count = |n: usize| u32::try_from(n).expect("a stack holds few resources");
        // In `nat = "instance"` mode a slot's NAT is an instance (the view's `nat_gateway`).
        let instances = network.nat_instance_type.is_some();
        let nats = network
            .azs
            .iter()
            .filter(|az| az.nat_gateway.exists_after());
        let nats = nats.count();
        let addresses = network.azs.iter().filter(|az| az.address.1.exists_after());
        let surplus_nats = network
            .surplus_slots
            .iter()
            .filter(|s| s.nat_gateway.is_some());
        let surplus_addresses = network.surplus_slots.iter().filter(|s| s.address.is_some());
        let endpoints = network.endpoints.iter().filter(|e| e.status.exists_after());
        let (interface, gateway): (Vec<_>, Vec<_>) =
            endpoints.partition(|e| e.kind == EndpointKind::Interface);
        Topology {
            nat_gateways: count(if instances { 0 } else { nats } + surplus_nats.count()),
            nat_instances: count(if instances { nats } else { 0 }),
            public_ipv4: count(
                addresses.count() + surplus_addresses.count() + network.retained_addresses.len(),
            ),
            interface_endpoint_azs: interface.iter().map(|e| e.azs).sum(),
            gateway_endpoints: count(gateway.len()),
        }
    }
}

/// One line of a bill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CostLine {
    /// "NAT gateway", "public IPv4 address".
    pub item: &'static str,
    pub quantity: u32,
    pub hourly: Usd,
    /// quantity × hourly × [`HOURS_PER_MONTH`].
    pub monthly: Usd,
}

/// The monthly cost of a stack in one region.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyCost {
    pub region: String,
    pub prices_date: &'static str,
    /// Whether the region's prices were checked on that date.
    pub prices_checked: bool,
    /// Where the region's NAT gateway price comes from.
    pub prices_source: &'static str,
    pub lines: Vec<CostLine>,
    /// The sum of the lines: what the stack costs before any data flows.
    pub fixed_total: Usd,
    /// Added per GB that leaves through the NAT gateways.
    pub per_gb: Usd,
    /// Added per GB through the interface endpoints, when there are some.
    pub endpoint_per_gb: Option<Usd>,
    /// What is billed by the hour but not in the table (NAT instances of another type or in
    /// another region), said rather than guessed; `None`: everything is counted.
    pub unpriced: Option<String>,
    /// With `nats` fewer than `azs`: what the same stack costs with one NAT gateway per AZ, the
    /// default, so that `plan` can show what the fewer NATs save. `None` otherwise.
    pub with_one_nat_per_az: Option<Usd>,
    /// With `nats` fewer than `azs`: the traffic of the AZs served by another AZ's NAT also pays
    /// data transfer between AZs. `None` when every AZ has its own NAT.
    pub cross_az: Option<CrossAz>,
    /// The NAT instances are self-healing groups of one (`nat-self-healing`): what they give up
    /// against NAT gateways reads otherwise.
    pub nat_self_healing: bool,
}

/// Data transfer between AZs, for the AZs whose traffic leaves through another AZ's NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CrossAz {
    /// AZs served by another AZ's NAT, of `azs` in all.
    pub served_across: u32,
    pub azs: u32,
    /// Per GB of their traffic: [`CROSS_AZ_GB_EACH_WAY`] out of their AZ plus the same into the
    /// NAT's.
    pub per_gb: Usd,
    /// Where the price comes from; not confirmed by a price list read here.
    pub source: &'static str,
}

/// Data transferred between AZs of one region, billed in each direction.
pub const CROSS_AZ_GB_EACH_WAY: Usd = usd(10_000);
/// Not confirmed by a price list read here: the figure of the issue that asked for it (16) and of
/// AWS's EC2 on-demand pricing page, section "Data Transfer within the same AWS Region".
pub const CROSS_AZ_SOURCE: &str = "https://aws.amazon.com/ec2/pricing/on-demand/ (Data Transfer within the same AWS Region: $0.01/GB in each direction), not confirmed";

impl MonthlyCost {
    /// What fewer NATs than AZs save per month against one NAT gateway per AZ.
    pub fn saving(&self) -> Option<Usd> {
        self.with_one_nat_per_az
            .map(|full| usd(full.micros.saturating_sub(self.fixed_total.micros)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    #[error(
        "no prices for region {region} in the table of {PRICES_DATE}; known regions: {}",
        known.join(", ")
    )]
    UnknownRegion {
        region: String,
        known: Vec<&'static str>,
    },
    #[error(
        "no interface VPC endpoint prices for region {region} in the table of {ENDPOINT_PRICES_DATE}; known regions: {}; see {ENDPOINT_PRICES_SOURCE}",
        known.join(", ")
    )]
    NoEndpointPrices {
        region: String,
        known: Vec<&'static str>,
    },
}

/// The cost line of gateway endpoints; `plan` says on a line of its own why they are worth it.
pub const GATEWAY_ENDPOINT_ITEM: &str = "gateway endpoint (free)";

const fn usd(micros: u64) -> Usd {
    Usd::from_micros(micros)
}

/// The one NAT instance type the table prices: the default `nat-instance-type`.
pub const NAT_INSTANCE_TYPE_PRICED: &str = "t4g.nano";
/// The cost line of NAT instances.
pub const NAT_INSTANCE_ITEM: &str = "NAT instance (t4g.nano)";

/// Public IPv4 addresses cost the same in every region.
const PUBLIC_IPV4_HOUR: Usd = usd(5_000);

const fn region(
    region: &'static str,
    checked: bool,
    nat_micros: u64,
    source: &'static str,
) -> RegionPrices {
    // A NAT gateway's hourly and per-GB prices are the same number in every region listed here.
    RegionPrices {
        region,
        checked,
        source,
        nat_gateway_hour: usd(nat_micros),
        nat_gateway_gb: usd(nat_micros),
        public_ipv4_hour: PUBLIC_IPV4_HOUR,
        t4g_nano_hour: None,
    }
}

/// Hourly NAT gateway prices come from an AWS Price List snapshot: the EC2 offer files
/// of version 20260904231117 (published 2026-09-04), as trimmed into `internal/cost/prices/aws.json`
/// of github.com/mooncitizen/togen (commit 36c1abbf, dated 2026-09-06), one
/// `<prefix>-NatGateway-Hours` SKU per region. docs/prices.md quotes every row's source. For the regions marked with this, no source for the per-GB
/// price was found: it is taken to equal the hourly one, as it does in all 14 regions where both
/// were read.
const HOURLY_ONLY: &str =
    "AWS Price List, EC2 offer 20260904231117, hourly price only: per-GB assumed equal";

/// Sorted by region. A commercial region that is not here (ap-east-1, ap-east-2, ap-southeast-3,
/// -4, -5, -7, ca-west-1, il-central-1 and mx-central-1: no price source could be read for them)
/// is planned and deployed with its cost unknown (a warning, never a refusal). Public IPv4 is
/// $0.005/h in every region (AWS, since 2024-02-01). `checked`: both NAT prices read from a price
/// list or a bill.
static PRICE_TABLE: [RegionPrices; 24] = [
    region(
        "af-south-1",
        true,
        57_000,
        "AWS Price List, EC2 offer 20260904231117 (AFS1-NatGateway-Hours; -Bytes in a Cape Town price table quoting SKU VJUNJK7THUCUPZ5C)",
    ),
    // t4g.nano, Linux on demand: $0.0054/h in Tokyo (a table of 2026 calling itself an
    // estimate: not confirmed), $0.0042/h in N. Virginia (Karpenter's generated price file of
    // 2026-07-20, aws/karpenter-provider-aws), $0.0028/h in Mumbai (official pricing read
    // 2026-08-07, quoted in a cost note).
    RegionPrices {
        t4g_nano_hour: Some(usd(5_400)),
        ..region(
            "ap-northeast-1",
            true,
            62_000,
            "AWS price page and Price List API (APN1-NatGateway-Hours, -Bytes), read 2026-09-25",
        )
    },
    region(
        "ap-northeast-2",
        true,
        59_000,
        "AWS Price List (APN2-NatGateway-Hours, offer 20260904231117; \"$0.059 per GB Data Processed by NAT Gateways\", 2026-10-01)",
    ),
    region("ap-northeast-3", false, 62_000, HOURLY_ONLY),
    RegionPrices {
        t4g_nano_hour: Some(usd(2_800)),
        ..region(
            "ap-south-1",
            true,
            56_000,
            "AWS Price List (APS3-NatGateway-Hours, offer 20260904231117; per GB from the price list of 2026-09-22)",
        )
    },
    region(
        "ap-south-2",
        false,
        56_000,
        "an AWS bill for Asia Pacific (Hyderabad), June 2026: \"$0.056 per NAT gateway Hour\"; per-GB assumed equal",
    ),
    region(
        "ap-southeast-1",
        true,
        59_000,
        "AWS Price List (APS1-NatGateway-Hours, offer 20260904231117) and an AWS bill for ap-southeast-1 (May 2025): $0.059/GB",
    ),
    region(
        "ap-southeast-2",
        true,
        59_000,
        "AWS Price List (APS2-NatGateway-Hours, offer 20260904231117); $0.059/GB in a 2026 cost note",
    ),
    region("ca-central-1", false, 50_000, HOURLY_ONLY),
    region(
        "eu-central-1",
        true,
        52_000,
        "AWS Price List (EUC1-NatGateway-Hours, offer 20260904231117); $0.052/GB in a 2026 design record",
    ),
    region("eu-central-2", false, 57_200, HOURLY_ONLY),
    region("eu-north-1", false, 46_000, HOURLY_ONLY),
    region("eu-south-1", false, 50_000, HOURLY_ONLY),
    region("eu-south-2", false, 48_000, HOURLY_ONLY),
    region(
        "eu-west-1",
        true,
        48_000,
        "AWS Price List rows EU-NatGateway-Hours and EU-NatGateway-Bytes ($0.048), offer 20260904231117",
    ),
    region(
        "eu-west-2",
        true,
        50_000,
        "AWS Price List offer CSV 20260904231117 (EUW2-NatGateway-Hours and -Bytes)",
    ),
    region("eu-west-3", false, 50_000, HOURLY_ONLY),
    region(
        "me-central-1",
        true,
        52_800,
        "AWS Price List (MEC1-NatGateway-Hours, offer 20260904231117; per GB from the EC2 price list of 2026-09-25)",
    ),
    region("me-south-1", false, 52_800, HOURLY_ONLY),
    region(
        "sa-east-1",
        true,
        93_000,
        "AWS Price List (SAE1-NatGateway-Hours, offer 20260904231117); $0.093/GB from the price list of July 2026",
    ),
    RegionPrices {
        t4g_nano_hour: Some(usd(4_200)),
        ..region(
            "us-east-1",
            true,
            45_000,
            "AWS Price List, SKU M2YSHUBETB3JX4M4 ($0.045 per NAT Gateway hour and per GB), read 2026-11-01",
        )
    },
    region(
        "us-east-2",
        true,
        45_000,
        "AWS Price List (USE2-NatGateway-Hours, offer 20260904231117); per GB from the AWS VPC pricing page as read 2026-09-20",
    ),
    region("us-west-1", false, 48_000, HOURLY_ONLY),
    region(
        "us-west-2",
        true,
        45_000,
        "AWS Price List (USW2-NatGateway-Hours, offer 20260904231117, and USW2-NatGateway-Bytes)",
    ),
];

/// Interface VPC endpoints (AWS PrivateLink): per endpoint per AZ per hour, and per GB processed
/// (the first-petabyte tier of the month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EndpointPrices {
    pub region: &'static str,
    pub per_az_hour: Usd,
    pub per_gb: Usd,
}

/// Where [`ENDPOINT_PRICE_TABLE`] comes from.
pub const ENDPOINT_PRICES_SOURCE: &str = "https://aws.amazon.com/privatelink/pricing/";
/// The date of [`ENDPOINT_PRICE_TABLE`]: the prices on [`ENDPOINT_PRICES_SOURCE`] as of then.
/// They were written from that page's figures without re-reading it (no internet where they were
/// written): check them before quoting them, as for the `checked: false` NAT rows.
pub const ENDPOINT_PRICES_DATE: &str = "2026-11-21";

/// Sorted by region. Gateway endpoints cost nothing anywhere.
static ENDPOINT_PRICE_TABLE: [EndpointPrices; 2] = [
    EndpointPrices {
        region: "ap-northeast-1",
        per_az_hour: usd(14_000),
        per_gb: usd(10_000),
    },
    EndpointPrices {
        region: "us-east-1",
        per_az_hour: usd(10_000),
        per_gb: usd(10_000),
    },
];

/// The interface endpoint prices of a region.
pub fn endpoint_prices(region: &str) -> Result<&'static EndpointPrices, CostError> {
    ENDPOINT_PRICE_TABLE
        .iter()
        .find(|prices| prices.region == region)
        .ok_or_else(|| CostError::NoEndpointPrices {
            region: region.to_owned(),
            known: ENDPOINT_PRICE_TABLE.iter().map(|p| p.region).collect(),
        })
}

/// The price table, sorted by region.
pub fn price_table() -> &'static [RegionPrices] {
    &PRICE_TABLE
}

/// The prices of a region.
pub fn prices(region: &str) -> Result<&'static RegionPrices, CostError> {
    PRICE_TABLE
        .iter()
        .find(|prices| prices.region == region)
        .ok_or_else(|| CostError::UnknownRegion {
            region: region.to_owned(),
            known: PRICE_TABLE.iter().map(|prices| prices.region).collect(),
        })
}

/// The monthly cost of a topology in a region.
pub fn monthly(topology: &Topology, region: &str) -> Result<MonthlyCost, CostError> {
    let prices = prices(region)?;
    let line = |item, quantity: u32, hourly: Usd| CostLine {
        item,
        quantity,
        hourly,
        monthly: usd(u64::from(quantity) * hourly.micros * HOURS_PER_MONTH),
    };
    let mut lines = vec![
        line(
            "NAT gateway",
            topology.nat_gateways,
            prices.nat_gateway_hour,
        ),
        line(
            "public IPv4 address",
            topology.public_ipv4,
            prices.public_ipv4_hour,
        ),
    ];
    let mut unpriced = None;
    match (topology.nat_instances, prices.t4g_nano_hour) {
        (0, _) => {}
        (count, Some(hourly)) => lines.push(line(NAT_INSTANCE_ITEM, count, hourly)),
        (count, None) => {
            unpriced = Some(unpriced_instances(count, NAT_INSTANCE_TYPE_PRICED, region));
        }
    }
    let mut endpoint_per_gb = None;
    if topology.interface_endpoint_azs > 0 {
        let endpoint = endpoint_prices(region)?;
        lines.push(line(
            "interface endpoint-AZ",
            topology.interface_endpoint_azs,
            endpoint.per_az_hour,
        ));
        endpoint_per_gb = Some(endpoint.per_gb);
    }
    if topology.gateway_endpoints > 0 {
        // Listed at $0 so that `plan` says so: and what they carry skips the NAT's per-GB price.
        lines.push(line(
            GATEWAY_ENDPOINT_ITEM,
            topology.gateway_endpoints,
            usd(0),
        ));
    }
    Ok(MonthlyCost {
        region: region.to_owned(),
        prices_date: PRICES_DATE,
        prices_checked: prices.checked,
        prices_source: prices.source,
        fixed_total: usd(lines.iter().map(|line| line.monthly.micros).sum()),
        lines,
        per_gb: prices.nat_gateway_gb,
        endpoint_per_gb,
        unpriced,
        with_one_nat_per_az: None,
        cross_az: None,
        nat_self_healing: false,
    })
}

/// What `plan` says of NAT instances the table has no price for.
fn unpriced_instances(count: u32, instance_type: &str, region: &str) -> String {
    let known: Vec<&str> = PRICE_TABLE
        .iter()
        .filter(|prices| prices.t4g_nano_hour.is_some())
        .map(|prices| prices.region)
        .collect();
    format!(
        "{count} × NAT instance ({instance_type}) in {region}: the table of {PRICES_DATE} prices {NAT_INSTANCE_TYPE_PRICED} in {} only; see https://aws.amazon.com/ec2/pricing/on-demand/",
        known.join(", ")
    )
}

/// The monthly cost of what a plan leaves in the account; with fewer NATs than AZs, also what
/// one NAT per AZ would cost.
pub fn of_plan(plan: &Plan) -> Result<MonthlyCost, CostError> {
    let mut topology = Topology::of_plan(plan);
    // Instances of a type the table does not price are named, not counted.
    let other_type = plan
        .network
        .nat_instance_type
        .as_deref()
        .filter(|t| *t != NAT_INSTANCE_TYPE_PRICED && topology.nat_instances > 0);
    let unpriced = other_type.map(|t| unpriced_instances(topology.nat_instances, t, &plan.region));
    if unpriced.is_some() {
        topology.nat_instances = 0;
    }
    let mut cost = monthly(&topology, &plan.region)?;
    cost.unpriced = cost.unpriced.or(unpriced);
    cost.nat_self_healing = plan.network.nat_self_healing;
    let azs = &plan.network.azs;
    let shared = azs
        .iter()
        .any(|az| az.nat_slot.is_some_and(|nat| nat != az.slot));
    if shared {
        // Every AZ without a NAT of its own would have one, with an address: a retained address
        // would serve it first, so only the addresses beyond those already billed are added.
        let missing = azs
            .iter()
            .filter(|az| !az.nat_gateway.exists_after())
            .count();
        let missing = u32::try_from(missing).expect("a stack holds few resources");
        // Of the stack's kind of NAT.
        let (gateways, instances) = match plan.network.nat_instance_type {
            Some(_) => (0, missing),
            None => (missing, 0),
        };
        let nats = topology.nat_gateways + topology.nat_instances + missing;
        let full = Topology {
            nat_gateways: topology.nat_gateways + gateways,
            nat_instances: topology.nat_instances + instances,
            public_ipv4: topology.public_ipv4.max(nats),
            ..topology
        };
        cost.with_one_nat_per_az = Some(monthly(&full, &plan.region)?.fixed_total);
        let count = |n: usize| u32::try_from(n).expect("a stack holds few resources");
        cost.cross_az = Some(CrossAz {
            served_across: count(
                azs.iter()
                    .filter(|az| az.nat_slot.is_some_and(|nat| nat != az.slot))
                    .count(),
            ),
            azs: count(azs.len()),
            per_gb: usd(2 * CROSS_AZ_GB_EACH_WAY.micros),
            source: CROSS_AZ_SOURCE,
        });
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_keep_their_precision_and_amounts_round_to_the_cent() {
        assert_eq!(Usd::from_micros(45_000).as_rate(), "$0.045");
        assert_eq!(Usd::from_micros(5_000).as_rate(), "$0.005");
        assert_eq!(Usd::from_micros(1_200_000).as_rate(), "$1.20");
        assert_eq!(Usd::from_micros(62_500).as_rate(), "$0.0625");
        assert_eq!(Usd::from_micros(45_000).to_string(), "$0.05");
    }
    use crate::planner::plan;
    use crate::planner::simulate::{deployed, empty, spec};

    fn topology(nat_gateways: u32, public_ipv4: u32) -> Topology {
        Topology {
            nat_gateways,
            public_ipv4,
            ..Topology::default()
        }
    }

    #[test]
    fn two_azs_in_us_east_1() {
        // 2 × $0.045 × 730 = $65.70 for the NATs, 2 × $0.005 × 730 = $7.30 for their IPs.
        let cost = monthly(&topology(2, 2), "us-east-1").unwrap();
        let lines: Vec<(&str, u32, String)> = cost
            .lines
            .iter()
            .map(|l| (l.item, l.quantity, l.monthly.to_string()))
            .collect();
        assert_eq!(
            lines,
            [
                ("NAT gateway", 2, "$65.70".to_owned()),
                ("public IPv4 address", 2, "$7.30".to_owned())
            ]
        );
        assert_eq!(cost.fixed_total, Usd::from_micros(73_000_000));
        assert_eq!(cost.fixed_total.to_string(), "$73.00");
        assert_eq!(cost.per_gb, Usd::from_micros(45_000));
        assert_eq!((cost.prices_date, cost.prices_checked), (PRICES_DATE, true));
    }

    #[test]
    fn two_azs_in_tokyo() {
        // 2 × $0.062 × 730 = $90.52, plus $7.30 of IPs.
        let cost = monthly(&topology(2, 2), "ap-northeast-1").unwrap();
        assert_eq!(cost.fixed_total.to_string(), "$97.82");
        assert_eq!(cost.per_gb.to_string(), "$0.06");
        assert_eq!(cost.per_gb, Usd::from_micros(62_000));
    }

    #[test]
    fn a_plan_costs_what_it_leaves_in_the_account() {
        let fresh = plan(&spec(2, &["f"]), &empty()).unwrap();
        assert_eq!(Topology::of_plan(&fresh), topology(2, 2));
        assert_eq!(of_plan(&fresh).unwrap().fixed_total.to_string(), "$73.00");

        // Shrinking to one AZ removes the second NAT but keeps its address, retained: billed.
        let account = deployed(&spec(2, &["f"]), &empty());
        let one = plan(&spec(1, &["f"]), &account).unwrap();
        assert_eq!(Topology::of_plan(&one), topology(1, 2));

        // A third AZ held back until its new IP is allowed: the address is billed, no NAT yet.
        let three = plan(&spec(3, &["f"]), &account).unwrap();
        assert_eq!(Topology::of_plan(&three), topology(2, 3));

        // A retained address costs its hour: 1 × $32.85 + 2 × $3.65.
        let mut with_retained = deployed(&spec(1, &["f"]), &empty());
        with_retained
            .addresses
            .push(crate::planner::simulate::address(
                "eipalloc-0000aaaa",
                1,
                crate::observed::AddressUse::Retained,
            ));
        let kept = plan(&spec(1, &["f"]), &with_retained).unwrap();
        assert_eq!(Topology::of_plan(&kept), topology(1, 2));
        assert_eq!(of_plan(&kept).unwrap().fixed_total.to_string(), "$40.15");
    }

    fn with_instances(azs: u8, region: &str) -> Plan {
        let mut spec = in_region(spec(azs, &["f"]), region);
        spec.modes.nat = crate::requirements::NatMode::Instance;
        plan(&spec, &offline(region)).unwrap()
    }

    fn bill(cost: &MonthlyCost) -> Vec<(&str, u32, String)> {
        cost.lines
            .iter()
            .map(|l| (l.item, l.quantity, l.monthly.to_string()))
            .collect()
    }

    #[test]
    fn nat_instances_in_us_east_1() {
        // azs = 2, nat = "instance": 2 × $0.0042 × 730 = $6.132 → $6.13 for the instances,
        // 2 × $0.005 × 730 = $7.30 for their IPs: $13.432 → $13.43, against $73.00 with gateways.
        let plan = with_instances(2, "us-east-1");
        assert_eq!(
            Topology::of_plan(&plan),
            Topology {
                nat_instances: 2,
                ..topology(0, 2)
            }
        );
        let cost = of_plan(&plan).unwrap();
        assert_eq!(
            bill(&cost),
            [
                ("NAT gateway", 0, "$0.00".to_owned()),
                ("public IPv4 address", 2, "$7.30".to_owned()),
                (NAT_INSTANCE_ITEM, 2, "$6.13".to_owned()),
            ]
        );
        assert_eq!(cost.fixed_total, Usd::from_micros(13_432_000));
    }

    #[test]
    fn nat_instances_in_tokyo() {
        // azs = 3: 3 × $0.0054 × 730 = $11.826 for the instances, 3 × $3.65 = $10.95 for the IPs:
        // $22.776 → $22.78, against 3 × $45.26 + $10.95 = $146.73 with gateways.
        let cost = of_plan(&with_instances(3, "ap-northeast-1")).unwrap();
        assert_eq!(cost.fixed_total, Usd::from_micros(22_776_000));
        assert_eq!(cost.fixed_total.to_string(), "$22.78");
        assert_eq!(cost.lines[2].hourly, Usd::from_micros(5_400));
    }

    #[test]
    fn nat_instances_outside_the_priced_regions_or_types_are_named_not_guessed() {
        // eu-west-1 has no t4g.nano price in the table: only the IP is counted, 1 × $3.65.
        let cost = of_plan(&with_instances(1, "eu-west-1")).unwrap();
        assert_eq!(cost.fixed_total.to_string(), "$3.65");
        let unpriced = cost.unpriced.expect("the instance is named");
        assert!(
            unpriced.contains("1 × NAT instance (t4g.nano) in eu-west-1"),
            "{unpriced}"
        );
        assert!(
            unpriced.contains("ap-northeast-1, ap-south-1, us-east-1"),
            "{unpriced}"
        );

        let mut spec = in_region(spec(1, &["f"]), "us-east-1");
        spec.modes.nat = crate::requirements::NatMode::Instance;
        spec.modes.nat_instance_type = Some("t4g.small".to_owned());
        let cost = of_plan(&plan(&spec, &offline("us-east-1")).unwrap()).unwrap();
        assert!(cost.lines.iter().all(|l| l.item != NAT_INSTANCE_ITEM));
        let unpriced = cost.unpriced.expect("the instance is named");
        assert!(unpriced.contains("NAT instance (t4g.small)"), "{unpriced}");

        // With gateways nothing is left out.
        assert_eq!(
            of_plan(&plan_of(spec_gateways(), "us-east-1"))
                .unwrap()
                .unpriced,
            None
        );
    }

    fn spec_gateways() -> crate::plan::StackSpec {
        in_region(spec(1, &["f"]), "us-east-1")
    }

    fn with_nats(azs: u8, nats: u8) -> crate::plan::StackSpec {
        let mut spec = spec(azs, &["f"]);
        spec.modes.nats = Some(nats);
        spec
    }

    fn in_region(mut spec: crate::plan::StackSpec, region: &str) -> crate::plan::StackSpec {
        spec.region = region.to_owned();
        spec
    }

    fn offline(region: &str) -> crate::observed::ObservedState {
        crate::observed::ObservedState::assumed_offline(region, &[])
    }

    #[test]
    fn fewer_nats_than_azs_in_us_east_1() {
        // azs = 2, nats = 1: 1 × $0.045 × 730 = $32.85 + 1 × $0.005 × 730 = $3.65 → $36.50.
        // One NAT per AZ: $73.00 (see two_azs_in_us_east_1); saving $36.50.
        let one_per_az = of_plan(&plan(&spec(2, &["f"]), &offline("us-east-1")).unwrap()).unwrap();
        assert_eq!(one_per_az.cross_az, None, "every AZ has its own NAT");
        let plan = plan(&with_nats(2, 1), &offline("us-east-1")).unwrap();
        let cost = of_plan(&plan).unwrap();
        assert_eq!(Topology::of_plan(&plan), topology(1, 1));
        assert_eq!(cost.fixed_total.to_string(), "$36.50");
        let cross = cost.cross_az.expect("one AZ is served by the other's NAT");
        assert_eq!((cross.served_across, cross.azs), (1, 2));
        assert_eq!(cross.per_gb.as_rate(), "$0.02");
        assert_eq!(cost.with_one_nat_per_az.unwrap().to_string(), "$73.00");
        assert_eq!(cost.saving().unwrap().to_string(), "$36.50");

        // azs = 3, nats = 1: still $36.50; one per AZ: 3 × ($32.85 + $3.65) = $109.50; saving
        // $73.00. azs = 3, nats = 2: 2 × $36.50 = $73.00; saving $36.50.
        let cost = of_plan(&plan_of(with_nats(3, 1), "us-east-1")).unwrap();
        assert_eq!(cost.fixed_total.to_string(), "$36.50");
        assert_eq!(cost.with_one_nat_per_az.unwrap().to_string(), "$109.50");
        assert_eq!(cost.saving().unwrap().to_string(), "$73.00");
        let cost = of_plan(&plan_of(with_nats(3, 2), "us-east-1")).unwrap();
        assert_eq!(cost.fixed_total.to_string(), "$73.00");
        assert_eq!(cost.saving().unwrap().to_string(), "$36.50");

        // nats = azs is the default: nothing to compare with.
        let cost = of_plan(&plan_of(with_nats(2, 2), "us-east-1")).unwrap();
        assert_eq!(
            (cost.fixed_total.to_string(), cost.saving()),
            ("$73.00".to_owned(), None)
        );
    }

    fn plan_of(spec: crate::plan::StackSpec, region: &str) -> Plan {
        plan(&in_region(spec, region), &offline(region)).unwrap()
    }

    #[test]
    fn fewer_nats_than_azs_in_tokyo() {
        // azs = 2, nats = 1: 1 × $0.062 × 730 = $45.26 + $3.65 = $48.91; one per AZ $97.82.
        let cost = of_plan(&plan_of(with_nats(2, 1), "ap-northeast-1")).unwrap();
        assert_eq!(cost.fixed_total.to_string(), "$48.91");
        assert_eq!(cost.with_one_nat_per_az.unwrap().to_string(), "$97.82");
        assert_eq!(cost.saving().unwrap().to_string(), "$48.91");
        assert_eq!(cost.per_gb.to_string(), "$0.06");
        // azs = 3 (ap-northeast-1a, c, d), nats = 1: one per AZ 3 × $48.91 = $146.73.
        let cost = of_plan(&plan_of(with_nats(3, 1), "ap-northeast-1")).unwrap();
        assert_eq!(cost.fixed_total.to_string(), "$48.91");
        assert_eq!(cost.saving().unwrap().to_string(), "$97.82");
    }

    #[test]
    fn an_isolated_stack_costs_nothing_by_the_hour() {
        // No NAT, no address: $0.00 in both regions (the role and the function are free; Lambda
        // bills invocations, the same with or without fixedip).
        for region in ["us-east-1", "ap-northeast-1"] {
            let mut spec = spec(2, &["f"]);
            spec.modes.nat = crate::requirements::NatMode::None;
            let fresh = plan_of(spec.clone(), region);
            let cost = of_plan(&fresh).unwrap();
            assert_eq!(Topology::of_plan(&fresh), topology(0, 0));
            assert_eq!(cost.fixed_total.to_string(), "$0.00", "{region}");
            assert_eq!(cost.saving(), None);

            // Switched from gateways, it keeps the two IPs, retained: 2 × $3.65 = $7.30.
            let spec = in_region(spec, region);
            let mut gateways = spec.clone();
            gateways.modes.nat = crate::requirements::NatMode::Gateway;
            let live = deployed(&gateways, &offline(region));
            let switched = plan(&spec, &live).unwrap();
            assert_eq!(Topology::of_plan(&switched), topology(0, 2));
            assert_eq!(of_plan(&switched).unwrap().fixed_total.to_string(), "$7.30");
        }
    }

    #[test]
    fn an_unknown_region_names_the_table_and_the_known_regions() {
        let err = monthly(&topology(1, 1), "mars-north-1").unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with(&format!("no prices for region mars-north-1 in the table of {PRICES_DATE}; known regions: af-south-1, ap-northeast-1, ")), "{message}");
        assert!(message.contains("us-east-1"), "{message}");
    }

    #[test]
    fn the_table_is_sorted_and_only_the_checked_regions_say_so() {
        let regions: Vec<&str> = price_table().iter().map(|p| p.region).collect();
        let mut sorted = regions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(regions, sorted);
        let checked: Vec<&str> = price_table()
            .iter()
            .filter(|p| p.checked)
            .map(|p| p.region)
            .collect();
        assert_eq!(
            checked,
            [
                "af-south-1",
                "ap-northeast-1",
                "ap-northeast-2",
                "ap-south-1",
                "ap-southeast-1",
                "ap-southeast-2",
                "eu-central-1",
                "eu-west-1",
                "eu-west-2",
                "me-central-1",
                "sa-east-1",
                "us-east-1",
                "us-east-2",
                "us-west-2"
            ]
        );
        // Every row says where its NAT price came from, checked or not.
        assert!(price_table().iter().all(|p| !p.source.trim().is_empty()));
        assert!(price_table()
            .iter()
            .all(|p| p.public_ipv4_hour == Usd::from_micros(5_000)));
    }

    #[test]
    fn dollars_round_to_the_cent() {
        assert_eq!(Usd::from_micros(0).to_string(), "$0.00");
        assert_eq!(Usd::from_micros(4_999).to_string(), "$0.00");
        assert_eq!(Usd::from_micros(5_000).to_string(), "$0.01");
        assert_eq!(Usd::from_micros(1_234_567_890).to_string(), "$1234.57");
    }

    #[test]
    fn json_holds_dollars() {
        let cost = monthly(&topology(2, 2), "us-east-1").unwrap();
        let json = serde_json::to_value(&cost).unwrap();
        assert_eq!(json["fixed_total"], 73.0);
        assert_eq!(json["per_gb"], 0.045);
        assert_eq!(json["prices_date"], PRICES_DATE);
        assert_eq!(json["lines"][0]["monthly"], 65.7);
    }
}
