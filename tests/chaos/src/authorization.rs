//! What IAM would authorize for a call, read off the wire before moto applies it: the action, every
//! resource the call names with that resource's tags at that moment (asked of moto), the request's
//! tags, and the condition keys AWS sets (`ec2:CreateAction`, `iam:PassedToService`,
//! `iam:PolicyARN`). [`crate::iam::evaluate`] judges them against a policy; the log keeps them
//! (`LogEntry::authorizations`).
//!
//! Sources for what each call authorizes:
//! - EC2 resources per action, and tagging on create:
//!   <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html> and
//!   <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html>
//!   ("If tags are specified in the resource-creating action, Amazon performs additional
//!   authorization on the ec2:CreateTags action").
//! - `iam:PassRole` with `iam:PassedToService` when a function is given a role:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html>.
//! - Tags in CreateRole need `iam:TagRole`; tags in PutParameter need `ssm:AddTagsToResource`;
//!   tags in CreateFunction need `lambda:TagResource` (each service's tagging page).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::iam::Authorization;
use crate::protocol::{self, Operation};
use crate::upstream::{child_text, xml_texts, Caller, Upstream, UpstreamError};

/// moto's default account: the account field of the ARNs (fixedip's policy matches any account).
const ACCOUNT: &str = "123456789012";

/// Everything IAM authorizes for one call.
pub async fn of_call(
    upstream: &Upstream,
    caller: &Caller,
    operation: &Operation,
    params: &[(String, String)],
    path: &str,
    json: &Value,
) -> Result<Vec<Authorization>, UpstreamError> {
    let region = operation.region.as_str();
    let action = format!("{}:{}", operation.service, iam_action(operation));
    Ok(match operation.service.as_str() {
        // GetConsoleOutput is a read that IAM scopes to the instance (and its tags).
        "ec2" if operation.mutating || operation.name == "GetConsoleOutput" => {
            ec2(upstream, caller, operation, params).await?
        }
        "iam" => iam(&action, params),
        "autoscaling" if operation.mutating => autoscaling(&action, region, params),
        "lambda" => lambda(&action, region, path, json),
        "ssm" => ssm(&action, region, json),
        _ => vec![Authorization::new(action, "*")],
    })
}

/// The IAM action of an API operation, where the two differ.
fn iam_action(operation: &Operation) -> &str {
    match (operation.service.as_str(), operation.name.as_str()) {
        ("lambda", "Invoke") => "InvokeFunction",
        ("lambda", "ListTags") => "ListTags",
        (_, name) => name,
    }
}

// ---------------------------------------------------------------------------------------------
// EC2

/// The resource type in an ARN, from an id's prefix.
fn ec2_type(id: &str) -> Option<&'static str> {
    const PREFIXES: [(&str, &str); 13] = [
        ("vpce-", "vpc-endpoint"),
        ("lt-", "launch-template"),
        ("vpc-", "vpc"),
        ("subnet-", "subnet"),
        ("igw-", "internet-gateway"),
        ("nat-", "natgateway"),
        ("eipalloc-", "elastic-ip"),
        ("rtb-", "route-table"),
        ("sg-", "security-group"),
        ("i-", "instance"),
        ("eni-", "network-interface"),
        ("vol-", "volume"),
        ("ami-", "image"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix))
        .map(|(_, t)| *t)
}

fn ec2_arn(region: &str, id: &str) -> String {
    match ec2_type(id) {
        // Public images belong to no account in their ARN.
        Some("image") => format!("arn:aws:ec2:{region}::image/{id}"),
        Some(kind) => format!("arn:aws:ec2:{region}:{ACCOUNT}:{kind}/{id}"),
        None => format!("arn:aws:ec2:{region}:{ACCOUNT}:unknown/{id}"),
    }
}

/// The resource types a create makes, for its ARN and its tag-on-create authorization.
fn ec2_creates(operation: &str) -> &'static [&'static str] {
    match operation {
        "AllocateAddress" => &["elastic-ip"],
        "CreateInternetGateway" => &["internet-gateway"],
        "CreateNatGateway" => &["natgateway"],
        "CreateRouteTable" => &["route-table"],
        "CreateSecurityGroup" => &["security-group"],
        "CreateSubnet" => &["subnet"],
        "CreateVpc" => &["vpc"],
        "CreateVpcEndpoint" => &["vpc-endpoint"],
        "CreateNetworkInterface" => &["network-interface"],
        "CreateLaunchTemplate" => &["launch-template"],
        "RunInstances" => &["instance", "volume", "network-interface"],
        _ => &[],
    }
}

/// The parameters that name existing resources; routes authorize on their route table only.
fn names_a_resource(operation: &str, key: &str) -> bool {
    // `SubnetId`, `SecurityGroupId.1`, and inside a RunInstances interface specification
    // `NetworkInterface.1.SubnetId`, `NetworkInterface.1.SecurityGroupId.1`: the last name.
    let base = key
        .split('.')
        .rfind(|part| !part.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or(key);
    if matches!(operation, "CreateRoute" | "ReplaceRoute" | "DeleteRoute") {
        return base == "RouteTableId";
    }
    // A launch template's data names the subnet, group and image its instances will use; IAM
    // checks those at launch (RunInstances), not when the template is made.
    if operation == "CreateLaunchTemplate" {
        return false;
    }
    matches!(
        base,
        "VpcId"
            | "SubnetId"
            | "AllocationId"
            | "RouteTableId"
            | "AddRouteTableId"
            | "RemoveRouteTableId"
            | "InternetGatewayId"
            | "NatGatewayId"
            | "GroupId"
            | "SecurityGroupId"
            | "InstanceId"
            | "NetworkInterfaceId"
            | "VpcEndpointId"
            | "ResourceId"
            | "ImageId"
            | "LaunchTemplateId"
    )
}

/// `Tag.N.Key`/`Tag.N.Value` (CreateTags) or `TagSpecification.N.Tag.M.*` (creates), as pairs.
fn ec2_request_tags(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut tags = protocol::tags_under(params, "Tag");
    for (spec, _) in protocol::tag_specifications(params) {
        tags.extend(protocol::tags_under(params, &format!("{spec}.Tag")));
    }
    tags
}

async fn ec2(
    upstream: &Upstream,
    caller: &Caller,
    operation: &Operation,
    params: &[(String, String)],
) -> Result<Vec<Authorization>, UpstreamError> {
    let (region, name) = (operation.region.as_str(), operation.name.as_str());
    let action = format!("ec2:{name}");
    let request_tags = ec2_request_tags(params);
    let mut ids: BTreeSet<String> = params
        .iter()
        .filter(|(k, _)| names_a_resource(name, k))
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(association) = protocol::param(params, "AssociationId") {
        ids.extend(associated(upstream, caller, name, association).await?);
    }
    let mut authorizations = Vec::new();
    for id in &ids {
        let tags = tags_of(upstream, caller, id).await?;
        authorizations.push(
            Authorization::new(&action, ec2_arn(region, id))
                .with_tags("aws:ResourceTag", &tags)
                .with_tags("aws:RequestTag", &request_tags),
        );
    }
    for kind in ec2_creates(name) {
        let arn = format!("arn:aws:ec2:{region}:{ACCOUNT}:{kind}/new");
        authorizations
            .push(Authorization::new(&action, &arn).with_tags("aws:RequestTag", &request_tags));
        if !request_tags.is_empty() {
            authorizations.push(
                Authorization::new("ec2:CreateTags", &arn)
                    .with("ec2:CreateAction", name)
                    .with_tags("aws:RequestTag", &request_tags),
            );
        }
    }
    if authorizations.is_empty() {
        authorizations.push(Authorization::new(&action, "*"));
    }
    Ok(authorizations)
}

/// The resource an association id stands for: the address (DisassociateAddress) or the route
/// table (DisassociateRouteTable).
async fn associated(
    upstream: &Upstream,
    caller: &Caller,
    operation: &str,
    association: &str,
) -> Result<Vec<String>, UpstreamError> {
    let (describe, filter, id) = match operation {
        "DisassociateAddress" => ("DescribeAddresses", "association-id", "allocationId"),
        "DisassociateRouteTable" => (
            "DescribeRouteTables",
            "association.route-table-association-id",
            "routeTableId",
        ),
        _ => return Ok(Vec::new()),
    };
    let xml = upstream
        .ec2(
            caller,
            &[
                ("Action", describe),
                ("Filter.1.Name", filter),
                ("Filter.1.Value.1", association),
            ],
        )
        .await?;
    let mut ids = xml_texts(&xml, id);
    ids.sort();
    ids.dedup();
    // A route table's answer also names it in each association: keep route tables only.
    ids.retain(|i| ec2_type(i).is_some());
    Ok(ids)
}

/// A resource's tags as moto holds them now.
async fn tags_of(
    upstream: &Upstream,
    caller: &Caller,
    id: &str,
) -> Result<Vec<(String, String)>, UpstreamError> {
    let xml = upstream
        .ec2(
            caller,
            &[
                ("Action", "DescribeTags"),
                ("Filter.1.Name", "resource-id"),
                ("Filter.1.Value.1", id),
            ],
        )
        .await?;
    let Ok(doc) = roxmltree::Document::parse(&xml) else {
        return Ok(Vec::new());
    };
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("item") && child_text(*n, "resourceId") == Some(id))
        .filter_map(|n| {
            Some((
                child_text(n, "key")?.to_owned(),
                child_text(n, "value").unwrap_or("").to_owned(),
            ))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// IAM, Lambda, SSM

fn iam(action: &str, params: &[(String, String)]) -> Vec<Authorization> {
    if let Some(profile) = protocol::param(params, "InstanceProfileName") {
        // The instance profile actions authorize on the profile (AddRoleToInstanceProfile and
        // RemoveRoleFromInstanceProfile name the role too, but IAM scopes them to the profile).
        let arn = format!("arn:aws:iam::{ACCOUNT}:instance-profile/{profile}");
        let tags = protocol::tags_under(params, "Tags.member");
        let mut all = vec![Authorization::new(action, &arn).with_tags("aws:RequestTag", &tags)];
        if action == "iam:CreateInstanceProfile" && !tags.is_empty() {
            all.push(
                Authorization::new("iam:TagInstanceProfile", &arn)
                    .with_tags("aws:RequestTag", &tags),
            );
        }
        return all;
    }
    let Some(role) = protocol::param(params, "RoleName") else {
        return vec![Authorization::new(action, "*")];
    };
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
    let mut main = Authorization::new(action, &arn);
    if let Some(policy) = protocol::param(params, "PolicyArn") {
        main = main.with("iam:PolicyARN", policy);
    }
    let tags = protocol::tags_under(params, "Tags.member");
    let mut all = vec![main.with_tags("aws:RequestTag", &tags)];
    if action == "iam:CreateRole" && !tags.is_empty() {
        all.push(Authorization::new("iam:TagRole", &arn).with_tags("aws:RequestTag", &tags));
    }
    all
}

/// EC2 Auto Scaling's changes authorize on the group's ARN (its name in it). What a group's
/// launch template implies (ec2:RunInstances and iam:PassRole of its instance profile's role,
/// checked as the group launches) is not modelled.
fn autoscaling(action: &str, region: &str, params: &[(String, String)]) -> Vec<Authorization> {
    match protocol::param(params, "AutoScalingGroupName") {
        Some(name) => vec![Authorization::new(
            action,
            format!("arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{name}"),
        )],
        None => vec![Authorization::new(action, "*")],
    }
}

fn lambda(action: &str, region: &str, path: &str, json: &Value) -> Vec<Authorization> {
    let function = |name: &str| {
        let name = protocol::function_name_of(name);
        format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}")
    };
    // `/2017-03-31/tags/<arn>` names the function by ARN (TagResource, ListTags).
    let tagged = path.split("/tags/").nth(1).map(|arn| {
        let decoded: String = form_urlencoded::parse(format!("n={arn}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        function(&decoded)
    });
    let named = protocol::lambda_function_name(path)
        .or_else(|| json["FunctionName"].as_str().map(str::to_owned))
        .map(|n| function(&n));
    let Some(arn) = tagged.or(named) else {
        return vec![Authorization::new(action, "*")];
    };
    let mut all = vec![Authorization::new(action, &arn)];
    if let Some(role) = json["Role"].as_str() {
        all.push(
            Authorization::new("iam:PassRole", role)
                .with("iam:PassedToService", "lambda.amazonaws.com"),
        );
    }
    if action == "lambda:CreateFunction" && json["Tags"].as_object().is_some_and(|t| !t.is_empty())
    {
        all.push(Authorization::new("lambda:TagResource", &arn));
    }
    all
}

fn ssm(action: &str, region: &str, json: &Value) -> Vec<Authorization> {
    let Some(name) = json["Name"].as_str() else {
        return vec![Authorization::new(action, "*")];
    };
    let name = name.trim_start_matches('/');
    // AWS's public parameters belong to no account in their ARN.
    let account = if name.starts_with("aws/service/") {
        ""
    } else {
        ACCOUNT
    };
    let arn = format!("arn:aws:ssm:{region}:{account}:parameter/{name}");
    let mut all = vec![Authorization::new(action, &arn)];
    if action == "ssm:PutParameter" && json["Tags"].as_array().is_some_and(|t| !t.is_empty()) {
        all.push(Authorization::new("ssm:AddTagsToResource", &arn));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ids_name_their_arns() {
        assert_eq!(
            ec2_arn("us-east-1", "vpce-1"),
            "arn:aws:ec2:us-east-1:123456789012:vpc-endpoint/vpce-1"
        );
        assert_eq!(
            ec2_arn("eu-west-1", "ami-9"),
            "arn:aws:ec2:eu-west-1::image/ami-9"
        );
        assert_eq!(ec2_type("eipalloc-1"), Some("elastic-ip"));
    }

    #[test]
    fn routes_authorize_on_their_table_and_tags_are_read_from_both_forms() {
        assert!(names_a_resource("CreateRoute", "RouteTableId"));
        assert!(!names_a_resource("CreateRoute", "NatGatewayId"));
        assert!(names_a_resource("CreateNatGateway", "SubnetId"));
        assert!(names_a_resource("CreateTags", "ResourceId.1"));
        let params = pairs(&[
            ("Tag.1.Key", "fixedip:address"),
            ("Tag.1.Value", "retained"),
            ("TagSpecification.1.ResourceType", "vpc"),
            ("TagSpecification.1.Tag.1.Key", "fixedip:stack"),
            ("TagSpecification.1.Tag.1.Value", "a"),
        ]);
        assert_eq!(
            ec2_request_tags(&params),
            pairs(&[("fixedip:address", "retained"), ("fixedip:stack", "a")])
        );
    }

    #[test]
    fn a_role_given_to_a_function_is_passed_to_lambda() {
        let json = serde_json::json!({"FunctionName": "f", "Role": "arn:aws:iam::1:role/r"});
        let all = lambda(
            "lambda:CreateFunction",
            "us-east-1",
            "/2015-03-31/functions",
            &json,
        );
        assert_eq!(
            all[0].resource,
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
        assert_eq!(all[1].action, "iam:PassRole");
        assert_eq!(
            all[1].context["iam:PassedToService"],
            ["lambda.amazonaws.com"]
        );
        let public = ssm(
            "ssm:GetParameter",
            "us-east-1",
            &serde_json::json!({"Name": "/aws/service/ami-amazon-linux-latest/x"}),
        );
        assert_eq!(
            public[0].resource,
            "arn:aws:ssm:us-east-1::parameter/aws/service/ami-amazon-linux-latest/x"
        );
    }
}
