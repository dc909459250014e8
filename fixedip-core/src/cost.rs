//! The cost model: what a stack costs per month before any data flows, and what each GB through
//! its NAT gateways adds, from a dated price table kept in the repository.
//!
//! TODO: prices.

use std::fmt;

use crate::plan::Plan;

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

impl fmt::Display for Usd {
    /// Rounded to the cent: `$73.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = (self.micros + 5_000) / 10_000;
        write!(f, "${}.{:02}", cents / 100, cents % 100)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.dollars())
    }
}

/// The prices of one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegionPrices {
    pub region: &'static str,
    /// Read from the AWS price pages on [`PRICES_DATE`]; `false`: from memory, to be checked.
    pub checked: bool,
    pub nat_gateway_hour: Usd,
    /// Data processed by a NAT gateway, per GB.
    pub nat_gateway_gb: Usd,
    /// Every public IPv4 address, Elastic IPs included, in use or not.
    pub public_ipv4_hour: Usd,
    /// Interface VPC endpoints, per AZ: for the isolated mode (a later issue).
    pub interface_endpoint_hour: Option<Usd>,
    /// A t4g.nano instance: for the NAT-instance mode (a later issue).
    pub t4g_nano_hour: Option<Usd>,
}

/// What is billed by the hour: the count of each kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Topology {
    pub nat_gateways: u32,
    /// Elastic IPs: those of the NATs, retained ones and adopted ones alike.
    pub public_ipv4: u32,
}

impl Topology {
    /// What exists once the plan is applied: its AZs, the slots beyond them, retained addresses.
    pub fn of_plan(plan: &Plan) -> Topology {
        let _ = plan;
        todo!()
    }
}

/// One line of a bill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CostLine {
    /// "NAT gateway", "public IPv4 address".
    pub item: &'static str,
    pub quantity: u32,
    pub hourly: Usd,
    /// quantity × hourly × [`HOURS_PER_MONTH`].
    pub monthly: Usd,
}

/// The monthly cost of a stack in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MonthlyCost {
    pub region: String,
    pub prices_date: &'static str,
    /// Whether the region's prices were checked on that date.
    pub prices_checked: bool,
    pub lines: Vec<CostLine>,
    /// The sum of the lines: what the stack costs before any data flows.
    pub fixed_total: Usd,
    /// Added per GB that leaves through the NAT gateways.
    pub per_gb: Usd,
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
}

/// The price table, sorted by region.
pub fn price_table() -> &'static [RegionPrices] {
    todo!()
}

/// The prices of a region.
pub fn prices(region: &str) -> Result<&'static RegionPrices, CostError> {
    let _ = region;
    todo!()
}

/// The monthly cost of a topology in a region.
pub fn monthly(topology: &Topology, region: &str) -> Result<MonthlyCost, CostError> {
    let _ = (topology, region);
    todo!()
}

/// The monthly cost of what a plan leaves in the account.
pub fn of_plan(plan: &Plan) -> Result<MonthlyCost, CostError> {
    monthly(&Topology::of_plan(plan), &plan.region)
}
