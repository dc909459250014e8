//! Why a stack cannot be planned. Every one is found before any mutating call: a refusal changes
//! nothing.

use ipnet::Ipv4Net;

use super::layout::{LAYOUT_SLOTS, MAX_VPC_PREFIX, MIN_VPC_PREFIX};
use crate::observed::Slot;
use crate::requirements::{AllocationId, StackName};

/// Why a stack cannot be planned. Every one is found before any mutating call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{mode} in #[fixed_egress] describes {what}, but `vpc = \"{vpc}\"` in [package.metadata.fixedip] attaches to a network you run, which fixedip never changes: remove one of the two"
    )]
    ModeWithExistingNetwork {
        mode: String,
        what: &'static str,
        vpc: String,
    },
    #[error(
        "the VPC {vpc} named by `vpc` in [package.metadata.fixedip] was not found in {region}: check the id and the region (`--region`, `region` in the settings); `plan --offline` cannot read it, run `cargo fixedip plan` online"
    )]
    ExistingVpcNotFound { vpc: String, region: String },
    #[error(
        "stack `{stack}` has a network fixedip built (VPC {own_vpc}), but the settings now name the existing VPC {vpc}: run `cargo fixedip destroy` for the stack first, or name another stack with `#[fixed_egress(stack = ...)]`"
    )]
    ExistingVpcOverOwnNetwork {
        stack: StackName,
        own_vpc: String,
        vpc: String,
    },
    #[error(
        "no subnet of {vpc} can carry the function: each must send all of its internet traffic through a NAT with an Elastic IP, and{}\nadd a private subnet whose 0.0.0.0/0 route goes to a NAT gateway with an Elastic IP, or leave out `vpc` and let fixedip build the network",
        refused_list(refused)
    )]
    NoQualifyingSubnet {
        vpc: String,
        refused: Vec<crate::existing::RefusedSubnet>,
    },
    #[error(
        "`subnets` in [package.metadata.fixedip] names subnets the function cannot run in with a fixed egress IP:{}\nname only private subnets whose 0.0.0.0/0 route goes to a NAT with an Elastic IP{}",
        refused_list(refused),
        if qualifying.is_empty() { String::new() } else { format!(" (in {vpc}: {})", qualifying.join(", ")) }
    )]
    SubnetsNotQualified {
        vpc: String,
        refused: Vec<crate::existing::RefusedSubnet>,
        /// The subnets of the VPC that do qualify, to suggest.
        qualifying: Vec<String>,
    },
    #[error(
        "the VPC CIDR {cidr} is a /{}: fixedip needs a /{MIN_VPC_PREFIX} to a /{MAX_VPC_PREFIX}; set `vpc-cidr` in [package.metadata.fixedip] to one",
        cidr.prefix_len()
    )]
    VpcCidrSize { cidr: Ipv4Net },
    #[error(
        "the stack's VPC {vpc_id} is {observed}, but the settings ask for {wanted}: a VPC's CIDR cannot change; set `vpc-cidr = \"{observed}\"` in [package.metadata.fixedip], or destroy the stack first"
    )]
    VpcCidrChanged {
        vpc_id: String,
        observed: Ipv4Net,
        wanted: Ipv4Net,
    },
    #[error(
        "the stack wants {wanted} availability zones but {} ({}){}: {}",
        if *pinned > 0 { format!("`az-ids` in [package.metadata.fixedip] lists {pinned}, and {region} offers") } else { format!("{region} offers {} it can use", offered.len()) },
        if offered.is_empty() { "none".to_owned() } else { offered.join(", ") },
        if unusable.is_empty() { String::new() } else { format!("; left out: {}", unusable.join("; ")) },
        if *pinned > 0 { "list more AZ ids in `az-ids`, or lower `azs`" } else { "lower `azs` or choose another region" }
    )]
    NotEnoughAzs {
        region: String,
        wanted: u8,
        /// The AZs the stack can use, `us-east-1a (use1-az6)`.
        offered: Vec<String>,
        /// How many AZ ids `az-ids` lists (0: not set).
        pinned: usize,
        /// `use1-az3: t4g.nano is not offered there`.
        unusable: Vec<String>,
    },
    #[error(
        "`az-ids` in [package.metadata.fixedip] names {id}, which {}: use AZ ids of {region} that can hold the stack ({}); `aws ec2 describe-availability-zones --region {region}` lists every ZoneId",
        match why { Some(why) => format!("the stack cannot use: {why}"), None => format!("{region} does not offer") },
        if usable.is_empty() { "none".to_owned() } else { usable.join(", ") }
    )]
    AzIdNotUsable {
        id: String,
        region: String,
        why: Option<String>,
        usable: Vec<String>,
    },
    #[error(
        "the Elastic IP {id} named in `ips` was not found in region {region}: check the id and the region"
    )]
    AdoptedAddressNotFound { id: AllocationId, region: String },
    #[error(
        "the Elastic IP {id} named in `ips` is associated with {association}: disassociate it, or remove it from `ips`"
    )]
    AdoptedAddressInUse {
        id: AllocationId,
        association: String,
    },
    #[error(
        "the stack's internet gateway {id} is attached to {attached_vpc}, not to the stack's VPC {vpc}: detach it from {attached_vpc}"
    )]
    InternetGatewayElsewhere {
        id: String,
        attached_vpc: String,
        vpc: String,
    },
    #[error(
        "slot {slot} of the stack (from a `fixedip:slot` tag) lies outside the layout (slots 0 to {}) and misses a subnet: the tags were changed by hand; restore them, or delete that slot's resources",
        LAYOUT_SLOTS - 1
    )]
    SlotOutsideLayout { slot: Slot },
    #[error(
        "the new subnet {cidr} of slot {slot} would overlap the stack's subnet {subnet_id} ({subnet_cidr}): that subnet was changed by hand; delete it, or restore its CIDR"
    )]
    SubnetOverlap {
        slot: Slot,
        cidr: Ipv4Net,
        subnet_id: String,
        subnet_cidr: Ipv4Net,
    },
    #[error(
        "the Elastic IP {allocation_id} of slot {slot} is still held by NAT gateway {nat_gateway}, which is being deleted: run deploy again once it is deleted (AWS takes a few minutes)"
    )]
    AddressHeldByDeletingNat {
        slot: Slot,
        allocation_id: String,
        nat_gateway: String,
    },
    #[error(
        "the Elastic IP {allocation_id} of slot {slot} is associated with {association}, which fixedip did not make: disassociate it, then run deploy again"
    )]
    AddressInUse {
        slot: Slot,
        allocation_id: String,
        association: String,
    },
    #[error(
        "the stack needs {needed} new Elastic {}, but the account holds {in_use} of its quota of {quota} in {region}: release Elastic IPs you no longer use, or ask for more (Service Quotas, \"EC2-VPC Elastic IPs\", code L-0263D0A3), then deploy again",
        if *needed == 1 { "IP" } else { "IPs" }
    )]
    AddressQuota {
        region: String,
        quota: u32,
        in_use: u32,
        needed: u32,
    },
    #[error(
        "the stack needs {needed} more of \"{name}\" in {place}, but the account uses {in_use} of its {limit}: {advice}, or ask for more in Service Quotas (service vpc, code {code}); if the quota was raised already, set FIXEDIP_QUOTAS=\"{code}=<limit>\", then deploy again"
    )]
    Quota {
        name: &'static str,
        code: &'static str,
        limit: u32,
        in_use: u32,
        needed: u32,
        /// The region, or the AZ and region for a per-AZ quota.
        place: String,
        advice: &'static str,
    },
    #[error(
        "functions of other packages still run in stack `{stack}`: {}; destroy would cut them off. Destroy their packages first, or pass `--force-detach-others` to take them out of the VPC (they are not deleted)",
        functions.join(", ")
    )]
    OtherFunctionsAttached {
        stack: StackName,
        functions: Vec<String>,
    },
    #[error(
        "{} in {region} fixedip did not create (no `fixedip:stack` tag): {}; deploy would replace {} code, configuration and network. To take {} over, run `cargo fixedip deploy --adopt` (`cargo fixedip plan --adopt` shows what changes on {}); or set another `function-name` in [package.metadata.fixedip]",
        if functions.len() == 1 { "a Lambda function of this name exists" } else { "Lambda functions of these names exist" },
        functions.join(", "),
        if functions.len() == 1 { "its" } else { "their" },
        if functions.len() == 1 { "it" } else { "them" },
        if functions.len() == 1 { "it" } else { "them" },
    )]
    FunctionNotOwned {
        region: String,
        functions: Vec<String>,
    },
    #[error(
        "the Elastic IP {allocation_id} of the stack is associated with {association}, which fixedip did not make, so it cannot be released: disassociate it, then run destroy again (or leave out `--release-ips` to keep it)"
    )]
    ReleaseOfAddressInUse {
        allocation_id: String,
        association: String,
    },
}

/// One line per refused subnet: "\n  subnet-1 (us-east-1a): routes 0.0.0.0/0 to ...".
fn refused_list(refused: &[crate::existing::RefusedSubnet]) -> String {
    if refused.is_empty() {
        return " the VPC has no subnet".to_owned();
    }
    refused
        .iter()
        .map(|r| {
            let az = r
                .availability_zone
                .as_deref()
                .map(|az| format!(" ({az})"))
                .unwrap_or_default();
            format!("\n  {}{az}: {}", r.id, r.reasons.join("; "))
        })
        .collect()
}
