//! `destroy`: the whole stack taken apart, in the order `teardown.rs` describes, keeping its
//! Elastic IPs unless `--release-ips`.

use std::collections::{BTreeMap, BTreeSet};

use super::endpoints::RemovedEndpoints;
use super::inventory::Inventory;
use super::slots::surplus_view;
use super::steps::Planner;
use super::{PlanError, PlanOptions};
use crate::observed::{AddressUse, ObservedAddress, ObservedFunction, ObservedState, Slot, Tier};
use crate::plan::{Action, InterfaceHolder, NetworkView, Plan, StackSpec, Status, StepId};

/// Plan the teardown of `spec`'s stack: every resource the stack's tags lead to, in an order AWS
/// accepts, so that applying it leaves nothing of the stack but the Elastic IPs it keeps.
///
/// - Functions: those `spec` deploys are taken out of the VPC, or deleted with
///   `delete_functions` (only when tagged with the stack). Functions of other packages still
///   attached make the plan refuse, naming them, unless `force_detach_others`: then they are
///   taken out of the VPC, never deleted.
/// - Elastic IPs are kept, re-tagged `retained`, so that the next deploy of the stack uses the same
///   IPs; with `release_ips` they are released, except adopted ones (`fixedip:adopted=true`,
///   or named in `ips`): those are the user's and are only marked retained, so that a later
///   deploy naming them finds them again and `ips` still lists them.
/// - The stack's role goes last, unless a function that stays uses it.
pub fn plan_destroy(
    spec: &StackSpec,
    observed: &ObservedState,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let inventory = Inventory::new(observed);
    let teardown = Teardown {
        spec,
        observed,
        inventory: &inventory,
        options,
    };
    // Refuse before any step: nothing is changed by a destroy that cannot finish.
    teardown.refuse()?;

    let mut planner = Planner::default();
    let functions = teardown.functions(&mut planner);
    // Endpoints first: their routes and network interfaces sit in the route tables, subnets and
    // security groups that go next (AWS refuses to delete those, and the VPC, before them).
    let endpoints = planner.remove_endpoints(observed, &functions.off);
    let endpoints_off: Vec<StepId> = functions
        .off
        .iter()
        .chain(&endpoints.steps)
        .copied()
        .collect();
    let slots = teardown.slots();
    let mut removed = Removed::default();
    for &slot in &slots {
        let slot = planner.remove_slot(slot, &inventory, (&endpoints_off, &[]));
        removed
            .nats_deleted
            .extend(slot.nat_gateways_deleted.values());
        removed.addresses_freed.extend(slot.addresses_freed);
        removed.network_deleted.extend(slot.network_deleted);
        removed
            .instances_terminated
            .extend(slot.instances_terminated);
    }
    let (retained_addresses, released_addresses) = teardown.addresses(&mut planner, &removed);
    let rest = teardown.rest(&mut planner, &functions.off, &endpoints, removed);
    let role = teardown.role(&mut planner, &functions);
    let groups_gone = planner.steps_where(|a| matches!(a, Action::DeleteNatGroup { .. }));
    planner.remove_nat_profile(observed, &groups_gone);

    let removed_slots = surplus_view(&slots.iter().copied().collect::<Vec<_>>(), &inventory);
    let Planner { steps, notes, .. } = planner;
    Ok(Plan {
        stack: spec.stack.clone(),
        region: spec.region.clone(),
        network: NetworkView {
            vpc: rest.vpc,
            internet_gateway: rest.internet_gateway,
            public_route_table: rest.public_route_table,
            security_group: rest.security_group,
            role,
            azs: Vec::new(),
            functions: functions.views,
            retained_addresses,
            surplus_slots: Vec::new(),
            removed_slots,
            released_addresses,
            nat_instance_type: None,
            nat_self_healing: false,
            nat_security_group: rest.nat_security_group,
            existing: None,
            endpoints: endpoints.views,
            endpoint_security_group: endpoints.security_group,
        },
        steps,
        notes,
        pending_new_ips: Vec::new(),
    })
}

struct Teardown<'a> {
    spec: &'a StackSpec,
    observed: &'a ObservedState,
    inventory: &'a Inventory<'a>,
    options: &'a PlanOptions,
}

/// The functions' part of the teardown.
struct Functions {
    /// The steps that take the functions out of the VPC (or delete them).
    off: Vec<StepId>,
    /// The functions deleted, by name.
    deleted: BTreeSet<String>,
    views: Vec<(String, Status)>,
}

/// What the slots' teardown did, for the steps that follow it.
#[derive(Default)]
struct Removed {
    nats_deleted: Vec<StepId>,
    /// By NAT gateway id: the steps after which its addresses are free.
    addresses_freed: BTreeMap<String, Vec<StepId>>,
    network_deleted: Vec<StepId>,
    instances_terminated: Vec<StepId>,
}

/// The statuses of the stack-wide resources.
struct Rest {
    vpc: (ipnet::Ipv4Net, Status),
    internet_gateway: Status,
    public_route_table: Status,
    security_group: Status,
    nat_security_group: Option<Status>,
}

impl<'a> Teardown<'a> {
    fn stack_subnets(&self) -> BTreeSet<&'a str> {
        self.inventory
            .subnets
            .iter()
            .map(|s| s.id.as_str())
            .collect()
    }

    /// Whether a function sits in the stack's subnets or security group.
    fn attached(&self, function: &ObservedFunction) -> bool {
        let subnets = self.stack_subnets();
        let group = self.observed.security_group.as_ref().map(|g| g.id.as_str());
        function
            .subnet_ids
            .iter()
            .any(|s| subnets.contains(s.as_str()))
            || group.is_some_and(|g| function.security_group_ids.iter().any(|x| x == g))
    }

    fn mine(&self, function: &ObservedFunction) -> bool {
        self.spec.functions.iter().any(|m| m.name == function.name)
    }

    /// The functions of the stack (by tag) and those attached to it, by name.
    fn stack_functions(&self) -> Vec<&'a ObservedFunction> {
        let stack = self.spec.stack.as_str();
        let mut functions: Vec<&ObservedFunction> = self
            .observed
            .functions
            .iter()
            .filter(|f| f.stack_tag.as_deref() == Some(stack) || self.attached(f))
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        functions.dedup_by(|a, b| a.name == b.name);
        functions
    }

    fn releases(&self, address: &ObservedAddress) -> bool {
        self.options.release_ips && !address.adopted
    }

    /// The refusals: other packages' functions still attached, an address to release that
    /// something outside the stack holds, an internet gateway attached to another VPC.
    fn refuse(&self) -> Result<(), PlanError> {
        let others: Vec<String> = self
            .stack_functions()
            .into_iter()
            .filter(|f| !self.mine(f) && self.attached(f))
            .map(|f| f.name.clone())
            .collect();
        if !others.is_empty() && !self.options.force_detach_others {
            return Err(PlanError::OtherFunctionsAttached {
                stack: self.spec.stack.clone(),
                functions: others,
            });
        }
        let inventory = self.inventory;
        let nat_holding = |allocation_id: &str| {
            inventory
                .live_nats
                .iter()
                .chain(&inventory.deleting_nats)
                .any(|nat| nat.allocation_ids.iter().any(|id| id == allocation_id))
        };
        // An address on one of the stack's NAT instances is freed by its termination; a stale
        // association (its NAT is deleted) is removed before the release.
        let on_instance = |address: &ObservedAddress| {
            inventory.all_instances.iter().any(|i| {
                i.network_interface_id.is_some()
                    && i.network_interface_id == address.network_interface_id
            }) || inventory
                .nat_interfaces
                .iter()
                .any(|i| address.network_interface_id.as_deref() == Some(i.id.as_str()))
        };
        for address in &inventory.addresses {
            if let (true, Some(association)) = (self.releases(address), address.in_use()) {
                if !nat_holding(&address.allocation_id) && !on_instance(address) {
                    return Err(PlanError::ReleaseOfAddressInUse {
                        allocation_id: address.allocation_id.clone(),
                        association: association.to_owned(),
                    });
                }
            }
        }
        let vpc_id = self.observed.vpc.as_ref().map(|v| v.id.as_str());
        if let Some(gateway) = &self.observed.internet_gateway {
            if let Some(attached_vpc) = &gateway.attached_vpc {
                if Some(attached_vpc.as_str()) != vpc_id {
                    return Err(PlanError::InternetGatewayElsewhere {
                        id: gateway.id.clone(),
                        attached_vpc: attached_vpc.clone(),
                        vpc: vpc_id.unwrap_or("(none)").to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Each function of the stack deleted, taken out of the VPC, or kept.
    fn functions(&self, planner: &mut Planner) -> Functions {
        let stack = self.spec.stack.as_str();
        let mut functions = Functions {
            off: Vec::new(),
            deleted: BTreeSet::new(),
            views: Vec::new(),
        };
        for function in self.stack_functions() {
            let tagged = function.stack_tag.as_deref() == Some(stack);
            let status = if self.mine(function) && self.options.delete_functions && tagged {
                let action = Action::DeleteFunction {
                    name: function.name.clone(),
                };
                functions.off.push(planner.push(action, &[]));
                functions.deleted.insert(function.name.clone());
                Status::Delete(function.arn.clone())
            } else if self.attached(function) {
                let action = Action::DetachFunction {
                    name: function.name.clone(),
                };
                functions.off.push(planner.push(action, &[]));
                planner.notes.push(format!(
                    "the function {} stays, outside the VPC: its traffic no longer leaves through the stack's IPs{}",
                    function.name,
                    if self.mine(function) { "; `--delete-function` deletes it" } else { "" }
                ));
                Status::Change(function.arn.clone())
            } else {
                Status::Keep(function.arn.clone())
            };
            functions.views.push((function.name.clone(), status));
        }
        functions
    }

    /// Every slot something of the stack is in.
    fn slots(&self) -> BTreeSet<Slot> {
        let inventory = self.inventory;
        inventory
            .subnets
            .iter()
            .map(|s| s.slot)
            .chain(inventory.live_nats.iter().map(|n| n.slot))
            .chain(inventory.deleting_nats.iter().map(|n| n.slot))
            .chain(inventory.failed_nats.iter().map(|n| n.slot))
            .chain(inventory.private_route_tables.keys().copied())
            .chain(inventory.all_instances.iter().map(|i| i.slot))
            .chain(inventory.nat_groups.iter().map(|g| g.slot))
            .chain(inventory.nat_interfaces.iter().map(|i| i.slot))
            .chain(inventory.nat_launch_templates.iter().map(|t| t.slot))
            .collect()
    }

    /// Each address kept as retained or released, once the NAT that holds it is deleted and its
    /// association gone (AWS refuses to release it before). Returns the retained and the
    /// released addresses.
    #[allow(clippy::type_complexity)]
    fn addresses(
        &self,
        planner: &mut Planner,
        removed: &Removed,
    ) -> (
        Vec<(String, std::net::Ipv4Addr)>,
        Vec<(String, std::net::Ipv4Addr)>,
    ) {
        let inventory = self.inventory;
        let mut retained = Vec::new();
        let mut released = Vec::new();
        for address in &inventory.addresses {
            let mut freed: Vec<StepId> = removed
                .addresses_freed
                .iter()
                .filter(|(id, _)| {
                    let nat = inventory.live_nats.iter().chain(&inventory.deleting_nats);
                    nat.filter(|n| n.id == **id)
                        .any(|n| n.allocation_ids.contains(&address.allocation_id))
                })
                .flat_map(|(_, steps)| steps.iter().copied())
                .chain(removed.instances_terminated.iter().copied())
                .collect();
            freed.extend(planner.free_stale_association(address));
            let id = address.allocation_id.clone();
            if self.releases(address) {
                planner.push(Action::ReleaseAddress { allocation_id: id }, &freed);
                released.push((address.allocation_id.clone(), address.public_ip));
            } else {
                if address.usage != AddressUse::Retained {
                    let action = Action::RetainAddress {
                        allocation_id: id,
                        pending: address.usage == AddressUse::Pending,
                    };
                    planner.push(action, &freed);
                }
                retained.push((address.allocation_id.clone(), address.public_ip));
            }
        }
        if self.options.release_ips && !retained.is_empty() {
            let kept: Vec<&str> = retained.iter().map(|a| a.0.as_str()).collect();
            planner.notes.push(format!(
                "adopted Elastic IPs are the user's and are never released: {} stay{}, marked retained",
                kept.join(", "),
                if kept.len() == 1 { "s" } else { "" }
            ));
        }
        (retained, released)
    }

    /// The stack-wide network, once the slots are gone: the other route tables, the security
    /// groups, the internet gateway (and duplicates of it), the VPC last.
    fn rest(
        &self,
        planner: &mut Planner,
        functions_off: &[StepId],
        endpoints: &RemovedEndpoints,
        removed: Removed,
    ) -> Rest {
        let (observed, inventory) = (self.observed, self.inventory);
        let mut network_deleted = removed.network_deleted;
        let slot_tables: BTreeSet<&str> = inventory
            .route_tables
            .iter()
            .filter(|t| t.tier == Tier::Private && t.slot.is_some())
            .map(|t| t.id.as_str())
            .collect();
        network_deleted.extend(endpoints.steps.iter().copied());
        network_deleted.extend(endpoints.security_group_deleted);
        let subnets_gone = network_deleted.clone();
        let mut public_route_table = Status::Absent;
        for table in &inventory.route_tables {
            if slot_tables.contains(table.id.as_str()) {
                continue;
            }
            network_deleted.push(planner.delete_route_table(table, &subnets_gone));
            if table.tier == Tier::Public && public_route_table == Status::Absent {
                public_route_table = Status::Delete(table.id.clone());
            }
        }
        let security_group = match &observed.security_group {
            Some(group) => {
                let id = group.id.clone();
                let holder = InterfaceHolder::SecurityGroup(id.clone());
                let cleared = planner.push(Action::ClearLambdaInterfaces { holder }, functions_off);
                let action = Action::DeleteSecurityGroup {
                    security_group: id.clone(),
                };
                // The endpoints' group admits this one: AWS refuses to delete a referenced group.
                let ordering: Vec<StepId> = [cleared]
                    .into_iter()
                    .chain(endpoints.security_group_deleted)
                    .collect();
                network_deleted.push(planner.push(action, &ordering));
                Status::Delete(id)
            }
            None => Status::Absent,
        };
        let nat_security_group = observed.nat_security_group.as_ref().map(|group| {
            let action = Action::DeleteSecurityGroup {
                security_group: group.id.clone(),
            };
            network_deleted.push(planner.push(action, &removed.instances_terminated));
            Status::Delete(group.id.clone())
        });
        // AWS refuses to detach the gateway while the VPC maps public IPs: the NATs' addresses.
        let nats: Vec<StepId> = removed
            .nats_deleted
            .iter()
            .chain(&removed.instances_terminated)
            .copied()
            .collect();
        let internet_gateway = self.remove_internet_gateways(planner, &nats, &mut network_deleted);
        let vpc = match &observed.vpc {
            Some(vpc) => {
                let action = Action::DeleteVpc {
                    vpc: vpc.id.clone(),
                };
                planner.push(action, &network_deleted);
                (vpc.cidr, Status::Delete(vpc.id.clone()))
            }
            None => (self.spec.vpc_cidr, Status::Absent),
        };
        Rest {
            vpc,
            internet_gateway,
            public_route_table,
            security_group,
            nat_security_group,
        }
    }

    /// The internet gateway after the NATs, and duplicates left by a create sent twice (see
    /// duplicates.rs), attached nowhere, waiting for nothing.
    fn remove_internet_gateways(
        &self,
        planner: &mut Planner,
        nats: &[StepId],
        network_deleted: &mut Vec<StepId>,
    ) -> Status {
        let observed = self.observed;
        let status = match &observed.internet_gateway {
            Some(gateway) => {
                let action = Action::DeleteInternetGateway {
                    internet_gateway: gateway.id.clone(),
                    vpc: gateway.attached_vpc.clone(),
                };
                network_deleted.push(planner.push(action, nats));
                Status::Delete(gateway.id.clone())
            }
            None => Status::Absent,
        };
        for gateway in &observed.extra_internet_gateways {
            if gateway.attached_vpc.is_none() {
                let action = Action::DeleteInternetGateway {
                    internet_gateway: gateway.id.clone(),
                    vpc: None,
                };
                network_deleted.push(planner.push(action, &[]));
            }
        }
        status
    }

    /// The stack's role, last, unless a function that stays uses it.
    fn role(&self, planner: &mut Planner, functions: &Functions) -> Option<Status> {
        let observed = self.observed;
        let role = observed.role.as_ref()?;
        let users: Vec<&str> = observed
            .functions
            .iter()
            .filter(|f| f.role_arn == role.arn && !functions.deleted.contains(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        if !users.is_empty() {
            planner.notes.push(format!(
                "the stack's role {} stays: {} still use{} it",
                role.name,
                users.join(", "),
                if users.len() == 1 { "s" } else { "" }
            ));
            return Some(Status::Keep(role.arn.clone()));
        }
        // After Lambda's interfaces are gone too: Lambda deletes them with the function's role,
        // "Do not delete this role immediately after your Lambda function execution... If you do
        // delete the role immediately after function execution, you are responsible for deleting
        // the ENIs" (Lambda developer guide, VPC; aws-support-tools PR 174).
        let mut deletions: Vec<StepId> = functions
            .off
            .iter()
            .copied()
            .filter(|step| matches!(planner.steps[step.0].action, Action::DeleteFunction { .. }))
            .collect();
        deletions
            .extend(planner.steps_where(|a| matches!(a, Action::ClearLambdaInterfaces { .. })));
        deletions.sort();
        deletions.dedup();
        let action = Action::DeleteRole {
            role: role.arn.clone(),
            policy_arns: role.attached_policy_arns.clone(),
        };
        planner.push(action, &deletions);
        Some(Status::Delete(role.arn.clone()))
    }
}
