//! Taking a stack apart: the slots a smaller `azs` leaves behind, and `destroy`.
//!
//! Both remove in the order AWS accepts: functions out of the private subnets first; then the
//! NAT gateways, waited for until `deleted` (only then is an Elastic IP free and a public subnet
//! deletable); then the addresses, kept as retained (or, for `destroy --release-ips`, released,
//! except adopted ones); Lambda's lingering network interfaces waited out before their subnet or
//! security group goes; subnets; route tables; the security group; the internet gateway,
//! detached and deleted; the VPC; the stack's own role, last, when nothing that stays uses it.
//! Every id comes from the observation, so a run killed part way is finished by planning again:
//! what is gone gets no step.

use std::collections::{BTreeMap, BTreeSet};

use super::{surplus_view, Inventory, PlanError, PlanOptions, Planner};
use crate::observed::{
    AddressUse, ObservedFunction, ObservedNatGateway, ObservedState, Slot, Tier,
};
use crate::plan::{Action, InterfaceHolder, NetworkView, Plan, StackSpec, Status, StepId};

/// What removing a slot's network did, for the steps that must follow it.
pub(super) struct SlotTeardown {
    /// The DeleteNatGateway step of each NAT gateway, by id.
    pub nat_gateways_deleted: BTreeMap<String, StepId>,
    /// The DeleteSubnet and DeleteRouteTable steps.
    pub network_deleted: Vec<StepId>,
    /// The TerminateNatInstance steps: the addresses they held are free after them.
    pub instances_terminated: Vec<StepId>,
}

impl Planner {
    /// Removes a slot's NAT gateways, subnets and private route tables, once `functions_off`
    /// (the steps that take functions out of its private subnet) are done. Its addresses are the
    /// caller's to keep or release, after `nat_gateways_deleted`.
    pub(super) fn remove_slot(
        &mut self,
        slot: Slot,
        inventory: &Inventory,
        functions_off: &[StepId],
    ) -> SlotTeardown {
        // Failed ones too: AWS would delete them in time, but the stack is not gone until they are.
        let mut nats: Vec<&ObservedNatGateway> = inventory
            .live_nats
            .iter()
            .chain(&inventory.deleting_nats)
            .chain(&inventory.failed_nats)
            .copied()
            .filter(|nat| nat.slot == slot)
            .collect();
        nats.sort_by(|a, b| a.id.cmp(&b.id));
        let mut nat_gateways_deleted = BTreeMap::new();
        for nat in &nats {
            let action = Action::DeleteNatGateway {
                nat_gateway: nat.id.clone(),
            };
            nat_gateways_deleted.insert(nat.id.clone(), self.push(action, functions_off));
        }

        let instances = self.terminate_instances_of_slot(slot, inventory, functions_off);

        let mut subnets_deleted: BTreeMap<&str, StepId> = BTreeMap::new();
        for subnet in inventory.subnets.iter().filter(|s| s.slot == slot) {
            // A NAT's network interface goes with the NAT; a function's lingers after it left.
            let mut ordering: Vec<StepId> = nats
                .iter()
                .filter(|nat| nat.subnet_id == subnet.id)
                .map(|nat| nat_gateways_deleted[&nat.id])
                .chain(
                    instances
                        .iter()
                        .filter(|(subnet_id, _)| *subnet_id == subnet.id)
                        .map(|(_, step)| *step),
                )
                .collect();
            if subnet.tier == Tier::Private {
                let action = Action::ClearLambdaInterfaces {
                    holder: InterfaceHolder::Subnet(subnet.id.clone()),
                };
                ordering.push(self.push(action, functions_off));
            }
            let action = Action::DeleteSubnet {
                subnet: subnet.id.clone(),
            };
            subnets_deleted.insert(&subnet.id, self.push(action, &ordering));
        }

        let mut network_deleted: Vec<StepId> = subnets_deleted.values().copied().collect();
        let tables = inventory
            .route_tables
            .iter()
            .filter(|t| t.tier == Tier::Private && t.slot == Some(slot));
        for table in tables {
            // Its subnets go first, and their associations with them; the executor disassociates
            // whatever is left. A table with no subnet of the slot waits for the functions only.
            let mut ordering: Vec<StepId> = table
                .associated_subnets
                .iter()
                .filter_map(|s| subnets_deleted.get(s.as_str()).copied())
                .collect();
            if ordering.is_empty() {
                ordering = functions_off.to_vec();
            }
            let action = Action::DeleteRouteTable {
                route_table: table.id.clone(),
            };
            network_deleted.push(self.push(action, &ordering));
        }
        SlotTeardown {
            nat_gateways_deleted,
            network_deleted,
            instances_terminated: instances.into_iter().map(|(_, step)| step).collect(),
        }
    }
}

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
    let stack = spec.stack.as_str();
    let stack_subnets: BTreeSet<&str> = inventory.subnets.iter().map(|s| s.id.as_str()).collect();
    let security_group = observed.security_group.as_ref().map(|g| g.id.as_str());
    let attached = |f: &ObservedFunction| {
        f.subnet_ids
            .iter()
            .any(|s| stack_subnets.contains(s.as_str()))
            || security_group.is_some_and(|g| f.security_group_ids.iter().any(|x| x == g))
    };
    let mine = |f: &ObservedFunction| spec.functions.iter().any(|m| m.name == f.name);
    let mut functions: Vec<&ObservedFunction> = observed
        .functions
        .iter()
        .filter(|f| f.stack_tag.as_deref() == Some(stack) || attached(f))
        .collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    functions.dedup_by(|a, b| a.name == b.name);

    // Refuse before any step: nothing is changed by a destroy that cannot finish.
    let others: Vec<String> = functions
        .iter()
        .filter(|f| !mine(f) && attached(f))
        .map(|f| f.name.clone())
        .collect();
    if !others.is_empty() && !options.force_detach_others {
        return Err(PlanError::OtherFunctionsAttached {
            stack: spec.stack.clone(),
            functions: others,
        });
    }
    let nat_holding = |allocation_id: &str| {
        inventory
            .live_nats
            .iter()
            .chain(&inventory.deleting_nats)
            .any(|nat| nat.allocation_ids.iter().any(|id| id == allocation_id))
    };
    // An address on one of the stack's NAT instances is freed by its termination.
    let on_instance = |address: &crate::observed::ObservedAddress| {
        inventory.all_instances.iter().any(|i| {
            i.network_interface_id.is_some()
                && i.network_interface_id == address.network_interface_id
        })
    };
    let releases = |adopted: bool| options.release_ips && !adopted;
    for address in &inventory.addresses {
        if let (true, Some(association)) = (releases(address.adopted), &address.association_id) {
            if !nat_holding(&address.allocation_id) && !on_instance(address) {
                return Err(PlanError::ReleaseOfAddressInUse {
                    allocation_id: address.allocation_id.clone(),
                    association: association.clone(),
                });
            }
        }
    }
    let vpc_id = observed.vpc.as_ref().map(|v| v.id.as_str());
    if let Some(gateway) = &observed.internet_gateway {
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

    let mut planner = Planner::default();
    let mut functions_off = Vec::new();
    let mut deleted_functions = BTreeSet::new();
    let mut function_views = Vec::new();
    for function in &functions {
        let tagged = function.stack_tag.as_deref() == Some(stack);
        let status = if mine(function) && options.delete_functions && tagged {
            let action = Action::DeleteFunction {
                name: function.name.clone(),
            };
            functions_off.push(planner.push(action, &[]));
            deleted_functions.insert(function.name.as_str());
            Status::Delete(function.arn.clone())
        } else if attached(function) {
            let action = Action::DetachFunction {
                name: function.name.clone(),
            };
            functions_off.push(planner.push(action, &[]));
            planner.notes.push(format!(
                "the function {} stays, outside the VPC: its traffic no longer leaves through the stack's IPs{}",
                function.name,
                if mine(function) { "; `--delete-function` deletes it" } else { "" }
            ));
            Status::Change(function.arn.clone())
        } else {
            Status::Keep(function.arn.clone())
        };
        function_views.push((function.name.clone(), status));
    }

    // Endpoints first: their routes and network interfaces sit in the route tables, subnets and
    // security groups that go next (AWS refuses to delete those, and the VPC, before them).
    let endpoints = planner.remove_endpoints(observed, &functions_off);
    let endpoints_off: Vec<StepId> = functions_off
        .iter()
        .chain(&endpoints.steps)
        .copied()
        .collect();

    let slots: BTreeSet<Slot> = inventory
        .subnets
        .iter()
        .map(|s| s.slot)
        .chain(inventory.live_nats.iter().map(|n| n.slot))
        .chain(inventory.deleting_nats.iter().map(|n| n.slot))
        .chain(inventory.failed_nats.iter().map(|n| n.slot))
        .chain(inventory.private_route_tables.keys().copied())
        .chain(inventory.all_instances.iter().map(|i| i.slot))
        .collect();
    let mut nat_gateways_deleted = BTreeMap::new();
    let mut network_deleted = Vec::new();
    let mut instances_terminated = Vec::new();
    for &slot in &slots {
        let teardown = planner.remove_slot(slot, &inventory, &endpoints_off);
        nat_gateways_deleted.extend(teardown.nat_gateways_deleted);
        network_deleted.extend(teardown.network_deleted);
        instances_terminated.extend(teardown.instances_terminated);
    }

    let mut retained_addresses = Vec::new();
    let mut released_addresses = Vec::new();
    for address in &inventory.addresses {
        // Only once the NAT that holds it is deleted: AWS refuses to release it before.
        let freed: Vec<StepId> = nat_gateways_deleted
            .iter()
            .filter(|(id, _)| {
                let nat = inventory.live_nats.iter().chain(&inventory.deleting_nats);
                nat.filter(|n| n.id == **id)
                    .any(|n| n.allocation_ids.contains(&address.allocation_id))
            })
            .map(|(_, step)| *step)
            .chain(instances_terminated.iter().copied())
            .collect();
        let id = address.allocation_id.clone();
        if releases(address.adopted) {
            planner.push(Action::ReleaseAddress { allocation_id: id }, &freed);
            released_addresses.push((address.allocation_id.clone(), address.public_ip));
        } else {
            if address.usage != AddressUse::Retained {
                planner.push(Action::RetainAddress { allocation_id: id }, &freed);
            }
            retained_addresses.push((address.allocation_id.clone(), address.public_ip));
        }
    }
    if options.release_ips && !retained_addresses.is_empty() {
        let kept: Vec<&str> = retained_addresses.iter().map(|a| a.0.as_str()).collect();
        planner.notes.push(format!(
            "adopted Elastic IPs are the user's and are never released: {} stay{}, marked retained",
            kept.join(", "),
            if kept.len() == 1 { "s" } else { "" }
        ));
    }

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
        let action = Action::DeleteRouteTable {
            route_table: table.id.clone(),
        };
        network_deleted.push(planner.push(action, &subnets_gone));
        if table.tier == Tier::Public && public_route_table == Status::Absent {
            public_route_table = Status::Delete(table.id.clone());
        }
    }

    let security_group_status = match security_group {
        Some(id) => {
            let holder = InterfaceHolder::SecurityGroup(id.to_owned());
            let cleared = planner.push(Action::ClearLambdaInterfaces { holder }, &functions_off);
            let action = Action::DeleteSecurityGroup {
                security_group: id.to_owned(),
            };
            // The endpoints' group admits this one: AWS refuses to delete a referenced group.
            let ordering: Vec<StepId> = [cleared]
                .into_iter()
                .chain(endpoints.security_group_deleted)
                .collect();
            network_deleted.push(planner.push(action, &ordering));
            Status::Delete(id.to_owned())
        }
        None => Status::Absent,
    };
    let nat_security_group = observed.nat_security_group.as_ref().map(|group| {
        let action = Action::DeleteSecurityGroup {
            security_group: group.id.clone(),
        };
        network_deleted.push(planner.push(action, &instances_terminated));
        Status::Delete(group.id.clone())
    });
    let internet_gateway = match &observed.internet_gateway {
        Some(gateway) => {
            // AWS refuses to detach it while the VPC maps public IPs: the NATs' addresses.
            let nats: Vec<StepId> = nat_gateways_deleted
                .values()
                .chain(&instances_terminated)
                .copied()
                .collect();
            let action = Action::DeleteInternetGateway {
                internet_gateway: gateway.id.clone(),
                vpc: gateway.attached_vpc.clone(),
            };
            network_deleted.push(planner.push(action, &nats));
            Status::Delete(gateway.id.clone())
        }
        None => Status::Absent,
    };
    // Duplicates left by a create sent twice (see duplicates.rs) go too; attached nowhere, they
    // wait for nothing.
    for gateway in &observed.extra_internet_gateways {
        if gateway.attached_vpc.is_none() {
            let action = Action::DeleteInternetGateway {
                internet_gateway: gateway.id.clone(),
                vpc: None,
            };
            network_deleted.push(planner.push(action, &[]));
        }
    }
    let vpc = match &observed.vpc {
        Some(vpc) => {
            let action = Action::DeleteVpc {
                vpc: vpc.id.clone(),
            };
            planner.push(action, &network_deleted);
            (vpc.cidr, Status::Delete(vpc.id.clone()))
        }
        None => (spec.vpc_cidr, Status::Absent),
    };

    let role = observed.role.as_ref().map(|role| {
        let users: Vec<&str> = observed
            .functions
            .iter()
            .filter(|f| f.role_arn == role.arn && !deleted_functions.contains(f.name.as_str()))
            .map(|f| f.name.as_str())
            .collect();
        if users.is_empty() {
            let deletions: Vec<StepId> = functions_off
                .iter()
                .copied()
                .filter(|step| {
                    matches!(planner.steps[step.0].action, Action::DeleteFunction { .. })
                })
                .collect();
            let action = Action::DeleteRole {
                role: role.arn.clone(),
                policy_arns: role.attached_policy_arns.clone(),
            };
            planner.push(action, &deletions);
            Status::Delete(role.arn.clone())
        } else {
            planner.notes.push(format!(
                "the stack's role {} stays: {} still use{} it",
                role.name,
                users.join(", "),
                if users.len() == 1 { "s" } else { "" }
            ));
            Status::Keep(role.arn.clone())
        }
    });

    let removed_slots = surplus_view(&slots.iter().copied().collect::<Vec<_>>(), &inventory);
    let Planner { steps, notes, .. } = planner;
    Ok(Plan {
        stack: spec.stack.clone(),
        region: spec.region.clone(),
        network: NetworkView {
            vpc,
            internet_gateway,
            public_route_table,
            security_group: security_group_status,
            role,
            azs: Vec::new(),
            functions: function_views,
            retained_addresses,
            surplus_slots: Vec::new(),
            removed_slots,
            released_addresses,
            nat_instance_type: None,
            nat_security_group,
            existing: None,
            endpoints: endpoints.views,
            endpoint_security_group: endpoints.security_group,
        },
        steps,
        notes,
        pending_new_ips: Vec::new(),
    })
}
