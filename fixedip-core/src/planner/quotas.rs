//! The account's quotas a plan consumes, checked before the first change (beside the Elastic IP
//! quota in `addresses.rs`): a create AWS refuses for a quota would otherwise stop a deploy half
//! way, after other resources were made.
//!
//! | Quota (Service Quotas, service `vpc`)        | Code         | Default | What fixedip creates                   |
//! |---------------------------------------------|--------------|---------|----------------------------------------|
//! | VPCs per Region                             | `L-F678F1CE` | 5       | one VPC per stack                      |
//! | Internet gateways per Region                | `L-A4707A72` | 5       | one per stack (not with `nat = "none"`) |
//! | NAT gateways per Availability Zone          | `L-FE5A380F` | 5       | one per AZ slot (`nats` fewer)         |
//! | Gateway VPC endpoints per Region            | `L-1B52E74A` | 20      | one per gateway service per AZ slot    |
//! | Interface VPC endpoints per VPC             | `L-29B6F2EB` | 50      | one per interface service              |
//!
//! Source: "Amazon VPC quotas" (VPC User Guide): "Increasing this quota (VPCs) increases the quota
//! on internet gateways per Region by the same amount"; "NAT gateways only count toward your quota
//! in the pending, active, and deleting states". The Elastic IP quota (`ec2`/`L-0263D0A3`) is read
//! from DescribeAccountAttributes `vpc-max-elastic-ips`, which reflects increases.
//!
//! The other limits are AWS's defaults: an account whose quota was raised says so with
//! `FIXEDIP_QUOTAS="L-F678F1CE=10,L-FE5A380F=8"` (read by the CLI). Why not the Service Quotas
//! API: it needs one more SDK crate for five numbers, and GetServiceQuota's answer for a quota
//! never raised is not documented; the defaults with an override keep the check honest, and the
//! error names the code to look up. What is in use is counted with Describe calls.

use std::collections::BTreeMap;

use super::PlanError;
use crate::observed::ObservedState;
use crate::plan::{Action, Plan};

/// One quota the plan may consume.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Quota {
    Vpcs,
    InternetGateways,
    NatGatewaysPerAz,
    GatewayEndpoints,
    InterfaceEndpointsPerVpc,
}

impl Quota {
    pub const ALL: [Quota; 5] = [
        Quota::Vpcs,
        Quota::InternetGateways,
        Quota::NatGatewaysPerAz,
        Quota::GatewayEndpoints,
        Quota::InterfaceEndpointsPerVpc,
    ];

    /// The Service Quotas code (service `vpc`).
    pub fn code(self) -> &'static str {
        match self {
            Quota::Vpcs => "L-F678F1CE",
            Quota::InternetGateways => "L-A4707A72",
            Quota::NatGatewaysPerAz => "L-FE5A380F",
            Quota::GatewayEndpoints => "L-1B52E74A",
            Quota::InterfaceEndpointsPerVpc => "L-29B6F2EB",
        }
    }

    /// The name Service Quotas shows.
    pub fn name(self) -> &'static str {
        match self {
            Quota::Vpcs => "VPCs per Region",
            Quota::InternetGateways => "Internet gateways per Region",
            Quota::NatGatewaysPerAz => "NAT gateways per Availability Zone",
            Quota::GatewayEndpoints => "Gateway VPC endpoints per Region",
            Quota::InterfaceEndpointsPerVpc => "Interface VPC endpoints per VPC",
        }
    }

    /// AWS's default value.
    pub fn default_limit(self) -> u32 {
        match self {
            Quota::Vpcs | Quota::InternetGateways | Quota::NatGatewaysPerAz => 5,
            Quota::GatewayEndpoints => 20,
            Quota::InterfaceEndpointsPerVpc => 50,
        }
    }

    /// What to do when it is reached, beyond asking for more.
    fn advice(self) -> &'static str {
        match self {
            Quota::Vpcs => "delete VPCs you no longer use",
            // The VPC quota page: the IGW quota follows the VPC quota.
            Quota::InternetGateways => {
                "delete internet gateways you no longer use (an increase of the VPC quota raises this one too)"
            }
            Quota::NatGatewaysPerAz => {
                "delete NAT gateways you no longer use there, pin other AZs with `az-ids`, or share NATs with `nats` in #[fixed_egress]"
            }
            Quota::GatewayEndpoints => "delete gateway endpoints you no longer use",
            Quota::InterfaceEndpointsPerVpc => "list fewer `endpoints`",
        }
    }
}

/// What the account uses of the quotas, counted by Describe calls (only when the plan creates
/// such resources), and the limits that apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuotaUsage {
    /// In use in the region (or in the stack's VPC, for interface endpoints), per quota.
    pub in_use: BTreeMap<Quota, u32>,
    /// NAT gateways pending, available or deleting, per AZ name.
    pub nat_gateways_by_az: BTreeMap<String, u32>,
    /// The limits the user gave (`FIXEDIP_QUOTAS`); the others are AWS's defaults.
    pub limits: BTreeMap<Quota, u32>,
}

impl QuotaUsage {
    pub fn limit(&self, quota: Quota) -> u32 {
        self.limits
            .get(&quota)
            .copied()
            .unwrap_or(quota.default_limit())
    }
}

/// The limits of `FIXEDIP_QUOTAS`: `CODE=N` pairs separated by commas,
/// `"L-F678F1CE=10,L-FE5A380F=8"`. An unknown code or a value that is not a number is an error
/// naming the codes known.
pub fn parse_limits(text: &str) -> Result<BTreeMap<Quota, u32>, String> {
    let mut limits = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let known = || {
            Quota::ALL
                .iter()
                .map(|q| format!("{} ({})", q.code(), q.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (code, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not CODE=LIMIT, e.g. L-F678F1CE=10"))?;
        let quota = Quota::ALL
            .into_iter()
            .find(|q| q.code() == code.trim())
            .ok_or_else(|| format!("`{code}` is not a quota fixedip checks; known: {}", known()))?;
        let value = value
            .trim()
            .parse()
            .map_err(|_| format!("`{pair}`: the limit must be a whole number"))?;
        limits.insert(quota, value);
    }
    Ok(limits)
}

/// Whether a plan creates anything a quota counts: then the usage is worth reading.
pub fn consumes_quotas(plan: &Plan) -> bool {
    plan.steps.iter().any(|step| {
        matches!(
            step.action,
            Action::CreateVpc { .. }
                | Action::CreateInternetGateway
                | Action::CreateNatGateway { .. }
                | Action::CreateGatewayEndpoint { .. }
                | Action::CreateInterfaceEndpoint { .. }
        )
    })
}

/// Refuses a plan whose creates would go beyond a quota. Nothing is checked when the usage was
/// not read (offline, or nothing is created).
pub fn check_quotas(plan: &Plan, observed: &ObservedState) -> Result<(), PlanError> {
    let Some(usage) = &observed.quota_usage else {
        return Ok(());
    };
    let count = |wanted: fn(&Action) -> bool| -> u32 {
        plan.steps.iter().filter(|s| wanted(&s.action)).count() as u32
    };
    let wanted = [
        (
            Quota::Vpcs,
            count(|a| matches!(a, Action::CreateVpc { .. })),
        ),
        (
            Quota::InternetGateways,
            count(|a| matches!(a, Action::CreateInternetGateway)),
        ),
        (
            Quota::GatewayEndpoints,
            count(|a| matches!(a, Action::CreateGatewayEndpoint { .. })),
        ),
        (
            Quota::InterfaceEndpointsPerVpc,
            count(|a| matches!(a, Action::CreateInterfaceEndpoint { .. })),
        ),
    ];
    for (quota, needed) in wanted {
        let in_use = usage.in_use.get(&quota).copied().unwrap_or(0);
        check(usage, quota, in_use, needed, &plan.region)?;
    }
    let mut nats_by_az: BTreeMap<&str, u32> = BTreeMap::new();
    for step in &plan.steps {
        if let Action::CreateNatGateway { slot, .. } = step.action {
            if let Some(az) = plan.az_of(slot) {
                *nats_by_az.entry(az).or_default() += 1;
            }
        }
    }
    for (az, needed) in nats_by_az {
        let in_use = usage.nat_gateways_by_az.get(az).copied().unwrap_or(0);
        let place = format!("{az} ({})", plan.region);
        check(usage, Quota::NatGatewaysPerAz, in_use, needed, &place)?;
    }
    Ok(())
}

/// `place`: the region, or the AZ and region of a per-AZ quota.
fn check(
    usage: &QuotaUsage,
    quota: Quota,
    in_use: u32,
    needed: u32,
    place: &str,
) -> Result<(), PlanError> {
    let limit = usage.limit(quota);
    if needed == 0 || in_use + needed <= limit {
        return Ok(());
    }
    Err(PlanError::Quota {
        name: quota.name(),
        code: quota.code(),
        limit,
        in_use,
        needed,
        place: place.to_owned(),
        advice: quota.advice(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::plan;
    use crate::planner::simulate::{deployed, empty, spec};

    fn usage(in_use: &[(Quota, u32)]) -> QuotaUsage {
        QuotaUsage {
            in_use: in_use.iter().copied().collect(),
            ..QuotaUsage::default()
        }
    }

    #[test]
    fn a_new_stack_in_a_region_at_its_vpc_quota_is_refused_naming_the_code() {
        let mut account = empty();
        account.quota_usage = Some(usage(&[(Quota::Vpcs, 5), (Quota::InternetGateways, 1)]));
        let planned = plan(&spec(2, &["f"]), &account).unwrap();
        let error = check_quotas(&planned, &account).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the stack needs 1 more of \"VPCs per Region\" in us-east-1, but the account uses 5 of its 5: delete VPCs you no longer use, or ask for more in Service Quotas (service vpc, code L-F678F1CE); if the quota was raised already, set FIXEDIP_QUOTAS=\"L-F678F1CE=<limit>\", then deploy again"
        );
        // A raised quota, said so: the plan fits.
        account
            .quota_usage
            .as_mut()
            .unwrap()
            .limits
            .insert(Quota::Vpcs, 10);
        check_quotas(&planned, &account).unwrap();
    }

    #[test]
    fn raised_limits_are_read_by_code() {
        let limits = parse_limits("L-F678F1CE=10, L-FE5A380F=8").unwrap();
        assert_eq!(limits[&Quota::Vpcs], 10);
        assert_eq!(limits[&Quota::NatGatewaysPerAz], 8);
        assert!(parse_limits("").unwrap().is_empty());
        assert!(parse_limits("L-0000=3")
            .unwrap_err()
            .contains("L-F678F1CE (VPCs per Region)"));
        assert!(parse_limits("L-F678F1CE=ten")
            .unwrap_err()
            .contains("whole number"));
    }

    #[test]
    fn nat_gateways_are_counted_per_az() {
        let mut account = empty();
        let planned = plan(&spec(2, &["f"]), &account).unwrap();
        let first = planned.az_of(0).unwrap().to_owned();
        let second = planned.az_of(1).unwrap().to_owned();
        let mut nats = QuotaUsage::default();
        nats.nat_gateways_by_az.insert(second.clone(), 4);
        account.quota_usage = Some(nats.clone());
        check_quotas(&planned, &account).unwrap();
        nats.nat_gateways_by_az.insert(first.clone(), 5);
        account.quota_usage = Some(nats);
        let error = check_quotas(&planned, &account).unwrap_err().to_string();
        assert!(
            error.contains(&format!("in {first} (us-east-1)")),
            "{error}"
        );
        assert!(
            error.contains("L-FE5A380F") && error.contains("`az-ids`"),
            "{error}"
        );
    }

    #[test]
    fn a_stack_that_exists_consumes_nothing_more() {
        let mut account = deployed(&spec(2, &["f"]), &empty());
        account.quota_usage = Some(usage(&[(Quota::Vpcs, 50), (Quota::InternetGateways, 50)]));
        let planned = plan(&spec(2, &["f"]), &account).unwrap();
        assert!(!consumes_quotas(&planned));
        check_quotas(&planned, &account).unwrap();
    }
}
