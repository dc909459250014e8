//! Before the first endpoint is created: does the region offer the services `endpoints = [...]`
//! names, as the kind fixedip makes of each (gateway for S3 and DynamoDB, interface for the rest),
//! in every AZ the stack uses? Asked with DescribeVpcEndpointServices; a refusal lists what the
//! region does offer, so that nothing is created for a stack that cannot be finished.

use aws_sdk_ec2::types::{ServiceDetail, ServiceType};
use fixedip_core::plan::{Action, Plan};
use fixedip_core::requirements::{Endpoint, EndpointKind};

use super::{Aws, AwsError};

/// The services a plan creates endpoints for, each once.
pub fn services_created(plan: &Plan) -> Vec<Endpoint> {
    let mut services: Vec<Endpoint> = plan
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::CreateGatewayEndpoint { endpoint, .. }
            | Action::CreateInterfaceEndpoint { endpoint, .. } => Some(*endpoint),
            _ => None,
        })
        .collect();
    services.sort();
    services.dedup();
    services
}

/// Refuses, before any change, services the region does not offer as the needed kind, or (for an
/// interface endpoint) not in every one of `azs`.
pub async fn check_services(
    aws: &Aws,
    services: &[Endpoint],
    azs: &[String],
) -> Result<(), AwsError> {
    if services.is_empty() {
        return Ok(());
    }
    // Every service, unfiltered: a name in `ServiceNames` that the region lacks fails the whole
    // call, and moto fails the `service-name` filter. A few pages at most, and only when the plan
    // creates an endpoint.
    let details = describe(aws).await?;
    let offered: Vec<OfferedService> = details.iter().filter_map(OfferedService::of).collect();
    let missing = unoffered(services, &offered, &aws.region, azs);
    if missing.is_empty() {
        return Ok(());
    }
    let prefix = format!("com.amazonaws.{}.", aws.region);
    let mut offered: Vec<String> = details
        .iter()
        .filter_map(|d| d.service_name()?.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    offered.sort();
    offered.dedup();
    Err(AwsError::EndpointServicesUnavailable {
        region: aws.region.clone(),
        missing,
        offered,
    })
}

/// One service as DescribeVpcEndpointServices lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedService {
    pub name: String,
    pub kinds: Vec<EndpointKind>,
    pub azs: Vec<String>,
}

impl OfferedService {
    fn of(detail: &ServiceDetail) -> Option<OfferedService> {
        Some(OfferedService {
            name: detail.service_name()?.to_owned(),
            kinds: detail
                .service_type()
                .iter()
                .filter_map(|t| match t.service_type()? {
                    ServiceType::Gateway => Some(EndpointKind::Gateway),
                    ServiceType::Interface => Some(EndpointKind::Interface),
                    _ => None,
                })
                .collect(),
            azs: detail.availability_zones().to_vec(),
        })
    }
}

/// Why each of `services` cannot be made in `region` across `azs`, as the refusal lists it.
/// AWS lists one service name twice when it offers both kinds (S3): every entry counts.
pub fn unoffered(
    services: &[Endpoint],
    offered: &[OfferedService],
    region: &str,
    azs: &[String],
) -> Vec<String> {
    let mut missing = Vec::new();
    for service in services {
        let name = service.service_name(region);
        let kind = match service.kind() {
            EndpointKind::Gateway => "gateway",
            EndpointKind::Interface => "interface",
        };
        let found: Vec<&OfferedService> = offered
            .iter()
            .filter(|o| o.name == name && o.kinds.contains(&service.kind()))
            .collect();
        if found.is_empty() {
            missing.push(format!("`{service}` ({name}, {kind}) is not offered"));
            continue;
        }
        if service.kind() == EndpointKind::Interface {
            let zones: Vec<&str> = azs
                .iter()
                .map(String::as_str)
                .filter(|az| !found.iter().any(|o| o.azs.iter().any(|z| z == az)))
                .collect();
            if !zones.is_empty() {
                missing.push(format!(
                    "`{service}` ({name}, {kind}) is not offered in {}",
                    zones.join(", ")
                ));
            }
        }
    }
    missing
}

/// Every page of DescribeVpcEndpointServices (the SDK has no paginator for it).
async fn describe(aws: &Aws) -> Result<Vec<ServiceDetail>, AwsError> {
    let mut details = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let answer = aws
            .ec2
            .describe_vpc_endpoint_services()
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeVpcEndpointServices", e))?;
        details.extend(answer.service_details().iter().cloned());
        match answer.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(details),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(name: &str, kinds: &[EndpointKind], azs: &[&str]) -> OfferedService {
        OfferedService {
            name: name.to_owned(),
            kinds: kinds.to_vec(),
            azs: azs.iter().map(|az| az.to_string()).collect(),
        }
    }

    #[test]
    fn each_service_must_be_offered_as_its_kind_in_every_az() {
        let azs = ["us-east-1a".to_owned(), "us-east-1b".to_owned()];
        let listed = [
            // S3 twice, as AWS lists it: interface and gateway.
            offered(
                "com.amazonaws.us-east-1.s3",
                &[EndpointKind::Interface],
                &["us-east-1a", "us-east-1b"],
            ),
            offered(
                "com.amazonaws.us-east-1.s3",
                &[EndpointKind::Gateway],
                &["us-east-1a", "us-east-1b"],
            ),
            offered(
                "com.amazonaws.us-east-1.logs",
                &[EndpointKind::Interface],
                &["us-east-1a", "us-east-1b"],
            ),
            offered(
                "com.amazonaws.us-east-1.sts",
                &[EndpointKind::Interface],
                &["us-east-1a"],
            ),
            // DynamoDB offered as an interface endpoint only: fixedip makes a gateway one.
            offered(
                "com.amazonaws.us-east-1.dynamodb",
                &[EndpointKind::Interface],
                &["us-east-1a", "us-east-1b"],
            ),
        ];
        let parse = |names: &[&str]| -> Vec<Endpoint> {
            names.iter().map(|n| Endpoint::parse(n).unwrap()).collect()
        };
        assert!(unoffered(&parse(&["s3", "logs"]), &listed, "us-east-1", &azs).is_empty());
        assert_eq!(
            unoffered(
                &parse(&["dynamodb", "sts", "kms"]),
                &listed,
                "us-east-1",
                &azs
            ),
            [
                "`dynamodb` (com.amazonaws.us-east-1.dynamodb, gateway) is not offered",
                "`sts` (com.amazonaws.us-east-1.sts, interface) is not offered in us-east-1b",
                "`kms` (com.amazonaws.us-east-1.kms, interface) is not offered",
            ]
        );
    }
}
