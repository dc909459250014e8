//! What a stack costs per month, as `plan` and `status` report it.

use std::fmt::{self, Display};

use fixedip_core::cost::{self, MonthlyCost, Usd, HOURS_PER_MONTH};
use serde::Serialize;

use super::{dollars, optional_dollars};
use crate::output::{style, styled};

/// The monthly cost of a stack in one region, from the dated price table (fixedip-core's cost.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostReport {
    pub region: String,
    /// When the table's prices were read.
    pub prices_date: String,
    /// Whether the region's prices were checked on that date.
    pub prices_checked: bool,
    /// Where the region's NAT gateway price comes from (docs/prices.md).
    pub prices_source: String,
    pub lines: Vec<CostLine>,
    /// The sum of the lines: what the stack costs before any data flows.
    #[serde(serialize_with = "dollars")]
    pub fixed_monthly_usd: Usd,
    /// Added per GB that leaves through the NAT gateways.
    #[serde(serialize_with = "dollars")]
    pub per_gb_usd: Usd,
    /// Added per GB through the interface endpoints, when there are some.
    #[serde(serialize_with = "optional_dollars")]
    pub endpoint_per_gb_usd: Option<Usd>,
    /// With `nats` fewer than `azs`: what the stack would cost with one NAT gateway per AZ.
    #[serde(serialize_with = "optional_dollars")]
    pub with_one_nat_per_az_monthly_usd: Option<Usd>,
    /// What is billed by the hour but not in the table, said rather than guessed.
    pub unpriced: Option<String>,
    /// With `nats` fewer than `azs`: the data transfer between AZs their traffic adds.
    pub cross_az: Option<CrossAzReport>,
    /// The NAT instances are self-healing groups of one (`nat-self-healing`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nat_self_healing: bool,
}

/// The AZs served by another AZ's NAT, and what their traffic adds per GB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossAzReport {
    pub served_across: u32,
    pub azs: u32,
    #[serde(serialize_with = "dollars")]
    pub per_gb_usd: Usd,
    pub source: String,
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostLine {
    /// "NAT gateway", "public IPv4 address", ...
    pub item: String,
    pub quantity: u32,
    #[serde(serialize_with = "dollars")]
    pub hourly_usd: Usd,
    /// quantity × hourly × 730 hours.
    #[serde(serialize_with = "dollars")]
    pub monthly_usd: Usd,
}

impl From<&MonthlyCost> for CostReport {
    fn from(cost: &MonthlyCost) -> CostReport {
        CostReport {
            region: cost.region.clone(),
            prices_date: cost.prices_date.to_owned(),
            prices_checked: cost.prices_checked,
            prices_source: cost.prices_source.to_owned(),
            lines: cost
                .lines
                .iter()
                .map(|line| CostLine {
                    item: line.item.to_owned(),
                    quantity: line.quantity,
                    hourly_usd: line.hourly,
                    monthly_usd: line.monthly,
                })
                .collect(),
            fixed_monthly_usd: cost.fixed_total,
            per_gb_usd: cost.per_gb,
            endpoint_per_gb_usd: cost.endpoint_per_gb,
            with_one_nat_per_az_monthly_usd: cost.with_one_nat_per_az,
            unpriced: cost.unpriced.clone(),
            nat_self_healing: cost.nat_self_healing,
            cross_az: cost.cross_az.map(|cross| CrossAzReport {
                served_across: cross.served_across,
                azs: cross.azs,
                per_gb_usd: cross.per_gb,
                source: cross.source.to_owned(),
            }),
        }
    }
}

impl CostReport {
    /// What fewer NATs than AZs save per month against one NAT gateway per AZ.
    fn saving(&self) -> Option<Usd> {
        self.with_one_nat_per_az_monthly_usd
            .map(|full| Usd::from_micros(full.micros.saturating_sub(self.fixed_monthly_usd.micros)))
    }
}

/// The bill as `plan` prints it: each line, the total, what is billed per GB, and what NAT
/// instances give up, next to their price so that the choice is an informed one.
impl Display for CostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {} (prices of {}",
            styled(style::HEADER, "Monthly cost"),
            self.region,
            self.prices_date
        )?;
        if !self.prices_checked {
            write!(f, "; not confirmed for this region: {}", self.prices_source)?;
        }
        writeln!(f, "):")?;
        let items: Vec<String> = self
            .lines
            .iter()
            .map(|line| format!("{} × {}", line.quantity, line.item))
            .collect();
        // The rates line up two spaces after the longest item, however long an item grows.
        let item_width = items
            .iter()
            .map(|item| item.chars().count() + 2)
            .max()
            .unwrap_or(0)
            .max(28);
        let mut rows: Vec<(String, String)> = self
            .lines
            .iter()
            .zip(items)
            .map(|(line, item)| {
                let rate = format!("{}/h × {HOURS_PER_MONTH} h", line.hourly_usd.as_rate());
                let pad = item_width - item.chars().count();
                (
                    format!("{item}{:pad$}{rate}", ""),
                    line.monthly_usd.to_string(),
                )
            })
            .collect();
        rows.push((
            "total before any data".to_owned(),
            self.fixed_monthly_usd.to_string(),
        ));
        let width = rows
            .iter()
            .map(|(left, _)| left.chars().count())
            .max()
            .unwrap_or(0);
        let total = rows.len() - 1;
        for (index, (left, amount)) in rows.into_iter().enumerate() {
            let pad = width - left.chars().count();
            if index == total {
                let amount = format!("{amount:>8} per month");
                writeln!(f, "  {left}{:pad$}  {}", "", styled(style::VALUE, amount))?;
            } else {
                writeln!(f, "  {left}{:pad$}  {amount:>8}", "")?;
            }
        }
        if let (Some(full), Some(saving)) = (self.with_one_nat_per_az_monthly_usd, self.saving()) {
            writeln!(
                f,
                "  fewer NATs than AZs save {} per month against one NAT gateway per AZ ({full})",
                styled(style::VALUE, saving)
            )?;
        }
        let instances = self
            .lines
            .iter()
            .find(|line| line.item == cost::NAT_INSTANCE_ITEM);
        let nats = self.lines.iter().find(|line| line.item == "NAT gateway");
        if let Some(unpriced) = &self.unpriced {
            writeln!(f, "  not counted above: {unpriced}")?;
        }
        // `unpriced` only ever names NAT instances.
        if instances.is_some() || self.unpriced.is_some() {
            writeln!(
                f,
                "  + each NAT instance's 8 GB gp3 root volume, billed per GB-month (about $0.64 in us-east-1), not counted above"
            )?;
            writeln!(
                f,
                "  NAT instances: no per-GB processing charge; what they give up against NAT gateways:"
            )?;
            writeln!(
                f,
                "    - bandwidth: a t4g.nano forwards 32 Mbit/s sustained, bursting to 5 Gbit/s (a NAT gateway: up to 100 Gbit/s)"
            )?;
            let failover = if self.nat_self_healing {
                "    - failover: each instance is an auto-scaling group of one; one that fails, stops or is terminated is replaced without a deploy, on the same IP, in about 5 minutes without egress for its AZ"
            } else {
                "    - failover: none managed; if an instance stops, its AZ has no egress until you start it or deploy again"
            };
            writeln!(f, "{failover}")?;
            writeln!(
                f,
                "    - patching: the OS is yours to keep current (Amazon Linux 2023 as launched; terminate an instance and deploy to replace it)"
            )?;
        }
        if nats.is_some_and(|line| line.quantity > 0) {
            writeln!(
                f,
                "  + {} per GB through the NAT gateways",
                self.per_gb_usd.as_rate()
            )?;
        } else if instances.is_none() {
            writeln!(f, "  no NAT gateway: nothing is billed per GB")?;
        }
        if let Some(per_gb) = self.endpoint_per_gb_usd {
            writeln!(
                f,
                "  + {} per GB through the interface endpoints",
                per_gb.as_rate()
            )?;
        }
        if self
            .lines
            .iter()
            .any(|line| line.item == cost::GATEWAY_ENDPOINT_ITEM && line.quantity > 0)
        {
            writeln!(
                f,
                "  S3/DynamoDB traffic leaves through the gateway endpoints, free: it skips the NAT per-GB price"
            )?;
        }
        if let Some(cross) = &self.cross_az {
            writeln!(
                f,
                "  + {} per GB of the traffic of {} of {} AZs, which leaves through another AZ's NAT (data transfer between AZs, both ways; price not confirmed)",
                cross.per_gb_usd.as_rate(),
                cross.served_across,
                cross.azs
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &str, quantity: u32) -> CostLine {
        CostLine {
            item: item.to_owned(),
            quantity,
            hourly_usd: Usd::from_micros(45_000),
            monthly_usd: Usd::from_micros(32_850_000),
        }
    }

    #[test]
    fn the_rates_line_up_after_the_longest_item() {
        let report = CostReport {
            region: "us-east-1".to_owned(),
            prices_date: "2026-11-01".to_owned(),
            prices_checked: true,
            prices_source: String::new(),
            lines: vec![
                line("NAT gateway", 2),
                line("an item much longer than the usual column of 28", 1),
            ],
            fixed_monthly_usd: Usd::from_micros(65_700_000),
            per_gb_usd: Usd::from_micros(45_000),
            endpoint_per_gb_usd: None,
            with_one_nat_per_az_monthly_usd: None,
            unpriced: None,
            cross_az: None,
            nat_self_healing: false,
        };
        let text = report.to_string();
        let columns: Vec<usize> = text
            .lines()
            .filter_map(|l| l.find("$0.045/h").map(|at| l[..at].chars().count()))
            .collect();
        assert_eq!(columns.len(), 2, "{text}");
        assert_eq!(columns[0], columns[1], "{text}");
        assert!(text.contains("the usual column of 28  $0.045/h"), "{text}");
    }
}
