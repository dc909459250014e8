//! Routing: the public route table (0.0.0.0/0 → internet gateway, for every public subnet) and a
//! private route table per slot (0.0.0.0/0 → the NAT that serves the slot, none when isolated).
//! A slot switching its kind of NAT retires the old one once its route points at the new one.

use super::inventory::Inventory;
use super::nat_instance::Retire;
use super::nats::NatLayout;
use super::network::{Base, RoutedTable};
use super::slot::BuiltSlot;
use super::steps::Planner;
use super::Context;
use crate::observed::{Slot, Tier};
use crate::plan::{Action, Ref, RouteVia, Status, StepId};

pub(super) struct Routes {
    /// `None` when isolated.
    pub(super) public_route_table: Option<RoutedTable>,
    /// Per slot of the stack, in order: its private route table.
    pub(super) private_route_tables: Vec<Status>,
    /// Per slot of the stack, in order: the slot whose NAT carries its traffic; `None` when
    /// isolated or waiting for a new IP to be allowed.
    pub(super) nat_slot_of: Vec<Option<Slot>>,
    /// The private tables that route out, for the gateway endpoints.
    pub(super) routed_private_tables: Vec<(Slot, Ref)>,
    /// The route changes that take traffic away from a NAT: a NAT the plan removes waits for them.
    pub(super) routes_moved: Vec<StepId>,
    /// The steps after which every subnet routes out: egress works once both hops route
    /// (private subnet → NAT, public subnet → internet gateway).
    pub(super) routes_ready: Vec<StepId>,
    /// The NATs of the other kind that slots switching mode leave behind, each with the route
    /// changes it waits for; retired once the functions are planned too
    /// ([`Planner::retire_old_nats`]).
    pub(super) retiring: Vec<(Vec<Retire>, Vec<StepId>)>,
}

/// A NAT that carries traffic: its slot, how a route reaches it, what the route waits for.
type Nat<'a> = (Slot, &'a RouteVia, &'a [StepId]);

impl Planner {
    pub(super) fn routes(
        &mut self,
        context: &Context,
        layout: &NatLayout,
        base: &Base,
        azs: &mut [BuiltSlot],
    ) -> Routes {
        let public_subnets: Vec<&Ref> = azs
            .iter()
            .filter_map(|az| az.public_subnet.as_ref().map(|s| &s.reference))
            .collect();
        let public_route_table = base.internet_gateway.as_ref().map(|gateway| {
            self.route_table(
                &base.vpc.reference,
                context.inventory.public_route_table,
                (Tier::Public, None),
                Some(RouteVia::InternetGateway(gateway.planned.reference.clone())),
                gateway.attached.as_slice(),
                &public_subnets,
            )
        });
        let mut routes = Routes {
            routes_ready: public_route_table
                .iter()
                .flat_map(|table| table.steps.iter().copied())
                .collect(),
            public_route_table,
            private_route_tables: Vec::new(),
            nat_slot_of: Vec::new(),
            routed_private_tables: Vec::new(),
            routes_moved: Vec::new(),
            retiring: Vec::new(),
        };
        // The NATs of the other kind that slots switching mode leave behind, once routes moved.
        let retire: Vec<Vec<Retire>> = azs
            .iter_mut()
            .map(|az| std::mem::take(&mut az.retire))
            .collect();
        let mut routed: Vec<Vec<StepId>> = Vec::new();
        let nats: Vec<Nat> = azs
            .iter()
            .filter_map(|az| {
                az.nat_via
                    .as_ref()
                    .map(|via| (az.slot, via, az.route_after.as_slice()))
            })
            .collect();
        for az in azs.iter() {
            let nat = match layout.serving(az.slot) {
                None => None,
                Some(serving) => nats.iter().find(|(slot, ..)| *slot == serving).or_else(|| {
                    // With `nats`, a NAT waiting for its new IP lends its AZs the first NAT that
                    // carries traffic, as before the change, rather than cutting them off.
                    context.spec.modes.nats.and(nats.first())
                }),
            };
            routed.push(self.private_route(context, layout, base, az, nat, &mut routes));
        }
        // The old NATs go once no route leads to them: their own slot's, and any other slot's
        // that shared them (`nats`).
        for (retired, routed) in retire.into_iter().zip(routed) {
            let after: Vec<StepId> = routed
                .into_iter()
                .chain(routes.routes_moved.clone())
                .collect();
            routes.retiring.push((retired, after));
        }
        routes
    }

    /// The private route table of one slot, routed through `nat`: the steps that route it.
    fn private_route(
        &mut self,
        context: &Context,
        layout: &NatLayout,
        base: &Base,
        az: &BuiltSlot,
        nat: Option<&Nat>,
        routes: &mut Routes,
    ) -> Vec<StepId> {
        let observed_table = context
            .inventory
            .private_route_tables
            .get(&az.slot)
            .copied();
        let via = match (layout.isolated(), nat) {
            (true, _) => None,
            (false, Some((_, via, _))) => Some((*via).clone()),
            (false, None) => {
                // No route out until the user allows the slot's new IP: the private subnet keeps
                // the VPC's main route table, which reaches nothing outside the VPC.
                routes.private_route_tables.push(match observed_table {
                    Some(table) => Status::Keep(table.id.clone()),
                    None => Status::HeldBack,
                });
                routes.nat_slot_of.push(None);
                return Vec::new();
            }
        };
        // A NAT instance carries traffic once its address and check are set.
        let route_after: &[StepId] = nat.map_or(&[], |(_, _, after)| after);
        let routed = self.route_table(
            &base.vpc.reference,
            observed_table,
            (Tier::Private, Some(az.slot)),
            via,
            route_after,
            &[&az.private_subnet.reference],
        );
        routes.routes_ready.extend(routed.steps.iter().copied());
        // A route that stays as it is, to a NAT this plan repairs (its address put back, an
        // instance started): the slot routes out once the NAT is ready again.
        let route_changed = routed.steps.iter().any(|step| {
            matches!(
                self.steps[step.0].action,
                Action::CreateRoute { .. } | Action::ReplaceRoute { .. }
            )
        });
        if !route_changed {
            routes.routes_ready.extend(route_after.iter().copied());
        }
        routes.routed_private_tables.push((az.slot, routed.table));
        routes
            .routes_moved
            .extend(routed.steps.iter().copied().filter(|step| {
                matches!(
                    self.steps[step.0].action,
                    Action::ReplaceRoute { .. } | Action::DeleteRoute { .. }
                )
            }));
        routes.private_route_tables.push(routed.status);
        routes.nat_slot_of.push(nat.map(|(slot, ..)| *slot));
        routed.steps
    }
}

impl Planner {
    /// The old NATs go once no route leads to them, and once no function runs where one did:
    /// a function leaving a removed slot whose route still leads to the old NAT (`nats`) would
    /// be cut off meanwhile.
    pub(super) fn retire_old_nats(&mut self, inventory: &Inventory, routes: &mut Routes) {
        let functions_moved = self.steps_where(|a| {
            matches!(
                a,
                Action::UpdateFunctionConfiguration { .. }
                    | Action::DetachFunction { .. }
                    | Action::DeleteFunction { .. }
            )
        });
        for (retired, routed) in std::mem::take(&mut routes.retiring) {
            let after: Vec<StepId> = routed.into_iter().chain(functions_moved.clone()).collect();
            self.retire(inventory, retired, &after);
        }
    }
}
