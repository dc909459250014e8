//! `cargo fixedip iam-policy`: the least-privilege IAM policy a person or a CI role needs to run
//! deploy, ips, status, plan, verify and destroy. Needs no AWS access: it is printed from the list
//! below, which names every AWS operation the tool makes (observe.rs, execute.rs, the commands, the
//! SDK waiters) and the removal actions of `fixedip_core::plan::Action` that destroy carries out.
//!
//! IAM takes JSON only, so text and `--json` print the same document. The reliability suite
//! (`tests/tests/reliability.rs`) checks that every call the tool made in every scenario is allowed
//! by it.

use serde_json::{json, Value};

use super::Context;
use crate::error::CliError;

/// The tag every resource of a stack carries (`fixedip_core::tags::STACK`); IAM conditions on it.
const STACK_TAG: &str = fixedip_core::tags::STACK;

/// How far an action is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Reads that AWS does not scope to resources (EC2 Describe*, lambda:ListFunctions,
    /// sts:GetCallerIdentity): `Resource: *`.
    Anywhere,
    /// An EC2 create: allowed only when the request itself tags the new resource with the stack tag
    /// (the tool always tags in the create call), and only inside the stack's own resources.
    Create {
        /// The EC2 resource type created (`vpc`, `subnet`...), as in its ARN.
        creates: &'static str,
        /// Existing resources the call names (a subnet's VPC), which must carry the stack tag.
        within: &'static [&'static str],
    },
    /// Tagging: at creation (`ec2:CreateAction` is one of the creates above), and re-tagging the
    /// stack's Elastic IPs (activate, retain; an adopted address gets the stack tag this way).
    Tagging,
    /// Any change to an existing EC2 resource: only one carrying the stack tag.
    StackTagged,
    /// Lambda's own network interfaces, which destroy removes once AWS lets them go: Lambda tags
    /// them with nothing, so no condition can tell them apart; AWS refuses to delete one in use.
    LambdaInterfaces,
    /// A Lambda function (names are the user's choice, so `function:*`).
    Function,
    /// The stack's execution roles, `fixedip-<stack>-<region>-lambda`.
    StackRole,
    /// Attaching or detaching the two AWS-managed execution policies, and nothing else.
    ExecutionPolicies,
    /// Handing the stack's role to Lambda, and to no other service.
    PassStackRole,
    /// Launching a NAT instance (`nat = "instance"`): RunInstances checks the AMI (AWS's own
    /// Amazon Linux image, untagged), the subnet and security group (the stack's), and the
    /// instance, volume and network interface it makes (tagged by the request). No instance
    /// profile, so no iam:PassRole.
    RunNatInstance,
    /// The self-healing NAT instances' instance profiles, `fixedip-<stack>-<region>-nat`.
    StackInstanceProfile,
    /// Handing the NAT instances' role to EC2 (a group launching from a template that names its
    /// instance profile), and to no other service.
    PassNatRole,
    /// The service-linked role of EC2 Auto Scaling, which AWS makes at an account's first group.
    AutoScalingServiceRole,
    /// The self-healing NATs' auto-scaling groups, `fixedip-<stack>-nat-<slot>`.
    StackGroup,
    /// The stacks' leases (aws/lease.rs): SSM parameters under `/fixedip/`, and nothing else in
    /// Parameter Store. `ssm:GetParameter` also reads AWS's public parameters naming the latest
    /// Amazon Linux images, for NAT instances (a statement of its own).
    StackLease,
}

/// Every AWS action the tool needs, sorted, each once. The one place to change when the tool starts
/// or stops calling something.
pub const PERMISSIONS: &[(&str, Scope)] = &[
    // nat-self-healing: a group of one per AZ.
    ("autoscaling:CreateAutoScalingGroup", Scope::StackGroup),
    ("autoscaling:DeleteAutoScalingGroup", Scope::StackGroup),
    ("autoscaling:DescribeAutoScalingGroups", Scope::Anywhere),
    (
        "ec2:AllocateAddress",
        Scope::Create {
            creates: "elastic-ip",
            within: &[],
        },
    ),
    // nat = "instance": the slot's Elastic IP onto its NAT instance.
    ("ec2:AssociateAddress", Scope::StackTagged),
    ("ec2:AssociateRouteTable", Scope::StackTagged),
    ("ec2:AttachInternetGateway", Scope::StackTagged),
    // `egress = [...]`, and the interface endpoints' group admitting the functions' group.
    ("ec2:AuthorizeSecurityGroupEgress", Scope::StackTagged),
    // The NAT instances' and the interface endpoints' security groups admit their clients.
    ("ec2:AuthorizeSecurityGroupIngress", Scope::StackTagged),
    (
        "ec2:CreateInternetGateway",
        Scope::Create {
            creates: "internet-gateway",
            within: &[],
        },
    ),
    (
        "ec2:CreateLaunchTemplate",
        Scope::Create {
            creates: "launch-template",
            within: &[],
        },
    ),
    (
        "ec2:CreateNatGateway",
        Scope::Create {
            creates: "natgateway",
            within: &["subnet", "elastic-ip"],
        },
    ),
    // nat-self-healing: the fixed interface holding the Elastic IP.
    (
        "ec2:CreateNetworkInterface",
        Scope::Create {
            creates: "network-interface",
            within: &["subnet", "security-group"],
        },
    ),
    ("ec2:CreateRoute", Scope::StackTagged),
    (
        "ec2:CreateRouteTable",
        Scope::Create {
            creates: "route-table",
            within: &["vpc"],
        },
    ),
    (
        "ec2:CreateSecurityGroup",
        Scope::Create {
            creates: "security-group",
            within: &["vpc"],
        },
    ),
    (
        "ec2:CreateSubnet",
        Scope::Create {
            creates: "subnet",
            within: &["vpc"],
        },
    ),
    ("ec2:CreateTags", Scope::Tagging),
    (
        "ec2:CreateVpc",
        Scope::Create {
            creates: "vpc",
            within: &[],
        },
    ),
    // `endpoints = [...]`: gateway endpoints on route tables, interface ones in subnets with
    // their security group.
    (
        "ec2:CreateVpcEndpoint",
        Scope::Create {
            creates: "vpc-endpoint",
            within: &["vpc", "route-table", "subnet", "security-group"],
        },
    ),
    ("ec2:DeleteInternetGateway", Scope::StackTagged),
    ("ec2:DeleteLaunchTemplate", Scope::StackTagged),
    ("ec2:DeleteNatGateway", Scope::StackTagged),
    ("ec2:DeleteNetworkInterface", Scope::LambdaInterfaces),
    // deploy: a stack switched to `nat = "none"` loses its routes out.
    ("ec2:DeleteRoute", Scope::StackTagged),
    ("ec2:DeleteRouteTable", Scope::StackTagged),
    ("ec2:DeleteSecurityGroup", Scope::StackTagged),
    ("ec2:DeleteSubnet", Scope::StackTagged),
    ("ec2:DeleteTags", Scope::StackTagged),
    ("ec2:DeleteVpc", Scope::StackTagged),
    ("ec2:DeleteVpcEndpoints", Scope::StackTagged),
    // deploy: the Elastic IP quota (`vpc-max-elastic-ips`), read only when a plan allocates.
    ("ec2:DescribeAccountAttributes", Scope::Anywhere),
    ("ec2:DescribeAddresses", Scope::Anywhere),
    ("ec2:DescribeAvailabilityZones", Scope::Anywhere),
    // deploy, nat = "instance": the AZs that offer the instance type.
    ("ec2:DescribeInstanceTypeOfferings", Scope::Anywhere),
    // verify: NAT instances a route names, and whether their address is an Elastic IP.
    ("ec2:DescribeInstances", Scope::Anywhere),
    ("ec2:DescribeInternetGateways", Scope::Anywhere),
    // nat-self-healing: Auto Scaling reads the template with the caller's rights.
    ("ec2:DescribeLaunchTemplateVersions", Scope::Anywhere),
    ("ec2:DescribeLaunchTemplates", Scope::Anywhere),
    ("ec2:DescribeNatGateways", Scope::Anywhere),
    ("ec2:DescribeNetworkInterfaces", Scope::Anywhere),
    // deploy, restricted egress with S3/DynamoDB endpoints: the services' prefix list ids.
    ("ec2:DescribePrefixLists", Scope::Anywhere),
    ("ec2:DescribeRouteTables", Scope::Anywhere),
    ("ec2:DescribeSecurityGroups", Scope::Anywhere),
    ("ec2:DescribeSubnets", Scope::Anywhere),
    ("ec2:DescribeTags", Scope::Anywhere),
    ("ec2:DescribeVpcAttribute", Scope::Anywhere),
    // deploy: the endpoint services the region offers, asked before an endpoint is created.
    ("ec2:DescribeVpcEndpointServices", Scope::Anywhere),
    ("ec2:DescribeVpcEndpoints", Scope::Anywhere),
    ("ec2:DescribeVpcs", Scope::Anywhere),
    ("ec2:DetachInternetGateway", Scope::StackTagged),
    // destroy: an association left on a stack address after its NAT gateway is deleted.
    ("ec2:DisassociateAddress", Scope::StackTagged),
    ("ec2:DisassociateRouteTable", Scope::StackTagged),
    // nat = "instance": the boot's ready line (deploy waits for it; status and verify show it).
    // A read, scoped like a change: only the stack's own instances.
    ("ec2:GetConsoleOutput", Scope::StackTagged),
    // nat = "instance": the source/destination check off.
    ("ec2:ModifyInstanceAttribute", Scope::StackTagged),
    // nat = "instance" → gateway: no public IP from AWS once the Elastic IP leaves.
    ("ec2:ModifyNetworkInterfaceAttribute", Scope::StackTagged),
    ("ec2:ModifyVpcAttribute", Scope::StackTagged),
    ("ec2:ModifyVpcEndpoint", Scope::StackTagged),
    ("ec2:ReleaseAddress", Scope::StackTagged),
    ("ec2:ReplaceRoute", Scope::StackTagged),
    ("ec2:RevokeSecurityGroupEgress", Scope::StackTagged),
    ("ec2:RunInstances", Scope::RunNatInstance),
    // nat = "instance": a NAT instance found stopped is started again by the next deploy.
    ("ec2:StartInstances", Scope::StackTagged),
    ("ec2:TerminateInstances", Scope::StackTagged),
    // nat-self-healing: the NAT instances' role in its instance profile.
    ("iam:AddRoleToInstanceProfile", Scope::StackInstanceProfile),
    ("iam:AttachRolePolicy", Scope::ExecutionPolicies),
    ("iam:CreateInstanceProfile", Scope::StackInstanceProfile),
    ("iam:CreateRole", Scope::StackRole),
    ("iam:CreateServiceLinkedRole", Scope::AutoScalingServiceRole),
    ("iam:DeleteInstanceProfile", Scope::StackInstanceProfile),
    ("iam:DeleteRole", Scope::StackRole),
    ("iam:DeleteRolePolicy", Scope::StackRole),
    ("iam:DetachRolePolicy", Scope::ExecutionPolicies),
    ("iam:GetInstanceProfile", Scope::StackInstanceProfile),
    ("iam:GetRole", Scope::StackRole),
    ("iam:ListAttachedRolePolicies", Scope::StackRole),
    ("iam:PassRole", Scope::PassStackRole),
    // The NAT instances' role only: its inline policy is fixedip's own (nat_group.rs).
    ("iam:PutRolePolicy", Scope::StackRole),
    (
        "iam:RemoveRoleFromInstanceProfile",
        Scope::StackInstanceProfile,
    ),
    ("iam:TagInstanceProfile", Scope::StackInstanceProfile),
    // CreateRole with tags needs TagRole as well.
    ("iam:TagRole", Scope::StackRole),
    ("lambda:CreateFunction", Scope::Function),
    ("lambda:DeleteFunction", Scope::Function),
    ("lambda:GetFunction", Scope::Function),
    ("lambda:GetFunctionConfiguration", Scope::Function),
    // verify --probe.
    ("lambda:InvokeFunction", Scope::Function),
    ("lambda:ListFunctions", Scope::Anywhere),
    ("lambda:ListTags", Scope::Function),
    ("lambda:TagResource", Scope::Function),
    ("lambda:UpdateFunctionCode", Scope::Function),
    ("lambda:UpdateFunctionConfiguration", Scope::Function),
    // The lease: PutParameter with tags needs AddTagsToResource as well.
    ("ssm:AddTagsToResource", Scope::StackLease),
    ("ssm:DeleteParameter", Scope::StackLease),
    ("ssm:GetParameter", Scope::StackLease),
    ("ssm:PutParameter", Scope::StackLease),
    ("sts:GetCallerIdentity", Scope::Anywhere),
];

fn ec2_arns(types: &[&str]) -> Vec<String> {
    types
        .iter()
        .map(|t| format!("arn:aws:ec2:*:*:{t}/*"))
        .collect()
}

fn stack_tag_present(key: &str) -> Value {
    json!({ "Null": { format!("{key}/{STACK_TAG}"): "false" } })
}

fn actions_in(wanted: impl Fn(Scope) -> bool) -> Vec<&'static str> {
    PERMISSIONS
        .iter()
        .filter(|(_, scope)| wanted(*scope))
        .map(|(action, _)| *action)
        .collect()
}

fn statement(
    sid: &str,
    actions: Vec<&str>,
    resources: Vec<String>,
    condition: Option<Value>,
) -> Value {
    let mut statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": if resources.len() == 1 { json!(resources[0]) } else { json!(resources) },
    });
    if let Some(condition) = condition {
        statement["Condition"] = condition;
    }
    statement
}

/// The policy document, statements grouped by scope.
pub fn policy_document() -> Value {
    let mut statements = vec![statement(
        "ReadAnywhere",
        actions_in(|s| s == Scope::Anywhere),
        vec!["*".to_owned()],
        None,
    )];

    // Creates: the new resource must be tagged in the request; the resources it is made in must
    // already be the stack's.
    let creates: Vec<(&str, &str, &[&str])> = PERMISSIONS
        .iter()
        .filter_map(|(action, scope)| match scope {
            Scope::Create { creates, within } => Some((*action, *creates, *within)),
            _ => None,
        })
        .collect();
    let mut created_types: Vec<&str> = creates.iter().map(|(_, t, _)| *t).collect();
    created_types.sort_unstable();
    created_types.dedup();
    statements.push(statement(
        "CreateOnlyWithTheStackTag",
        creates.iter().map(|(a, _, _)| *a).collect(),
        ec2_arns(&created_types),
        Some(stack_tag_present("aws:RequestTag")),
    ));
    let mut parents: Vec<&str> = creates
        .iter()
        .flat_map(|(_, _, w)| w.iter().copied())
        .collect();
    parents.sort_unstable();
    parents.dedup();
    statements.push(statement(
        "CreateInsideTheStack",
        creates
            .iter()
            .filter(|(_, _, within)| !within.is_empty())
            .map(|(a, _, _)| *a)
            .collect(),
        ec2_arns(&parents),
        Some(stack_tag_present("aws:ResourceTag")),
    ));

    // `vpc = "vpc-..."`: on a network the user runs, the stack's security group is the one thing
    // fixedip creates there, in a VPC that carries no stack tag. The group itself is still bound
    // by `CreateOnlyWithTheStackTag`; the VPC is only named, never changed.
    statements.push(statement(
        "CreateTheSecurityGroupInAnExistingVpc",
        vec!["ec2:CreateSecurityGroup"],
        ec2_arns(&["vpc"]),
        None,
    ));

    let tagging = actions_in(|s| s == Scope::Tagging);
    let create_actions: Vec<String> = creates
        .iter()
        .map(|(a, _, _)| a.trim_start_matches("ec2:").to_owned())
        .collect();
    statements.push(statement(
        "TagOnCreate",
        tagging.clone(),
        ec2_arns(&created_types),
        Some(json!({ "StringEquals": { "ec2:CreateAction": create_actions } })),
    ));
    statements.push(statement(
        "TagAddressesForTheStack",
        tagging.clone(),
        ec2_arns(&["elastic-ip"]),
        Some(stack_tag_present("aws:RequestTag")),
    ));
    // Marking one of the stack's addresses `fixedip:address=retained` (destroy, fewer NATs) tags
    // it with that key alone: the address carries the stack tag, the request does not.
    statements.push(statement(
        "RetagTheStacksAddresses",
        tagging,
        ec2_arns(&["elastic-ip"]),
        Some(stack_tag_present("aws:ResourceTag")),
    ));
    statements.push(statement(
        "ChangeOnlyTheStacksResources",
        actions_in(|s| s == Scope::StackTagged),
        vec!["*".to_owned()],
        Some(stack_tag_present("aws:ResourceTag")),
    ));
    statements.push(statement(
        "RemoveLambdaNetworkInterfaces",
        actions_in(|s| s == Scope::LambdaInterfaces),
        ec2_arns(&["network-interface"]),
        None,
    ));
    statements.push(statement(
        "Functions",
        actions_in(|s| s == Scope::Function),
        vec!["arn:aws:lambda:*:*:function:*".to_owned()],
        None,
    ));
    let stack_roles = || vec!["arn:aws:iam::*:role/fixedip-*".to_owned()];
    statements.push(statement(
        "TheStacksExecutionRole",
        actions_in(|s| s == Scope::StackRole),
        stack_roles(),
        None,
    ));
    let policies: Vec<String> = fixedip_core::planner::EXECUTION_ROLE_POLICIES
        .iter()
        .map(|name| format!("arn:aws:iam::aws:policy/service-role/{name}"))
        .collect();
    statements.push(statement(
        "OnlyTheManagedExecutionPolicies",
        actions_in(|s| s == Scope::ExecutionPolicies),
        stack_roles(),
        Some(json!({ "ArnEquals": { "iam:PolicyARN": policies } })),
    ));
    statements.push(statement(
        "PassTheRoleToLambdaOnly",
        actions_in(|s| s == Scope::PassStackRole),
        stack_roles(),
        Some(json!({ "StringEquals": { "iam:PassedToService": "lambda.amazonaws.com" } })),
    ));
    statements.push(statement(
        "PassTheNatRoleToEc2Only",
        vec!["iam:PassRole"],
        vec!["arn:aws:iam::*:role/fixedip-*-nat".to_owned()],
        Some(json!({ "StringEquals": { "iam:PassedToService": "ec2.amazonaws.com" } })),
    ));
    statements.push(statement(
        "TheNatInstanceProfiles",
        actions_in(|s| s == Scope::StackInstanceProfile),
        vec!["arn:aws:iam::*:instance-profile/fixedip-*".to_owned()],
        None,
    ));
    statements.push(statement(
        "TheAutoScalingServiceRole",
        actions_in(|s| s == Scope::AutoScalingServiceRole),
        vec!["arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling".to_owned()],
        Some(json!({ "StringEquals": { "iam:AWSServiceName": "autoscaling.amazonaws.com" } })),
    ));
    statements.push(statement(
        "TheNatGroups",
        actions_in(|s| s == Scope::StackGroup),
        vec![
            "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/fixedip-*".to_owned(),
        ],
        None,
    ));
    statements.push(statement(
        "TheStacksLeases",
        actions_in(|s| s == Scope::StackLease),
        vec!["arn:aws:ssm:*:*:parameter/fixedip/*".to_owned()],
        None,
    ));

    let run = actions_in(|s| s == Scope::RunNatInstance);
    statements.push(statement(
        "LaunchNatInstancesFromPublicImages",
        run.clone(),
        vec!["arn:aws:ec2:*::image/*".to_owned()],
        None,
    ));
    statements.push(statement(
        "LaunchNatInstancesTagged",
        run.clone(),
        ec2_arns(&["instance", "volume", "network-interface"]),
        Some(stack_tag_present("aws:RequestTag")),
    ));
    statements.push(statement(
        "LaunchNatInstancesInsideTheStack",
        run,
        ec2_arns(&["subnet", "security-group"]),
        Some(stack_tag_present("aws:ResourceTag")),
    ));
    statements.push(statement(
        "TagNatInstancesOnLaunch",
        actions_in(|s| s == Scope::Tagging),
        ec2_arns(&["instance", "volume", "network-interface"]),
        Some(json!({ "StringEquals": { "ec2:CreateAction": ["RunInstances"] } })),
    ));
    statements.push(statement(
        "ReadTheAmazonLinuxImageParameters",
        // The lease's scope lists ssm:GetParameter once; here it reads AWS's image names.
        vec!["ssm:GetParameter"],
        vec!["arn:aws:ssm:*::parameter/aws/service/ami-amazon-linux-latest/*".to_owned()],
        None,
    ));

    json!({ "Version": "2012-10-17", "Statement": statements })
}

pub fn run(context: &Context) -> Result<(), CliError> {
    let document = serde_json::to_string_pretty(&policy_document()).expect("a JSON value prints");
    context
        .output
        .text(&format!("{document}\n"))
        .map_err(CliError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_list_is_sorted_and_has_no_duplicates() {
        let actions: Vec<&str> = PERMISSIONS.iter().map(|(a, _)| *a).collect();
        let mut sorted = actions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(actions, sorted);
    }

    #[test]
    fn every_action_is_in_some_statement_and_nothing_else_is() {
        let document = policy_document();
        let mut granted: Vec<String> = document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().clone())
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        granted.sort();
        granted.dedup();
        let listed: Vec<String> = PERMISSIONS.iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(granted, listed);
        for statement in document["Statement"].as_array().unwrap() {
            assert!(
                !statement["Action"].as_array().unwrap().is_empty(),
                "{statement}"
            );
        }
    }

    #[test]
    fn deletes_and_pass_role_are_conditioned() {
        let document = policy_document();
        let statements = document["Statement"].as_array().unwrap();
        let with = |action: &str| -> Vec<&Value> {
            statements
                .iter()
                .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
                .collect()
        };
        for delete in [
            "ec2:DeleteVpc",
            "ec2:DeleteNatGateway",
            "ec2:ReleaseAddress",
        ] {
            for s in with(delete) {
                assert_eq!(
                    s["Condition"]["Null"]["aws:ResourceTag/fixedip:stack"], "false",
                    "{delete}"
                );
            }
        }
        let pass = with("iam:PassRole");
        assert_eq!(pass.len(), 2);
        assert_eq!(pass[0]["Resource"], "arn:aws:iam::*:role/fixedip-*");
        assert_eq!(
            pass[0]["Condition"]["StringEquals"]["iam:PassedToService"],
            "lambda.amazonaws.com"
        );
        // The NAT instances' role, to EC2 alone.
        assert_eq!(pass[1]["Resource"], "arn:aws:iam::*:role/fixedip-*-nat");
        assert_eq!(
            pass[1]["Condition"]["StringEquals"]["iam:PassedToService"],
            "ec2.amazonaws.com"
        );
        // The lease is the only thing in Parameter Store the tool may touch.
        for s in with("ssm:PutParameter") {
            assert_eq!(s["Resource"], "arn:aws:ssm:*:*:parameter/fixedip/*");
        }
        // Describe* only where AWS offers no resource-level permissions.
        for s in with("ec2:DescribeVpcs") {
            assert_eq!(s["Resource"], "*");
        }
    }
}
