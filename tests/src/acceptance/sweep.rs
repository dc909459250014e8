//! The sweeper: removes everything a run (or every run) of the suite left in the account, found by
//! its run tag (`fixedip-acceptance=<run>`, or fixedip's `fixedip:stack=fixedip-acc-<run>`), the
//! released-or-not Elastic IPs included: they are the suite's own, never a partner's. Nothing
//! without that tag is touched, with one exception that belongs to the run by construction: the
//! stack's lease parameter (`/fixedip/fixedip-acc-<run>/lease`, named after the stack).
//!
//! Straight AWS SDK calls, not `cargo fixedip destroy`: a sweeper that relied on the code under test
//! would leave a bill exactly when that code is broken. The order is AWS's dependency order:
//! functions, instances, NAT gateways and endpoints (waited out), addresses, internet gateways,
//! subnets (once Lambda has taken its interfaces), route tables, security groups, VPCs, roles, the
//! lease.

use std::future::Future;
use std::time::{Duration, Instant};

use super::retry::{patiently, NOT_YET};
use super::{Runs, Target};

/// What a sweep removed, and what it could not (with AWS's words).
#[derive(Debug, Default, Clone)]
pub struct Swept {
    pub removed: Vec<String>,
    pub errors: Vec<String>,
}

impl Swept {
    fn note(&mut self, what: String, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.removed.push(what),
            Err(e) => self.errors.push(e),
        }
    }
}

fn pairs(tags: &[aws_sdk_ec2::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}

fn said<E: std::error::Error + 'static>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {}", cargo_fixedip::aws::error_chain(&e))
}

/// Sweeps `runs` on `target`, waiting up to `budget` for what AWS removes slowly (NAT gateways,
/// Lambda's interfaces: up to 45 minutes on AWS).
pub async fn sweep(target: &Target, runs: &Runs, budget: Duration) -> Swept {
    let config = target.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut swept = Swept::default();
    if let Err(e) = functions(&aws_sdk_lambda::Client::new(&config), runs, &mut swept).await {
        swept.errors.push(e);
    }
    if let Err(e) = network(&ec2, runs, budget, &mut swept).await {
        swept.errors.push(e);
    }
    if let Err(e) = roles(&aws_sdk_iam::Client::new(&config), runs, &mut swept).await {
        swept.errors.push(e);
    }
    if let Err(e) = leases(&aws_sdk_ssm::Client::new(&config), runs, &mut swept).await {
        swept.errors.push(e);
    }
    swept
}

async fn functions(
    lambda: &aws_sdk_lambda::Client,
    runs: &Runs,
    swept: &mut Swept,
) -> Result<(), String> {
    let mut pages = lambda.list_functions().into_paginator().send();
    let mut owned = Vec::new();
    while let Some(page) = pages.next().await {
        for function in page.map_err(said("ListFunctions"))?.functions() {
            let (Some(name), Some(arn)) = (function.function_name(), function.function_arn())
            else {
                continue;
            };
            let tags = lambda.list_tags().resource(arn).send().await;
            let tags = tags.map_err(said("ListTags"))?;
            let tags = tags.tags().cloned().unwrap_or_default();
            if runs.owns(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                owned.push(name.to_owned());
            }
        }
    }
    for name in owned {
        let deleted = lambda.delete_function().function_name(&name).send().await;
        swept.note(
            format!("function {name}"),
            deleted.map(drop).map_err(said("DeleteFunction")),
        );
    }
    Ok(())
}

async fn network(
    ec2: &aws_sdk_ec2::Client,
    runs: &Runs,
    budget: Duration,
    swept: &mut Swept,
) -> Result<(), String> {
    let started = Instant::now();
    let instances = live_instances(ec2, runs).await?;
    if !instances.is_empty() {
        let terminated = ec2
            .terminate_instances()
            .set_instance_ids(Some(instances.clone()))
            .send()
            .await;
        for id in instances {
            let outcome = terminated
                .as_ref()
                .map(drop)
                .map_err(|e| format!("TerminateInstances: {e}"));
            swept.note(format!("instance {id}"), outcome);
        }
    }
    for nat in live_nat_gateways(ec2, runs).await? {
        let deleted = ec2.delete_nat_gateway().nat_gateway_id(&nat).send().await;
        swept.note(
            format!("NAT gateway {nat}"),
            deleted.map(drop).map_err(said("DeleteNatGateway")),
        );
    }
    let endpoints = ec2.describe_vpc_endpoints().send().await;
    for endpoint in endpoints
        .map_err(said("DescribeVpcEndpoints"))?
        .vpc_endpoints()
    {
        let gone = endpoint
            .state()
            .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"));
        if gone || !runs.owns(pairs(endpoint.tags())) {
            continue;
        }
        let id = endpoint.vpc_endpoint_id().unwrap_or_default();
        let deleted = ec2.delete_vpc_endpoints().vpc_endpoint_ids(id).send().await;
        swept.note(
            format!("endpoint {id}"),
            deleted.map(drop).map_err(said("DeleteVpcEndpoints")),
        );
    }
    // Addresses are free, and subnets empty, only once these are gone.
    let left = remaining(budget, started);
    until_none("NAT gateways deleted", left, || {
        live_nat_gateways(ec2, runs)
    })
    .await?;
    until_none("instances terminated", left, || live_instances(ec2, runs)).await?;
    addresses(ec2, runs, remaining(budget, started), swept).await?;
    containers(ec2, runs, remaining(budget, started), swept).await
}

fn remaining(budget: Duration, started: Instant) -> Duration {
    budget
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(30))
}

/// Polls `list` until it is empty, or fails after `budget` naming what is left.
async fn until_none<F, Fut>(what: &str, budget: Duration, mut list: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<String>, String>>,
{
    let started = Instant::now();
    loop {
        let left = list().await?;
        if left.is_empty() {
            return Ok(());
        }
        if started.elapsed() > budget {
            return Err(format!("{what}: still there after {budget:?}: {left:?}"));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn live_instances(ec2: &aws_sdk_ec2::Client, runs: &Runs) -> Result<Vec<String>, String> {
    let answer = ec2.describe_instances().send().await;
    let answer = answer.map_err(said("DescribeInstances"))?;
    let instances = answer.reservations().iter().flat_map(|r| r.instances());
    Ok(instances
        .filter(|i| runs.owns(pairs(i.tags())))
        .filter(|i| {
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned());
            !matches!(state.as_deref(), Some("terminated"))
        })
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}

async fn live_nat_gateways(ec2: &aws_sdk_ec2::Client, runs: &Runs) -> Result<Vec<String>, String> {
    let answer = ec2.describe_nat_gateways().send().await;
    let answer = answer.map_err(said("DescribeNatGateways"))?;
    Ok(answer
        .nat_gateways()
        .iter()
        .filter(|n| runs.owns(pairs(n.tags())))
        .filter(|n| !matches!(n.state().map(|s| s.as_str()), Some("deleted" | "failed")))
        .filter_map(|n| n.nat_gateway_id().map(str::to_owned))
        .collect())
}

async fn addresses(
    ec2: &aws_sdk_ec2::Client,
    runs: &Runs,
    budget: Duration,
    swept: &mut Swept,
) -> Result<(), String> {
    let answer = ec2.describe_addresses().send().await;
    for address in answer.map_err(said("DescribeAddresses"))?.addresses() {
        if !runs.owns(pairs(address.tags())) {
            continue;
        }
        let (Some(allocation), ip) = (
            address.allocation_id(),
            address.public_ip().unwrap_or_default(),
        ) else {
            continue;
        };
        if let Some(association) = address.association_id() {
            let _ = ec2
                .disassociate_address()
                .association_id(association)
                .send()
                .await;
        }
        let released = patiently(&format!("ReleaseAddress {ip}"), budget, &NOT_YET, || {
            ec2.release_address().allocation_id(allocation).send()
        })
        .await;
        swept.note(
            format!("Elastic IP {ip} ({allocation})"),
            released.map(drop),
        );
    }
    Ok(())
}

/// Deletes every one of `ids` with `delete`, in passes: what AWS refuses for now (a dependency
/// not gone yet) is tried again in the next pass, until `budget` is spent.
async fn delete_in_passes<F, Fut, E>(
    kind: &str,
    ids: Vec<String>,
    budget: Duration,
    swept: &mut Swept,
    mut delete: F,
) where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let started = Instant::now();
    let mut left = ids;
    let mut pause = Duration::from_secs(1);
    while !left.is_empty() {
        let mut refused = Vec::new();
        for id in std::mem::take(&mut left) {
            match delete(id.clone()).await {
                Ok(()) => swept.removed.push(format!("{kind} {id}")),
                Err(e) if e.code().is_some_and(|c| c.contains("NotFound")) => {}
                Err(e) => refused.push((id, e)),
            }
        }
        let again = refused.iter().all(|(_, e)| {
            let code = e.code().unwrap_or_default();
            NOT_YET.iter().any(|c| code.contains(c))
        });
        if refused.is_empty() || !again || started.elapsed() + pause > budget {
            for (id, e) in refused {
                let code = e.code().unwrap_or_default().to_owned();
                let message = e.message().unwrap_or_default().to_owned();
                swept.errors.push(format!("{kind} {id}: {code} {message}"));
            }
            return;
        }
        left = refused.into_iter().map(|(id, _)| id).collect();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Internet gateways, Lambda's leftover interfaces, subnets, route tables, security groups, VPCs.
async fn containers(
    ec2: &aws_sdk_ec2::Client,
    runs: &Runs,
    budget: Duration,
    swept: &mut Swept,
) -> Result<(), String> {
    let gateways = ec2.describe_internet_gateways().send().await;
    for gateway in gateways
        .map_err(said("DescribeInternetGateways"))?
        .internet_gateways()
    {
        if !runs.owns(pairs(gateway.tags())) {
            continue;
        }
        let id = gateway.internet_gateway_id().unwrap_or_default();
        for vpc in gateway.attachments().iter().filter_map(|a| a.vpc_id()) {
            let detach = ec2
                .detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(vpc);
            let _ = detach.send().await;
        }
        let deleted = ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await;
        swept.note(
            format!("internet gateway {id}"),
            deleted.map(drop).map_err(said("DeleteInternetGateway")),
        );
    }
    let subnets = ec2.describe_subnets().send().await;
    let subnets: Vec<String> = subnets
        .map_err(said("DescribeSubnets"))?
        .subnets()
        .iter()
        .filter(|s| runs.owns(pairs(s.tags())))
        .filter_map(|s| s.subnet_id().map(str::to_owned))
        .collect();
    // Lambda deletes its interfaces itself, late (up to 45 minutes on AWS): the subnets' passes
    // wait for them rather than delete what carries no run tag.
    delete_in_passes("subnet", subnets, budget, swept, |id| async move {
        ec2.delete_subnet().subnet_id(id).send().await.map(drop)
    })
    .await;
    let tables = ec2.describe_route_tables().send().await;
    let mut owned_tables = Vec::new();
    for table in tables.map_err(said("DescribeRouteTables"))?.route_tables() {
        if !runs.owns(pairs(table.tags())) {
            continue;
        }
        for association in table
            .associations()
            .iter()
            .filter(|a| a.main() != Some(true))
        {
            if let Some(id) = association.route_table_association_id() {
                let _ = ec2
                    .disassociate_route_table()
                    .association_id(id)
                    .send()
                    .await;
            }
        }
        owned_tables.extend(table.route_table_id().map(str::to_owned));
    }
    delete_in_passes(
        "route table",
        owned_tables,
        budget,
        swept,
        |id| async move {
            ec2.delete_route_table()
                .route_table_id(id)
                .send()
                .await
                .map(drop)
        },
    )
    .await;
    let groups = ec2.describe_security_groups().send().await;
    let groups: Vec<String> = groups
        .map_err(said("DescribeSecurityGroups"))?
        .security_groups()
        .iter()
        .filter(|g| runs.owns(pairs(g.tags())) && g.group_name() != Some("default"))
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    delete_in_passes("security group", groups, budget, swept, |id| async move {
        ec2.delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(drop)
    })
    .await;
    let vpcs = ec2.describe_vpcs().send().await;
    let vpcs: Vec<String> = vpcs
        .map_err(said("DescribeVpcs"))?
        .vpcs()
        .iter()
        .filter(|v| runs.owns(pairs(v.tags())))
        .filter_map(|v| v.vpc_id().map(str::to_owned))
        .collect();
    delete_in_passes("VPC", vpcs, budget, swept, |id| async move {
        ec2.delete_vpc().vpc_id(id).send().await.map(drop)
    })
    .await;
    Ok(())
}

/// The stacks' execution roles, `fixedip-fixedip-acc-<run>-<region>-lambda`, checked by their
/// tags: their policies detached, then deleted.
async fn roles(iam: &aws_sdk_iam::Client, runs: &Runs, swept: &mut Swept) -> Result<(), String> {
    let mut pages = iam.list_roles().into_paginator().send();
    let mut owned = Vec::new();
    while let Some(page) = pages.next().await {
        for role in page.map_err(said("ListRoles"))?.roles() {
            let name = role.role_name();
            if !name.starts_with(&format!("fixedip-{}", super::STACK_PREFIX)) {
                continue;
            }
            let tags = iam.list_role_tags().role_name(name).send().await;
            let tags = tags.map_err(said("ListRoleTags"))?;
            if runs.owns(tags.tags().iter().map(|t| (t.key(), t.value()))) {
                owned.push(name.to_owned());
            }
        }
    }
    for name in owned {
        let attached = iam
            .list_attached_role_policies()
            .role_name(&name)
            .send()
            .await;
        for policy in attached
            .map_err(said("ListAttachedRolePolicies"))?
            .attached_policies()
        {
            if let Some(arn) = policy.policy_arn() {
                let detached = iam
                    .detach_role_policy()
                    .role_name(&name)
                    .policy_arn(arn)
                    .send()
                    .await;
                detached.map_err(said("DetachRolePolicy"))?;
            }
        }
        let inline = iam.list_role_policies().role_name(&name).send().await;
        for policy in inline.map_err(said("ListRolePolicies"))?.policy_names() {
            let deleted = iam
                .delete_role_policy()
                .role_name(&name)
                .policy_name(policy)
                .send()
                .await;
            deleted.map_err(said("DeleteRolePolicy"))?;
        }
        let deleted = iam.delete_role().role_name(&name).send().await;
        swept.note(
            format!("role {name}"),
            deleted.map(drop).map_err(said("DeleteRole")),
        );
    }
    Ok(())
}

/// The stacks' leases (`/fixedip/<stack>/lease`): a killed run holds its stack's for ten minutes.
async fn leases(ssm: &aws_sdk_ssm::Client, runs: &Runs, swept: &mut Swept) -> Result<(), String> {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Name")
        .option("BeginsWith")
        .values(format!("/fixedip/{}", super::STACK_PREFIX))
        .build()
        .map_err(|e| format!("a parameter filter: {e}"))?;
    let mut pages = ssm
        .describe_parameters()
        .parameter_filters(filter)
        .into_paginator()
        .send();
    let mut owned = Vec::new();
    while let Some(page) = pages.next().await {
        for parameter in page.map_err(said("DescribeParameters"))?.parameters() {
            let name = parameter.name().unwrap_or_default();
            let stack = name
                .strip_prefix("/fixedip/")
                .and_then(|n| n.strip_suffix("/lease"));
            if stack.is_some_and(|s| runs.owns_stack(s)) {
                owned.push(name.to_owned());
            }
        }
    }
    for name in owned {
        let deleted = ssm.delete_parameter().name(&name).send().await;
        swept.note(
            format!("lease {name}"),
            deleted.map(drop).map_err(said("DeleteParameter")),
        );
    }
    Ok(())
}
