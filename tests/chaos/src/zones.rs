//! Availability zones an account cannot use, which moto does not model: a subnet refused in an AZ
//! the account lists, and an instance type refused in an AZ that has constraints on it.
//!
//! RunInstances in such an AZ gets 400 `Unsupported`, "Your requested instance type (t3.micro) is
//! not supported in your requested Availability Zone (us-east-1e). Please retry your request by not
//! specifying an Availability Zone or choosing us-east-1a, …" (ned1313/Getting-Started-Terraform
//! #44; the EC2 error codes page: "…launch an instance in an Availability Zone that currently has
//! constraints on that instance type"). moto launches any type anywhere.
//!
//! AWS answers CreateSubnet in such a zone with 400 `InvalidParameterValue`, "Value (us-east-1a)
//! for parameter availabilityZone is invalid. Subnets can currently only be created in the
//! following availability zones: us-east-1d, us-east-1c, us-east-1b, us-east-1e." (quoted in
//! boto/boto #1904, hashicorp/terraform #3434, aws-samples/saas-reference-architecture-ecs #12),
//! while DescribeAvailabilityZones lists the zone all the same (widdix/aws-cf-templates #36): only
//! the create tells. moto 5.2.5 creates the subnet.
//!
//! Lambda answers a CreateFunction (or UpdateFunctionConfiguration) whose `VpcConfig` names a
//! subnet in an AZ it does not support in that region with 400 `InvalidParameterValueException`,
//! "The provided subnets contain availability zone Lambda doesn't support. Please use a different
//! set of subnets." (us-east-1, keboola/developer-portal #81, where the same template worked in the
//! account's other environments). The message names neither the subnet nor the zone. No API lists
//! the zones Lambda supports, and DescribeAvailabilityZones lists such a zone all the same. moto
//! 5.2.5 attaches the function to any subnet.

use http::StatusCode;

use crate::dependencies::Refusal;

/// The refusal of a CreateSubnet in `az`, when the scenario lists it; `None` lets it through.
/// `others` are the zones the message says subnets can be created in.
pub fn refuse_subnet(refused: &[String], az: Option<&str>) -> Option<Refusal> {
    let az = az?;
    if !refused.iter().any(|r| r == az) {
        return None;
    }
    Some(Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidParameterValue",
        message: format!(
            "Value ({az}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
            other_zones(refused, az)
        ),
    })
}

/// The refusal of a RunInstances of `instance_type` into a subnet of `az`, when the scenario lists
/// that AZ; `None` lets it through.
pub fn refuse_instance(refused: &[String], az: &str, instance_type: &str) -> Option<Refusal> {
    if !refused.iter().any(|r| r == az) {
        return None;
    }
    Some(Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "Unsupported",
        message: format!(
            "Your requested instance type ({instance_type}) is not supported in your requested Availability Zone ({az}). Please retry your request by not specifying an Availability Zone or choosing {}.",
            other_zones(refused, az)
        ),
    })
}

/// What Lambda says of a function's subnets when one of them is in a zone it does not support
/// (keboola/developer-portal #81).
pub const LAMBDA_REFUSED_MESSAGE: &str = "The provided subnets contain availability zone Lambda doesn't support. Please use a different set of subnets.";

/// The refusal of a CreateFunction or UpdateFunctionConfiguration whose subnets are in `azs`,
/// when the scenario lists one of them; `None` lets it through.
pub fn refuse_function(refused: &[String], azs: &[String]) -> Option<Refusal> {
    if !azs.iter().any(|az| refused.contains(az)) {
        return None;
    }
    Some(Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidParameterValueException",
        message: LAMBDA_REFUSED_MESSAGE.to_owned(),
    })
}

/// The region's other lettered zones, as AWS's messages list them (a to f: what moto offers).
fn other_zones(refused: &[String], az: &str) -> String {
    let region = &az[..az.len() - 1];
    let others: Vec<String> = ('a'..='f')
        .map(|letter| format!("{region}{letter}"))
        .filter(|zone| !refused.contains(zone))
        .collect();
    others.join(", ")
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

    #[test]
    fn a_listed_zone_refuses_functions_as_lambda_words_it() {
        let refused = vec!["us-east-1a".to_owned()];
        let both = ["us-east-1b".to_owned(), "us-east-1a".to_owned()];
        let refusal = refuse_function(&refused, &both).unwrap();
        assert_eq!(refusal.code, "InvalidParameterValueException");
        assert_eq!(refusal.message, LAMBDA_REFUSED_MESSAGE);
        assert_eq!(refuse_function(&refused, &both[..1]), None);
        assert_eq!(refuse_function(&refused, &[]), None);
    }

    #[test]
    fn a_listed_zone_refuses_instances_as_aws_words_it() {
        let refused = vec!["us-east-1e".to_owned()];
        let refusal = refuse_instance(&refused, "us-east-1e", "t4g.nano").unwrap();
        assert_eq!(refusal.code, "Unsupported");
        assert!(refusal.message.starts_with(
            "Your requested instance type (t4g.nano) is not supported in your requested Availability Zone (us-east-1e)."
        ));
        assert_eq!(refuse_instance(&refused, "us-east-1a", "t4g.nano"), None);
    }
}
