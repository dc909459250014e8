//! VPC endpoints: `endpoints = ["s3", "dynamodb", "logs", ...]`.
//!
//! - S3 and DynamoDB become **gateway endpoints**: one per service, on every private route table
//!   that routes out. AWS adds a route to the service's prefix list (`pl-...`) in each table, so
//!   that traffic to the service leaves through the endpoint: free, and no longer billed per GB
//!   by the NAT. Adding or removing an AZ modifies the endpoint's route tables. One per service
//!   rather than one per table: the quota is 20 gateway endpoints per region (L-1B52E74A).
//!   A stack made by an older fixedip, with one per slot, keeps one and deletes the others.
//! - Every other service becomes an **interface endpoint**: one per service, with network
//!   interfaces in every private subnet (one per AZ) and private DNS, so that the SDK's usual
//!   hostname resolves to it; billed per AZ per hour and per GB. Its security group (one for all
//!   of the stack's interface endpoints) admits TCP 443 from the functions' group. When `azs`
//!   changes, the endpoint's subnets are modified.
//!
//! Endpoints are found by their tags; one that is no longer listed is deleted (waited for until it
//! is gone). A slot that is removed loses its gateway endpoints and its subnet in the interface
//! endpoints before its route table and subnet go. See `egress.rs` for the functions' side of
//! the interface endpoints' traffic.

use std::collections::{BTreeMap, BTreeSet};

use super::{Inventory, Planned, Planner};
use crate::observed::{ObservedEndpoint, ObservedState, RulePeer, RuleProtocol, Slot, Tier};
use crate::plan::{Action, EndpointView, Ref, StackSpec, Status, StepId};
use crate::requirements::{Endpoint, EndpointKind};

/// What planning the endpoints decided, for the plan's view and the removal of slots.
#[derive(Debug, Default)]
pub(super) struct PlannedEndpoints {
    pub views: Vec<EndpointView>,
    pub security_group: Option<Status>,
    /// The steps that must finish before a removed slot's subnets and route table are deleted.
    pub slot_cleared: BTreeMap<Slot, Vec<StepId>>,
}

/// One service's gateway endpoint: its views (the kept or new one first, then those deleted) and
/// the steps a removed slot's route table waits for.
pub(super) struct GatewayPlan {
    views: Vec<EndpointView>,
    cleared: Vec<(Slot, StepId)>,
}

/// What a service's new endpoint, if it needs one, is made with: its client token's generation
/// and the deletions of the failed endpoints it replaces.
pub(super) struct NewEndpoint {
    generation: u32,
    after: Vec<StepId>,
}

/// Where the endpoints go.
pub(super) struct EndpointPlacement<'a> {
    pub vpc: &'a Ref,
    /// The functions' security group: the endpoints' group admits it.
    pub function_group: &'a Ref,
    /// The private route table of every slot that has one, by slot.
    pub private_route_tables: &'a [(Slot, Ref)],
    /// The private subnet of every slot the stack uses.
    pub private_subnets: &'a [Ref],
    /// Slots the plan removes.
    pub removed_slots: &'a [Slot],
}

impl Planner {
    /// The stack's endpoints, in the private route tables that route out and the private subnets
    /// of the slots it uses.
    pub(super) fn endpoints_of_stack(
        &mut self,
        context: &super::Context,
        base: &super::network::Base,
        routes: &super::routes::Routes,
        azs: &[super::slot::BuiltSlot],
        removed_slots: &[Slot],
    ) -> PlannedEndpoints {
        let private_subnets: Vec<Ref> = azs
            .iter()
            .map(|az| az.private_subnet.reference.clone())
            .collect();
        let placement = EndpointPlacement {
            vpc: &base.vpc.reference,
            function_group: &base.security_group.reference,
            private_route_tables: &routes.routed_private_tables,
            private_subnets: &private_subnets,
            removed_slots,
        };
        self.endpoints(
            context.spec,
            context.observed,
            &context.inventory,
            &placement,
        )
    }

    pub(super) fn endpoints(
        &mut self,
        spec: &StackSpec,
        observed: &ObservedState,
        inventory: &Inventory,
        at: &EndpointPlacement,
    ) -> PlannedEndpoints {
        let mut planned = PlannedEndpoints::default();
        let wanted = |kind: EndpointKind| -> Vec<Endpoint> {
            let mut services: Vec<Endpoint> = spec
                .modes
                .endpoints
                .iter()
                .copied()
                .filter(|e| e.kind() == kind)
                .collect();
            services.sort();
            services.dedup();
            services
        };
        // A failed (or rejected) endpoint serves nothing: it goes, and its service gets a new one
        // once it is gone (an interface endpoint's private DNS name is the service's).
        let (dead, mut existing): (Vec<&ObservedEndpoint>, Vec<&ObservedEndpoint>) =
            observed.endpoints.iter().partition(|e| e.dead);
        existing.sort_by(|a, b| a.id.cmp(&b.id));
        let mut replacing: BTreeMap<Endpoint, Vec<StepId>> = BTreeMap::new();
        for endpoint in dead {
            let step = self.delete_endpoint(endpoint, &[]);
            replacing.entry(endpoint.service).or_default().push(step);
            planned.views.push(deleted_view(endpoint));
            for slot in slots_touched(endpoint, inventory, at.removed_slots) {
                planned.slot_cleared.entry(slot).or_default().push(step);
            }
        }
        let new_one = |service: Endpoint| NewEndpoint {
            generation: observed
                .retired
                .endpoints
                .get(&service)
                .copied()
                .unwrap_or(0),
            after: replacing.get(&service).cloned().unwrap_or_default(),
        };
        let removed_subnets: BTreeMap<&str, Slot> = inventory
            .subnets
            .iter()
            .filter(|s| s.tier == Tier::Private && at.removed_slots.contains(&s.slot))
            .map(|s| (s.id.as_str(), s.slot))
            .collect();
        // Endpoints the plan keeps, by id; every other one of the stack is deleted below.
        let mut kept: BTreeSet<&str> = BTreeSet::new();

        for service in wanted(EndpointKind::Gateway) {
            let view = self.gateway_endpoint(
                (service, new_one(service)),
                inventory,
                at,
                &existing,
                &mut kept,
            );
            if let Some(GatewayPlan { views, cleared }) = view {
                planned.views.extend(views);
                for (slot, step) in cleared {
                    planned.slot_cleared.entry(slot).or_default().push(step);
                }
            }
        }

        let interface = wanted(EndpointKind::Interface);
        let (group, group_ready) = match interface.is_empty() {
            true => (None, Vec::new()),
            false => {
                let (group, ready) = self.endpoint_security_group(observed, at);
                (Some(group), ready)
            }
        };
        // Private DNS needs the VPC's DNS support and hostnames on first.
        let dns_ready: Vec<StepId> = self
            .steps
            .iter()
            .filter(|step| matches!(step.action, Action::EnableVpcDns { .. }))
            .map(|step| step.id)
            .collect();
        for service in &interface {
            let group = group
                .as_ref()
                .expect("planned when an interface endpoint is");
            let ordering: Vec<StepId> = dns_ready.iter().chain(&group_ready).copied().collect();
            let (view, cleared) = self.interface_endpoint(
                (*service, new_one(*service)),
                (group, &ordering),
                at,
                &existing,
                &removed_subnets,
                &mut kept,
            );
            planned.views.push(view);
            for (slot, step) in cleared {
                planned.slot_cleared.entry(slot).or_default().push(step);
            }
        }

        // What is no longer listed (or a duplicate a lost answer left) goes.
        let mut interfaces_deleted = Vec::new();
        for endpoint in existing.iter().filter(|e| !kept.contains(e.id.as_str())) {
            let step = self.delete_endpoint(endpoint, &[]);
            planned.views.push(deleted_view(endpoint));
            if endpoint.kind == EndpointKind::Interface {
                interfaces_deleted.push(step);
            }
            for slot in slots_touched(endpoint, inventory, at.removed_slots) {
                planned.slot_cleared.entry(slot).or_default().push(step);
            }
        }
        planned.security_group = match (group, &observed.endpoint_security_group) {
            (Some(group), _) => Some(group.status),
            (None, Some(observed)) => {
                let action = Action::DeleteSecurityGroup {
                    security_group: observed.id.clone(),
                };
                self.push(action, &interfaces_deleted);
                Some(Status::Delete(observed.id.clone()))
            }
            (None, None) => None,
        };
        planned
    }

    /// The interface endpoints' security group, kept or created, admitting HTTPS from the
    /// functions' group; and the steps after which it does.
    fn endpoint_security_group(
        &mut self,
        observed: &ObservedState,
        at: &EndpointPlacement,
    ) -> (Planned, Vec<StepId>) {
        let mut ready = Vec::new();
        let mut group = match &observed.endpoint_security_group {
            Some(group) => Planned::kept(&group.id),
            None => Planned::created(self.push(
                Action::CreateEndpointSecurityGroup {
                    vpc: at.vpc.clone(),
                },
                &[],
            )),
        };
        let admitted = match (at.function_group, &observed.endpoint_security_group) {
            (Ref::Existing(function_group), Some(observed)) => {
                observed.ingress.iter().any(|rule| {
                    rule.protocol == RuleProtocol::Tcp
                        && rule.ports == Some((443, 443))
                        && rule.peer == RulePeer::SecurityGroup(function_group.clone())
                })
            }
            _ => false,
        };
        if !admitted {
            let action = Action::AdmitHttpsFrom {
                security_group: group.reference.clone(),
                from_group: at.function_group.clone(),
            };
            ready.push(self.push(action, &[]));
            if let Status::Keep(id) = &group.status {
                group = Planned::changed(&id.clone());
            }
        }
        (group, ready)
    }

    /// The interface endpoint of `service` in every private subnet, in `group`: created (after
    /// `ordering`), or the observed one kept, given the new subnets and rid of removed slots'
    /// subnets. Its view, and the steps a removed slot waits for.
    fn interface_endpoint<'a>(
        &mut self,
        (service, new_one): (Endpoint, NewEndpoint),
        (group, ordering): (&Planned, &[StepId]),
        at: &EndpointPlacement,
        existing: &[&'a ObservedEndpoint],
        removed_subnets: &BTreeMap<&str, Slot>,
        kept: &mut BTreeSet<&'a str>,
    ) -> (EndpointView, Vec<(Slot, StepId)>) {
        let mut cleared = Vec::new();
        let found = existing
            .iter()
            .copied()
            .find(|e| e.kind == EndpointKind::Interface && e.service == service);
        let (status, azs) = match found {
            None => {
                let action = Action::CreateInterfaceEndpoint {
                    vpc: at.vpc.clone(),
                    endpoint: service,
                    subnets: at.private_subnets.to_vec(),
                    security_group: group.reference.clone(),
                    generation: new_one.generation,
                };
                let after: Vec<StepId> = ordering.iter().chain(&new_one.after).copied().collect();
                self.push(action, &after);
                (Status::Create, at.private_subnets.len())
            }
            Some(endpoint) => {
                kept.insert(&endpoint.id);
                let add_subnets: Vec<Ref> = at
                    .private_subnets
                    .iter()
                    .filter(|subnet| match subnet {
                        Ref::Existing(id) => !endpoint.subnet_ids.contains(id),
                        Ref::Step(_) => true,
                    })
                    .cloned()
                    .collect();
                let remove_subnets: Vec<String> = endpoint
                    .subnet_ids
                    .iter()
                    .filter(|id| removed_subnets.contains_key(id.as_str()))
                    .cloned()
                    .collect();
                let azs = endpoint.subnet_ids.len() - remove_subnets.len() + add_subnets.len();
                if add_subnets.is_empty() && remove_subnets.is_empty() {
                    (Status::Keep(endpoint.id.clone()), azs)
                } else {
                    let slots: Vec<Slot> = remove_subnets
                        .iter()
                        .map(|id| removed_subnets[id.as_str()])
                        .collect();
                    let action = Action::ModifyInterfaceEndpoint {
                        endpoint_id: endpoint.id.clone(),
                        add_subnets,
                        remove_subnets,
                    };
                    let step = self.push(action, &[]);
                    cleared.extend(slots.into_iter().map(|slot| (slot, step)));
                    (Status::Change(endpoint.id.clone()), azs)
                }
            }
        };
        let view = EndpointView {
            service,
            kind: EndpointKind::Interface,
            slot: None,
            azs: u32::try_from(azs).unwrap_or(u32::MAX),
            status,
        };
        (view, cleared)
    }

    /// The one gateway endpoint of `service`, on every private route table that routes out.
    /// An observed stack may have several (one per slot, as fixedip made them before): the one
    /// already shared, else the first by id, is kept and the others deleted. AWS refuses a second
    /// route to the service's prefix list in a table, so a table moves to the kept endpoint only
    /// once its old endpoint is gone; until then its service traffic takes the default route.
    /// The tables of removed slots leave it. Returns its view and the steps a removed slot waits
    /// for, or `None` when there is nothing to serve and nothing observed.
    fn gateway_endpoint<'a>(
        &mut self,
        (service, new_one): (Endpoint, NewEndpoint),
        inventory: &Inventory,
        at: &EndpointPlacement,
        existing: &[&'a ObservedEndpoint],
        kept: &mut BTreeSet<&'a str>,
    ) -> Option<GatewayPlan> {
        let mut found: Vec<&ObservedEndpoint> = existing
            .iter()
            .copied()
            .filter(|e| e.kind == EndpointKind::Gateway && e.service == service)
            .collect();
        // The shared one first (no slot tag), then by id.
        found.sort_by_key(|e| (e.slot.is_some(), e.id.clone()));
        let wanted: Vec<Ref> = at
            .private_route_tables
            .iter()
            .map(|(_, table)| table.clone())
            .collect();
        let Some((&keep, extras)) = found.split_first() else {
            if wanted.is_empty() {
                return None;
            }
            let action = Action::CreateGatewayEndpoint {
                vpc: at.vpc.clone(),
                endpoint: service,
                route_tables: wanted.clone(),
                generation: new_one.generation,
            };
            self.push(action, &new_one.after);
            let view = gateway_view(service, wanted.len(), Status::Create);
            return Some(GatewayPlan {
                views: vec![view],
                cleared: Vec::new(),
            });
        };
        kept.insert(&keep.id);
        let removed_table = |id: &str| {
            inventory
                .route_tables
                .iter()
                .any(|t| t.id == id && t.slot.is_some_and(|s| at.removed_slots.contains(&s)))
        };
        let mut cleared = Vec::new();
        let mut views = Vec::new();
        let mut extras_deleted = Vec::new();
        let mut moved: Vec<Ref> = Vec::new();
        for extra in extras {
            kept.insert(&extra.id);
            let step = self.delete_endpoint(extra, &[]);
            views.push(deleted_view(extra));
            extras_deleted.push(step);
            for slot in slots_touched(extra, inventory, at.removed_slots) {
                cleared.push((slot, step));
            }
            moved.extend(
                extra
                    .route_table_ids
                    .iter()
                    .filter(|id| !removed_table(id))
                    .map(|id| Ref::Existing(id.clone())),
            );
        }
        let mut add: Vec<Ref> = Vec::new();
        for table in wanted.iter().chain(&moved) {
            let served = matches!(table, Ref::Existing(id) if keep.route_table_ids.contains(id));
            if !served && !add.contains(table) {
                add.push(table.clone());
            }
        }
        let remove: Vec<String> = keep
            .route_table_ids
            .iter()
            .filter(|id| removed_table(id))
            .cloned()
            .collect();
        let tables = keep.route_table_ids.len() - remove.len() + add.len();
        if add.is_empty() && remove.is_empty() {
            views.insert(
                0,
                gateway_view(service, tables, Status::Keep(keep.id.clone())),
            );
            return Some(GatewayPlan { views, cleared });
        }
        let action = Action::ModifyGatewayEndpoint {
            endpoint_id: keep.id.clone(),
            add_route_tables: add,
            remove_route_tables: remove,
        };
        let step = self.push(action, &extras_deleted);
        for slot in slots_touched(keep, inventory, at.removed_slots) {
            cleared.push((slot, step));
        }
        views.insert(
            0,
            gateway_view(service, tables, Status::Change(keep.id.clone())),
        );
        Some(GatewayPlan { views, cleared })
    }

    fn delete_endpoint(&mut self, endpoint: &ObservedEndpoint, after: &[StepId]) -> StepId {
        let action = Action::DeleteEndpoint {
            endpoint_id: endpoint.id.clone(),
        };
        self.push(action, after)
    }
}

/// What taking every endpoint of a stack down did, for the teardown steps that follow.
pub(super) struct RemovedEndpoints {
    pub views: Vec<EndpointView>,
    pub security_group: Option<Status>,
    /// Every endpoint deletion: the subnets and route tables they sit in go after these.
    pub steps: Vec<StepId>,
    /// The endpoints' group deletion: the functions' group, which it refers to, goes after it.
    pub security_group_deleted: Option<StepId>,
}

impl Planner {
    /// `destroy`: every endpoint, after `after` (the functions leaving), then the endpoints'
    /// security group once its interface endpoints are gone.
    pub(super) fn remove_endpoints(
        &mut self,
        observed: &ObservedState,
        after: &[StepId],
    ) -> RemovedEndpoints {
        let mut endpoints: Vec<&ObservedEndpoint> = observed.endpoints.iter().collect();
        endpoints.sort_by(|a, b| a.id.cmp(&b.id));
        let mut steps = Vec::new();
        let mut views = Vec::new();
        for endpoint in endpoints {
            steps.push(self.delete_endpoint(endpoint, after));
            views.push(deleted_view(endpoint));
        }
        let mut security_group_deleted = None;
        let security_group = observed.endpoint_security_group.as_ref().map(|group| {
            let action = Action::DeleteSecurityGroup {
                security_group: group.id.clone(),
            };
            security_group_deleted = Some(self.push(action, &steps));
            Status::Delete(group.id.clone())
        });
        RemovedEndpoints {
            views,
            security_group,
            steps,
            security_group_deleted,
        }
    }
}

/// A gateway endpoint on `tables` private route tables.
fn gateway_view(service: Endpoint, tables: usize, status: Status) -> EndpointView {
    EndpointView {
        service,
        kind: EndpointKind::Gateway,
        slot: None,
        azs: u32::try_from(tables).unwrap_or(u32::MAX),
        status,
    }
}

fn deleted_view(endpoint: &ObservedEndpoint) -> EndpointView {
    EndpointView {
        service: endpoint.service,
        kind: endpoint.kind,
        slot: endpoint.slot,
        azs: 0,
        status: Status::Delete(endpoint.id.clone()),
    }
}

/// The removed slots whose route table or private subnet an endpoint is in.
fn slots_touched(
    endpoint: &ObservedEndpoint,
    inventory: &Inventory,
    removed: &[Slot],
) -> Vec<Slot> {
    let mut slots: Vec<Slot> = inventory
        .subnets
        .iter()
        .filter(|s| endpoint.subnet_ids.contains(&s.id))
        .map(|s| s.slot)
        .chain(
            inventory
                .route_tables
                .iter()
                .filter(|t| endpoint.route_table_ids.contains(&t.id))
                .filter_map(|t| t.slot),
        )
        .chain(endpoint.slot)
        .filter(|slot| removed.contains(slot))
        .collect();
    slots.sort();
    slots.dedup();
    slots
}
