//! The desired network for people to read (`plan`, `status`, diagrams, the cost model): per AZ,
//! per endpoint, the surplus slots and the IPs held back.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::observed::Slot;
use crate::requirements::{Endpoint, EndpointKind};

use super::{ExistingAttachment, Ref, Status};

/// The desired network of one AZ, for people to read (`plan`, `status`, diagrams).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AzView {
    pub slot: Slot,
    pub az: String,
    pub public_subnet: (Ipv4Net, Status),
    pub private_subnet: (Ipv4Net, Status),
    /// The Elastic IP of this AZ's NAT; its address is known once allocated.
    pub address: (Option<Ipv4Addr>, Status),
    /// The slot's NAT: a NAT gateway, or a NAT instance when [`NetworkView::nat_instance_type`]
    /// is set.
    pub nat_gateway: Status,
    pub private_route_table: Status,
    /// The slot whose NAT carries this AZ's traffic: its own, another one when `nats` is fewer
    /// than `azs`, or `None` (isolated, or waiting for a new IP to be allowed).
    #[serde(default)]
    pub nat_slot: Option<Slot>,
}

/// A slot that exists beyond the stack's `azs`: removed by the plan, or left (and still billed)
/// while a function the plan does not deploy runs in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SurplusSlot {
    pub slot: Slot,
    pub az: Option<String>,
    /// A NAT gateway that is `pending` or `available`.
    pub nat_gateway: Option<String>,
    /// The active address of the slot: allocation id and public IP.
    pub address: Option<(String, Ipv4Addr)>,
}

/// The whole desired network, for people to read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkView {
    pub vpc: (Ipv4Net, Status),
    pub internet_gateway: Status,
    pub public_route_table: Status,
    pub security_group: Status,
    /// The stack's execution role; `None` when every function brings its own.
    pub role: Option<Status>,
    pub azs: Vec<AzView>,
    pub functions: Vec<(String, Status)>,
    /// Addresses the stack keeps without a NAT (allocation id, IP): still on the partner's
    /// allowlist, still billed.
    pub retained_addresses: Vec<(String, Ipv4Addr)>,
    /// Slots beyond `azs` that stay, because a function the plan does not deploy runs in them.
    pub surplus_slots: Vec<SurplusSlot>,
    /// Slots beyond `azs` that the plan removes (NAT gateway, subnets, route table); their
    /// addresses are kept as retained and listed in `retained_addresses`.
    pub removed_slots: Vec<SurplusSlot>,
    /// Addresses a destroy with `release_ips` gives back to AWS (allocation id, IP): shown before
    /// they go, because a partner's allowlist may still name them.
    pub released_addresses: Vec<(String, Ipv4Addr)>,
    /// `Some(type)` when the NATs are EC2 instances of that type (`nat = "instance"`).
    #[serde(default)]
    pub nat_instance_type: Option<String>,
    /// The NAT instances are self-healing (`nat-self-healing`): each an auto-scaling group of one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nat_self_healing: bool,
    /// The NAT instances' security group; `None` when there are none and none are wanted.
    #[serde(default)]
    pub nat_security_group: Option<Status>,
    /// A stack on an existing network: where it attaches. `None` for a network fixedip builds.
    #[serde(default)]
    pub existing: Option<ExistingAttachment>,
    /// The VPC endpoints (`endpoints = [...]`): what exists after the plan, and what it removes.
    #[serde(default)]
    pub endpoints: Vec<EndpointView>,
    /// The interface endpoints' security group, when there is or was one.
    #[serde(default)]
    pub endpoint_security_group: Option<Status>,
}

/// One VPC endpoint, for people to read and for the cost model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointView {
    pub service: Endpoint,
    pub kind: EndpointKind,
    /// The slot of a gateway endpoint (one per private route table).
    pub slot: Option<Slot>,
    /// How many AZs an interface endpoint has network interfaces in: billed per AZ per hour.
    pub azs: u32,
    pub status: Status,
}

/// An Elastic IP that exists (or that the plan allocates) for a slot, but carries no traffic until
/// the user has seen it and allowed it: `cargo fixedip deploy --allow-new-ips`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingIp {
    pub slot: Slot,
    pub az: String,
    /// The address: `Existing(allocation id)`, or the `AllocateAddress` step that makes it.
    pub address: Ref,
    /// Known once allocated.
    pub public_ip: Option<Ipv4Addr>,
}

impl fmt::Display for PendingIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = match (self.public_ip, &self.address) {
            (Some(ip), _) => format!("new IP {ip} allocated"),
            (None, Ref::Existing(id)) => format!("new IP {id} allocated"),
            (None, Ref::Step(_)) => "a new IP to be allocated".to_owned(),
        };
        write!(
            f,
            "{ip} for {} (slot {}); add it to the partner's allowlist, then run `cargo fixedip deploy --allow-new-ips`",
            self.az, self.slot
        )
    }
}
