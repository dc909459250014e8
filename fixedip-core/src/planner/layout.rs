//! The CIDR layout of a stack's VPC (see the module docs of [`crate::planner`]): which blocks each
//! slot's subnets get, depending on the slot's number only.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::PlanError;
use crate::observed::Slot;
use crate::plan::StackSpec;

/// The shortest VPC prefix fixedip accepts: a /16 is the largest VPC AWS allows.
pub const MIN_VPC_PREFIX: u8 = 16;
/// The longest: a /24 cut in 16 gives /28 subnets, the smallest AWS allows.
pub const MAX_VPC_PREFIX: u8 = 24;
/// Slots with blocks in the layout: 0 to 7.
pub const LAYOUT_SLOTS: Slot = 8;
/// The destination of every route fixedip makes.
pub const ANYWHERE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);

/// The subnets of one slot, by the layout in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCidrs {
    pub private: Ipv4Net,
    pub public: Ipv4Net,
}

/// The subnets of a slot by the layout; `None` for a slot number without blocks (8 and above) or
/// a VPC outside /16../24.
pub fn slot_cidrs(vpc: Ipv4Net, slot: Slot) -> Option<SlotCidrs> {
    if !(MIN_VPC_PREFIX..=MAX_VPC_PREFIX).contains(&vpc.prefix_len()) || slot >= LAYOUT_SLOTS {
        return None;
    }
    let prefix = vpc.prefix_len() + 4;
    let block_size = 1u32 << (32 - prefix);
    let base = u32::from(vpc.network());
    let block = |index: u32| {
        Ipv4Net::new(Ipv4Addr::from(base + index * block_size), prefix)
            .expect("a prefix of at most 28 is valid")
    };
    Some(SlotCidrs {
        private: block(u32::from(slot)),
        public: block(u32::from(LAYOUT_SLOTS + slot)),
    })
}

/// The stack's VPC CIDR, refused unless a /16 to a /24.
pub(super) fn vpc_cidr(spec: &StackSpec) -> Result<Ipv4Net, PlanError> {
    let cidr = spec.vpc_cidr.trunc();
    if !(MIN_VPC_PREFIX..=MAX_VPC_PREFIX).contains(&cidr.prefix_len()) {
        return Err(PlanError::VpcCidrSize {
            cidr: spec.vpc_cidr,
        });
    }
    Ok(cidr)
}
