//! The tag scheme: how fixedip finds what it owns. There is no local state: every resource fixedip
//! creates carries these tags, and only resources that carry them are ever changed or deleted.
//!
//! | tag                  | on                 | value                                              |
//! |----------------------|--------------------|----------------------------------------------------|
//! | `fixedip:stack`      | everything         | the stack name                                     |
//! | `fixedip:component`  | everything         | a [`Component`] name: `vpc`, `nat-gateway`, ...    |
//! | `fixedip:slot`       | per-AZ resources   | the AZ's slot, `0`..`5`                            |
//! | `fixedip:address`    | Elastic IPs        | `active`, `pending` (not yet allowed) or `retained`|
//! | `fixedip:adopted`    | adopted Elastic IPs| `true`: the user's, never released                 |
//! | `Name`               | EC2 resources      | `fixedip-<stack>-<component>[-<az>]`, for consoles |

use crate::observed::{AddressUse, Slot};
use crate::requirements::StackName;

pub const STACK: &str = "fixedip:stack";
pub const COMPONENT: &str = "fixedip:component";
pub const SLOT: &str = "fixedip:slot";
pub const ADDRESS: &str = "fixedip:address";
pub const ADOPTED: &str = "fixedip:adopted";
pub const NAME: &str = "Name";

/// What a tagged resource is within its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Vpc,
    InternetGateway,
    PublicSubnet,
    PrivateSubnet,
    Address,
    NatGateway,
    PublicRouteTable,
    PrivateRouteTable,
    SecurityGroup,
    Role,
    Function,
    /// A NAT instance (`nat = "instance"`).
    NatInstance,
    /// The security group of the NAT instances.
    NatSecurityGroup,
    /// A gateway (with a slot) or interface VPC endpoint.
    VpcEndpoint,
    /// The security group of the interface endpoints.
    EndpointSecurityGroup,
    /// A self-healing NAT's fixed network interface, holding the slot's Elastic IP.
    NatInterface,
    /// A self-healing NAT's launch template.
    NatLaunchTemplate,
    /// A self-healing NAT's auto-scaling group of one.
    NatGroup,
    /// The instance profile (and its role) of the self-healing NAT instances.
    NatProfile,
}

impl Component {
    pub const ALL: [Component; 19] = [
        Component::Vpc,
        Component::InternetGateway,
        Component::PublicSubnet,
        Component::PrivateSubnet,
        Component::Address,
        Component::NatGateway,
        Component::PublicRouteTable,
        Component::PrivateRouteTable,
        Component::SecurityGroup,
        Component::Role,
        Component::Function,
        Component::NatInstance,
        Component::NatSecurityGroup,
        Component::VpcEndpoint,
        Component::EndpointSecurityGroup,
        Component::NatInterface,
        Component::NatLaunchTemplate,
        Component::NatGroup,
        Component::NatProfile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Vpc => "vpc",
            Component::InternetGateway => "internet-gateway",
            Component::PublicSubnet => "public-subnet",
            Component::PrivateSubnet => "private-subnet",
            Component::Address => "address",
            Component::NatGateway => "nat-gateway",
            Component::PublicRouteTable => "public-route-table",
            Component::PrivateRouteTable => "private-route-table",
            Component::SecurityGroup => "security-group",
            Component::Role => "role",
            Component::Function => "function",
            Component::NatInstance => "nat-instance",
            Component::NatSecurityGroup => "nat-security-group",
            Component::VpcEndpoint => "vpc-endpoint",
            Component::EndpointSecurityGroup => "endpoint-security-group",
            Component::NatInterface => "nat-interface",
            Component::NatLaunchTemplate => "nat-launch-template",
            Component::NatGroup => "nat-group",
            Component::NatProfile => "nat-profile",
        }
    }

    pub fn parse(s: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The tags of one resource, in a stable order.
pub fn for_resource(
    stack: &StackName,
    component: Component,
    slot: Option<Slot>,
    az: Option<&str>,
) -> Vec<(String, String)> {
    let mut name = format!("fixedip-{stack}-{}", component.as_str());
    if let Some(az) = az {
        name.push('-');
        name.push_str(az);
    }
    let mut tags = vec![
        (STACK.to_owned(), stack.to_string()),
        (COMPONENT.to_owned(), component.as_str().to_owned()),
        (NAME.to_owned(), name),
    ];
    if let Some(slot) = slot {
        tags.push((SLOT.to_owned(), slot.to_string()));
    }
    tags
}

/// The value of the [`ADDRESS`] tag for a use.
pub fn address_use(usage: AddressUse) -> &'static str {
    match usage {
        AddressUse::Active => "active",
        AddressUse::Retained => "retained",
        AddressUse::Pending => "pending",
    }
}

/// The use an [`ADDRESS`] tag value names.
pub fn parse_address_use(value: &str) -> Option<AddressUse> {
    [
        AddressUse::Active,
        AddressUse::Retained,
        AddressUse::Pending,
    ]
    .into_iter()
    .find(|u| address_use(*u) == value)
}

/// The tags of an Elastic IP put to work for a slot (allocated, or activated by
/// `Action::ActivateAddress`): the resource tags plus its use, and [`ADOPTED`] for the user's own.
pub fn for_address(
    stack: &StackName,
    slot: Slot,
    az: Option<&str>,
    adopted: bool,
) -> Vec<(String, String)> {
    for_address_in_use(stack, slot, az, adopted, AddressUse::Active)
}

/// The tags of an address for a slot with the given use: [`AddressUse::Pending`] for one that
/// `Action::AllocateAddress { held_back: true, .. }` allocates.
pub fn for_address_in_use(
    stack: &StackName,
    slot: Slot,
    az: Option<&str>,
    adopted: bool,
    usage: AddressUse,
) -> Vec<(String, String)> {
    let mut tags = for_resource(stack, Component::Address, Some(slot), az);
    tags.push((ADDRESS.to_owned(), address_use(usage).to_owned()));
    if adopted {
        tags.push((ADOPTED.to_owned(), "true".to_owned()));
    }
    tags
}

/// The name of the stack's IAM execution role in one region. IAM is global to the account, but a
/// stack is per region: with one role per (stack, region), destroying the stack in one region
/// never deletes the role its functions in another region run on. (IAM names allow 64
/// characters: 8 + a stack of at most 32 + a region of at most 14 + 8.)
pub fn role_name(stack: &StackName, region: &str) -> String {
    format!("fixedip-{stack}-{region}-lambda")
}

/// The role fixedip 0.1 made for a stack, shared by every region it was deployed to. Deploy moves
/// a region's functions to [`role_name`]; destroy leaves this one (another region may still use
/// it) and says how to delete it.
pub fn legacy_role_name(stack: &StackName) -> String {
    format!("fixedip-{stack}-lambda")
}

/// The name of the self-healing NAT instances' role and of the instance profile that holds it,
/// one per (stack, region) as [`role_name`] and for the same reason: destroying the stack in one
/// region never takes the role from the NAT instances of another.
pub fn nat_role_name(stack: &StackName, region: &str) -> String {
    format!("fixedip-{stack}-{region}-nat")
}

/// The name of a slot's auto-scaling group (unique in the account and region) and of its launch
/// template (unique likewise).
pub fn nat_group_name(stack: &StackName, slot: Slot) -> String {
    format!("fixedip-{stack}-nat-{slot}")
}

/// The name of the stack's security group.
pub fn security_group_name(stack: &StackName) -> String {
    format!("fixedip-{stack}")
}

/// The name of the NAT instances' security group (names are unique in a VPC).
pub fn nat_security_group_name(stack: &StackName) -> String {
    format!("fixedip-{stack}-nat")
}

/// The name of the security group of the stack's interface endpoints.
pub fn endpoint_security_group_name(stack: &StackName) -> String {
    format!("fixedip-{stack}-endpoints")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_fit_iam_for_the_longest_stack_and_region() {
        let stack = StackName::parse(&"s".repeat(32)).unwrap();
        for region in [
            "ap-southeast-5",
            "ap-northeast-3",
            "us-gov-west-1",
            "eusc-de-east-1",
        ] {
            for name in [role_name(&stack, region), nat_role_name(&stack, region)] {
                assert!(name.len() <= 64, "{name} has {} characters", name.len());
            }
        }
        let stack = StackName::parse("payments").unwrap();
        assert_ne!(
            role_name(&stack, "us-east-1"),
            role_name(&stack, "eu-west-1"),
            "one role per region"
        );
    }

    #[test]
    fn components_round_trip() {
        for c in Component::ALL {
            assert_eq!(Component::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn address_uses_round_trip() {
        for usage in [
            AddressUse::Active,
            AddressUse::Retained,
            AddressUse::Pending,
        ] {
            assert_eq!(parse_address_use(address_use(usage)), Some(usage));
        }
        assert_eq!(parse_address_use("Active"), None);
    }

    #[test]
    fn an_adopted_address_says_so() {
        let stack = StackName::parse("payments").unwrap();
        let tags = for_address(&stack, 0, Some("us-east-1a"), true);
        assert!(tags.contains(&(ADDRESS.into(), "active".into())));
        assert!(tags.contains(&(ADOPTED.into(), "true".into())));
        assert!(!for_address(&stack, 0, None, false)
            .iter()
            .any(|(k, _)| k == ADOPTED));
    }

    #[test]
    fn per_az_tags_carry_slot_and_name() {
        let stack = StackName::parse("payments").unwrap();
        let tags = for_resource(&stack, Component::NatGateway, Some(1), Some("us-east-1b"));
        assert!(tags.contains(&(
            NAME.into(),
            "fixedip-payments-nat-gateway-us-east-1b".into()
        )));
        assert!(tags.contains(&(SLOT.into(), "1".into())));
        assert!(tags.contains(&(STACK.into(), "payments".into())));
    }
}
