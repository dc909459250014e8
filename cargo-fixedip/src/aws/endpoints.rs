//! Before the first endpoint is created: does the region offer the services `endpoints = [...]`
//! names, as the kind fixedip makes of each (gateway for S3 and DynamoDB, interface for the rest),
//! in every AZ the stack uses? Asked with DescribeVpcEndpointServices; a refusal lists what the
//! region does offer, so that nothing is created for a stack that cannot be finished.

use aws_sdk_ec2::types::{Filter, ServiceDetail, ServiceType};
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
    let names: Vec<String> = services
        .iter()
        .map(|s| s.service_name(&aws.region))
        .collect();
    // A filter, not `ServiceNames`: an unknown name in `ServiceNames` fails the whole call.
    let filter = Filter::builder()
        .name("service-name")
        .set_values(Some(names))
        .build();
    let details = describe(aws, Some(filter)).await?;
    let mut missing = Vec::new();
    for service in services {
        let name = service.service_name(&aws.region);
        let wanted = match service.kind() {
            EndpointKind::Gateway => ServiceType::Gateway,
            EndpointKind::Interface => ServiceType::Interface,
        };
        let kind = match service.kind() {
            EndpointKind::Gateway => "gateway",
            EndpointKind::Interface => "interface",
        };
        let offered = details.iter().find(|d| {
            d.service_name() == Some(name.as_str())
                && d.service_type()
                    .iter()
                    .any(|t| t.service_type() == Some(&wanted))
        });
        match offered {
            None => missing.push(format!("`{service}` ({name}, {kind}) is not offered")),
            Some(detail) if service.kind() == EndpointKind::Interface => {
                let zones: Vec<&str> = azs
                    .iter()
                    .map(String::as_str)
                    .filter(|az| !detail.availability_zones().iter().any(|z| z == az))
                    .collect();
                if !zones.is_empty() {
                    missing.push(format!(
                        "`{service}` ({name}, {kind}) is not offered in {}",
                        zones.join(", ")
                    ));
                }
            }
            Some(_) => {}
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let prefix = format!("com.amazonaws.{}.", aws.region);
    let mut offered: Vec<String> = describe(aws, None)
        .await?
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

/// Every page of DescribeVpcEndpointServices (the SDK has no paginator for it).
async fn describe(aws: &Aws, filter: Option<Filter>) -> Result<Vec<ServiceDetail>, AwsError> {
    let mut details = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let answer = aws
            .ec2
            .describe_vpc_endpoint_services()
            .set_filters(filter.clone().map(|f| vec![f]))
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
