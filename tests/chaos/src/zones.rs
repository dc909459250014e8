//! Availability zones an account cannot use, which moto does not model: a subnet refused in an AZ
//! the account lists.
//!
//! AWS answers CreateSubnet in such a zone with 400 `InvalidParameterValue`, "Value (us-east-1a)
//! for parameter availabilityZone is invalid. Subnets can currently only be created in the
//! following availability zones: us-east-1d, us-east-1c, us-east-1b, us-east-1e." (quoted in
//! boto/boto #1904, hashicorp/terraform #3434, aws-samples/saas-reference-architecture-ecs #12),
//! while DescribeAvailabilityZones lists the zone all the same (widdix/aws-cf-templates #36): only
//! the create tells. moto 5.2.5 creates the subnet.

use http::StatusCode;

use crate::dependencies::Refusal;

/// The refusal of a CreateSubnet in `az`, when the scenario lists it; `None` lets it through.
/// `others` are the zones the message says subnets can be created in.
pub fn refuse_subnet(refused: &[String], az: Option<&str>) -> Option<Refusal> {
    let az = az?;
    if !refused.iter().any(|r| r == az) {
        return None;
    }
    // The region's other lettered zones, as the message lists them (a to f: what moto offers).
    let region = &az[..az.len() - 1];
    let others: Vec<String> = ('a'..='f')
        .map(|letter| format!("{region}{letter}"))
        .filter(|zone| !refused.contains(zone))
        .collect();
    Some(Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidParameterValue",
        message: format!(
            "Value ({az}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
            others.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_zone_refuses_subnets_as_aws_words_it() {
        let refused = vec!["us-east-1b".to_owned()];
        let refusal = refuse_subnet(&refused, Some("us-east-1b")).unwrap();
        assert_eq!(refusal.code, "InvalidParameterValue");
        assert_eq!(
            refusal.message,
            "Value (us-east-1b) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: us-east-1a, us-east-1c, us-east-1d, us-east-1e, us-east-1f."
        );
        assert_eq!(refuse_subnet(&refused, Some("us-east-1c")), None);
        assert_eq!(refuse_subnet(&refused, None), None);
    }
}
