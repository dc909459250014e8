//! Client tokens: the same create request always carries the same token, so that AWS returns the
//! resource it already made instead of a second one (and a second bill) when a run is repeated
//! after a lost answer. Each token is a digest of what identifies the request; a token reused with
//! other parameters is refused by AWS, so whatever a later request may change is part of it.
//! The executor sends them; they are computed here, once, and tested here.

use sha2::{Digest, Sha256};

use crate::observed::Slot;
use crate::requirements::StackName;

/// `fixedip-` and the first 20 bytes of the SHA-256 of the parts, one per line, in hex: 48
/// characters, within the 64 AWS allows.
pub fn client_token(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\n").as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("fixedip-{hex}")
}

/// A NAT gateway of a slot on an address. The subnet is part of it: after a teardown the same
/// stack, slot and address get a new subnet. `generation` counts the slot's dead gateways AWS
/// lists: a replacement (of a failed gateway, or after a switch to instances and back) must not
/// get the dead one back, which a repeated token does.
pub fn nat_gateway(
    stack: &StackName,
    slot: Slot,
    subnet_id: &str,
    allocation_id: &str,
    generation: u32,
) -> String {
    with_generation(
        &[stack.as_str(), &slot.to_string(), subnet_id, allocation_id],
        generation,
    )
}

/// The NAT instance of a slot in a subnet, of a generation (see [`nat_gateway`]).
pub fn nat_instance(stack: &StackName, slot: Slot, subnet_id: &str, generation: u32) -> String {
    with_generation(
        &[stack.as_str(), &slot.to_string(), subnet_id, "nat-instance"],
        generation,
    )
}

/// Generation 0 is the token of earlier releases, unchanged: a run repeated across an upgrade
/// gets what the earlier run made.
fn with_generation(parts: &[&str], generation: u32) -> String {
    if generation == 0 {
        return client_token(parts);
    }
    let generation = format!("generation {generation}");
    let mut parts = parts.to_vec();
    parts.push(&generation);
    client_token(&parts)
}

/// A VPC endpoint of a service in a VPC, by where it is placed (route tables or subnets), made by
/// the run whose word is `run` (see [`route_table`]), of a generation: the run that replaces a
/// failed endpoint of the service makes it with its own word again.
pub fn endpoint(
    stack: &StackName,
    service: &str,
    vpc: &str,
    placement: &[&str],
    (run, generation): (&str, u32),
) -> String {
    with_generation(
        &[stack.as_str(), service, vpc, &placement.join(","), run],
        generation,
    )
}

/// A route table of a stack's component (and slot) in a VPC, made by the run whose word is `run`.
/// What identifies the table is the same when a later run makes it again after it was deleted
/// (isolated → NAT, a slot moved out of an AZ and back), and AWS answers a repeated token with
/// the first, deleted table for at least a day; nor does it list deleted tables, so no generation
/// can be counted as for NAT gateways. The run's word keeps a retry within the run on the table
/// it made; a later run finds what a killed one made by its tags before creating anything.
pub fn route_table(
    stack: &StackName,
    component: &str,
    slot: Option<Slot>,
    vpc: &str,
    run: &str,
) -> String {
    let slot = slot.map(|s| s.to_string()).unwrap_or_default();
    client_token(&[stack.as_str(), component, &slot, vpc, run])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_deterministic_fit_aws_limit_and_differ_with_each_part() {
        let stack = StackName::default();
        let token = nat_gateway(&stack, 1, "subnet-1", "eipalloc-1", 0);
        assert_eq!(token, nat_gateway(&stack, 1, "subnet-1", "eipalloc-1", 0));
        assert!(token.len() <= 64, "{token}");
        assert!(token.starts_with("fixedip-"));
        assert_ne!(token, nat_gateway(&stack, 1, "subnet-2", "eipalloc-1", 0));
        assert_ne!(token, nat_gateway(&stack, 0, "subnet-1", "eipalloc-1", 0));
        assert_ne!(token, nat_gateway(&stack, 1, "subnet-1", "eipalloc-2", 0));
        assert_ne!(
            nat_instance(&stack, 1, "subnet-1", 0),
            nat_instance(&stack, 2, "subnet-1", 0)
        );
        // A replacement's token is new; the same generation's is the same.
        assert_ne!(token, nat_gateway(&stack, 1, "subnet-1", "eipalloc-1", 1));
        assert_eq!(
            nat_gateway(&stack, 1, "subnet-1", "eipalloc-1", 2),
            nat_gateway(&stack, 1, "subnet-1", "eipalloc-1", 2)
        );
        assert_ne!(
            nat_instance(&stack, 1, "subnet-1", 0),
            nat_instance(&stack, 1, "subnet-1", 1)
        );
        assert_ne!(
            endpoint(&stack, "s3", "vpc-1", &["rtb-1"], ("run", 0)),
            endpoint(&stack, "s3", "vpc-1", &["rtb-1", "rtb-2"], ("run", 0))
        );
        assert_ne!(
            route_table(&stack, "route-table", Some(0), "vpc-1", "run"),
            route_table(&stack, "route-table", None, "vpc-1", "run")
        );
        // The same table made again by a later run: a new token, never the deleted table back.
        assert_eq!(
            route_table(&stack, "route-table", Some(0), "vpc-1", "run"),
            route_table(&stack, "route-table", Some(0), "vpc-1", "run")
        );
        assert_ne!(
            route_table(&stack, "route-table", Some(0), "vpc-1", "run"),
            route_table(&stack, "route-table", Some(0), "vpc-1", "later run")
        );
        assert_ne!(
            endpoint(&stack, "s3", "vpc-1", &["rtb-1"], ("run", 0)),
            endpoint(&stack, "s3", "vpc-1", &["rtb-1"], ("later run", 0))
        );
        // The run that replaces a failed endpoint: a new token, never the failed one back.
        assert_ne!(
            endpoint(&stack, "s3", "vpc-1", &["rtb-1"], ("run", 0)),
            endpoint(&stack, "s3", "vpc-1", &["rtb-1"], ("run", 1))
        );
    }

    /// The tokens of earlier releases, unchanged: a run repeated across an upgrade gets the
    /// resource the earlier run made.
    #[test]
    fn tokens_keep_their_format() {
        let stack = StackName::default();
        let by_hand = |text: &str| {
            let digest = Sha256::digest(text.as_bytes());
            let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
            format!("fixedip-{hex}")
        };
        assert_eq!(
            nat_gateway(&stack, 1, "subnet-1", "eipalloc-1", 0),
            by_hand(&format!("{stack}\n1\nsubnet-1\neipalloc-1"))
        );
        assert_eq!(
            nat_instance(&stack, 2, "subnet-1", 0),
            by_hand(&format!("{stack}\n2\nsubnet-1\nnat-instance"))
        );
        assert_eq!(
            nat_instance(&stack, 2, "subnet-1", 3),
            by_hand(&format!("{stack}\n2\nsubnet-1\nnat-instance\ngeneration 3"))
        );
        assert_eq!(
            endpoint(&stack, "s3", "vpc-1", &["a", "b"], ("run", 0)),
            by_hand(&format!("{stack}\ns3\nvpc-1\na,b\nrun"))
        );
    }
}
