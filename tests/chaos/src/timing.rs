//! AWS's asynchronous states, which moto skips: the proxy remembers when things were created, deleted or
//! updated, and rewrites moto's answers so that they read as AWS's would at that moment.
//!
//! - NAT gateways: `pending` for a while after CreateNatGateway, `deleting` for a while after
//!   DeleteNatGateway (moto says `deleted` at once; the proxy holds them as `deleting`).
//! - Lambda: `State: Pending` after CreateFunction, `LastUpdateStatus: InProgress` after an update, and
//!   `ResourceConflictException` for another update (or an invoke) meanwhile.
//! - IAM: a role Lambda cannot assume yet, right after CreateRole.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scenario::Timing;
use crate::upstream::child_text;

/// When each NAT gateway was created and deleted, as seen through the proxy.
#[derive(Debug, Clone)]
struct NatTimes {
    created: Instant,
    deleted: Option<Instant>,
    /// `failed` once pending is over, with AWS's FailureCode and FailureMessage.
    failure: Option<(String, String)>,
    /// The addresses it was created with.
    allocations: Vec<String>,
}

/// When each function was created and last updated.
#[derive(Debug, Clone)]
struct FunctionTimes {
    created: Instant,
    updated: Option<Instant>,
    /// `Failed` once pending is over, with Lambda's StateReasonCode and StateReason.
    failure: Option<(String, String)>,
}

/// What a function is doing, as AWS would say at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionPhase {
    Pending,
    /// Lambda could not create it: "you must delete and recreate the function".
    Failed,
    UpdateInProgress,
    Settled,
}

/// The remembered instants, and the durations of the current scenario.
#[derive(Default)]
pub struct Clocks {
    pub timing: Timing,
    nats: HashMap<String, NatTimes>,
    /// Keyed by `Caller::account_key()/region/function name`.
    functions: HashMap<String, FunctionTimes>,
    /// Role name → its last change (CreateRole, AttachRolePolicy, PutRolePolicy).
    roles: HashMap<String, Instant>,
}

impl Clocks {
    pub fn new(timing: Timing) -> Self {
        Clocks {
            timing,
            ..Clocks::default()
        }
    }

    pub fn nat_created(
        &mut self,
        id: &str,
        at: Instant,
        allocations: Vec<String>,
        failure: Option<(String, String)>,
    ) {
        self.nats.insert(
            id.to_string(),
            NatTimes {
                created: at,
                deleted: None,
                failure,
                allocations,
            },
        );
    }

    /// The FailureCode and FailureMessage of a gateway that reads `failed`.
    pub fn nat_failure(&self, id: &str) -> Option<&(String, String)> {
        self.nats.get(id)?.failure.as_ref()
    }

    /// Whether `allocation` was held by a NAT gateway that read `deleted` less than
    /// `address_settling_ms` ago (`consistency.rs`).
    pub fn address_settling(&self, allocation: &str, now: Instant) -> bool {
        let settling = ms(self.timing.address_settling_ms);
        self.nats.values().any(|nat| {
            let Some(deleted) = nat.deleted else {
                return false;
            };
            let reads_deleted = deleted + ms(self.timing.nat_deleting_ms);
            nat.allocations.iter().any(|a| a == allocation)
                && now >= reads_deleted
                && now < reads_deleted + settling
        })
    }

    pub fn nat_deleted(&mut self, id: &str, at: Instant) {
        // A gateway created before the proxy started is taken as long available.
        let entry = self.nats.entry(id.to_string()).or_insert(NatTimes {
            created: at - Duration::from_secs(3600),
            deleted: None,
            failure: None,
            allocations: Vec::new(),
        });
        entry.deleted.get_or_insert(at);
    }

    /// The state AWS would report for a NAT gateway that moto reports as `moto_state`.
    pub fn nat_state<'a>(&self, id: &str, moto_state: &'a str, now: Instant) -> &'a str {
        let Some(times) = self.nats.get(id) else {
            return moto_state;
        };
        match times.deleted {
            Some(deleted) if now < deleted + ms(self.timing.nat_deleting_ms) => "deleting",
            Some(_) => "deleted",
            None if moto_state == "available"
                && now < times.created + ms(self.timing.nat_pending_ms) =>
            {
                "pending"
            }
            None if times.failure.is_some() => "failed",
            None => moto_state,
        }
    }

    pub fn function_created(
        &mut self,
        key: String,
        at: Instant,
        failure: Option<(String, String)>,
    ) {
        self.functions.insert(
            key,
            FunctionTimes {
                created: at,
                updated: None,
                failure,
            },
        );
    }

    pub fn function_updated(&mut self, key: &str, at: Instant) {
        if let Some(times) = self.functions.get_mut(key) {
            times.updated = Some(at);
        }
    }

    pub fn function_deleted(&mut self, key: &str) {
        self.functions.remove(key);
    }

    pub fn function_phase(&self, key: &str, now: Instant) -> FunctionPhase {
        let Some(times) = self.functions.get(key) else {
            return FunctionPhase::Settled;
        };
        if now < times.created + ms(self.timing.lambda_pending_ms) {
            FunctionPhase::Pending
        } else if times.failure.is_some() {
            FunctionPhase::Failed
        } else if times
            .updated
            .is_some_and(|u| now < u + ms(self.timing.lambda_update_ms))
        {
            FunctionPhase::UpdateInProgress
        } else {
            FunctionPhase::Settled
        }
    }

    /// A role was created or changed (a policy attached): as fresh to Lambda as a new role
    /// (apex/up issue 189: UpdateFunctionConfiguration "cannot be assumed by Lambda").
    pub fn role_changed(&mut self, name: &str, at: Instant) {
        self.roles.insert(role_name(name).to_string(), at);
    }

    /// Whether Lambda can assume this role (ARN or name) yet (IAM is eventually consistent).
    pub fn role_assumable(&self, role: &str, now: Instant) -> bool {
        self.roles
            .get(role_name(role))
            .is_none_or(|changed| now >= *changed + ms(self.timing.role_propagation_ms))
    }

    /// The StateReasonCode and StateReason of a function that reads `Failed`.
    pub fn function_failure(&self, key: &str) -> Option<&(String, String)> {
        self.functions.get(key)?.failure.as_ref()
    }
}

/// A role's name from its ARN (`arn:aws:iam::1:role/path/name`), or the name itself.
fn role_name(role: &str) -> &str {
    role.rsplit('/').next().unwrap_or(role)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Rewrites the `state` of every NAT gateway in an EC2 answer (CreateNatGateway, DescribeNatGateways).
/// Gateways whose rewritten state is outside `state_filter` (the request's `state` filter) are dropped,
/// since moto filtered on its own state.
pub fn rewrite_nat_states(
    xml: &str,
    clocks: &Clocks,
    now: Instant,
    state_filter: &[String],
) -> String {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return xml.to_string();
    };
    // (byte range, replacement), applied from the end so that earlier ranges stay valid.
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for gateway in doc.descendants().filter(|n| {
        n.is_element()
            && child_text(*n, "natGatewayId").is_some()
            && n.children().any(|c| c.has_tag_name("state"))
    }) {
        let id = child_text(gateway, "natGatewayId").unwrap_or_default();
        let Some(state) = gateway.children().find(|c| c.has_tag_name("state")) else {
            continue;
        };
        let moto_state = state.text().unwrap_or_default();
        let aws_state = clocks.nat_state(id, moto_state, now);
        if !state_filter.is_empty() && !state_filter.iter().any(|s| s == aws_state) {
            edits.push((gateway.range(), String::new()));
        } else if aws_state == "failed" {
            // AWS: "Check the failureCode and failureMessage fields" (NatGateway data type).
            let (code, message) = clocks.nat_failure(id).cloned().unwrap_or_default();
            edits.push((
                state.range(),
                format!(
                    "<state>failed</state><failureCode>{}</failureCode><failureMessage>{}</failureMessage>",
                    crate::faults::xml_escape(&code),
                    crate::faults::xml_escape(&message)
                ),
            ));
        } else if aws_state != moto_state {
            if let Some(text) = state.first_child() {
                edits.push((text.range(), aws_state.to_string()));
            }
        }
    }
    let mut out = xml.to_string();
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, replacement) in edits {
        out.replace_range(range, &replacement);
    }
    out
}

/// Rewrites the state of the VPC endpoints in `failed` (`failures.endpoints`) to `failed`, as long
/// as moto has not deleted them (moto makes every endpoint `available` at once).
pub fn rewrite_endpoint_states(xml: &str, failed: &BTreeSet<String>) -> String {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return xml.to_string();
    };
    let mut edits: Vec<std::ops::Range<usize>> = Vec::new();
    for endpoint in doc.descendants().filter(|n| {
        n.is_element() && child_text(*n, "vpcEndpointId").is_some_and(|id| failed.contains(id))
    }) {
        let state = endpoint.children().find(|c| c.has_tag_name("state"));
        let text = state.and_then(|s| s.first_child());
        if let Some(text) = text.filter(|t| t.text() != Some("deleted")) {
            edits.push(text.range());
        }
    }
    let mut out = xml.to_string();
    edits.sort_by_key(|range| std::cmp::Reverse(range.start));
    for range in edits {
        out.replace_range(range, "failed");
    }
    out
}

/// Rewrites a function's configuration (the top level of GetFunctionConfiguration and of the update
/// answers, `Configuration` in GetFunction) to the phase AWS would report.
pub fn rewrite_function_configuration(
    configuration: &mut Value,
    phase: FunctionPhase,
    failure: Option<&(String, String)>,
) {
    let Some(config) = configuration.as_object_mut() else {
        return;
    };
    match phase {
        FunctionPhase::Failed => {
            let (code, reason) = failure.cloned().unwrap_or_default();
            config.insert("State".into(), "Failed".into());
            config.insert("StateReason".into(), reason.into());
            config.insert("StateReasonCode".into(), code.into());
        }
        FunctionPhase::Pending => {
            config.insert("State".into(), "Pending".into());
            config.insert(
                "StateReason".into(),
                "The function is being created.".into(),
            );
            config.insert("StateReasonCode".into(), "Creating".into());
        }
        FunctionPhase::UpdateInProgress => {
            config.insert("LastUpdateStatus".into(), "InProgress".into());
            config.insert(
                "LastUpdateStatusReason".into(),
                "The function is being updated.".into(),
            );
            config.remove("LastUpdateStatusReasonCode");
        }
        FunctionPhase::Settled => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIBE: &str = r#"<DescribeNatGatewaysResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<natGatewaySet>
<item><natGatewayId>nat-1</natGatewayId><state>available</state><subnetId>subnet-1</subnetId></item>
<item><natGatewayId>nat-2</natGatewayId><state>deleted</state><subnetId>subnet-1</subnetId></item>
</natGatewaySet></DescribeNatGatewaysResponse>"#;

    fn clocks() -> Clocks {
        Clocks {
            timing: Timing {
                nat_pending_ms: 1_000,
                nat_deleting_ms: 1_000,
                ..Timing::default()
            },
            ..Clocks::default()
        }
    }

    #[test]
    fn a_new_gateway_is_pending_then_available_and_a_deleted_one_deleting_then_deleted() {
        let t0 = Instant::now();
        let mut c = clocks();
        c.nat_created("nat-1", t0, vec![], None);
        c.nat_created("nat-2", t0, vec![], None);
        c.nat_deleted("nat-2", t0);
        let early = rewrite_nat_states(DESCRIBE, &c, t0 + ms(10), &[]);
        assert!(early.contains("<natGatewayId>nat-1</natGatewayId><state>pending</state>"));
        assert!(early.contains("<natGatewayId>nat-2</natGatewayId><state>deleting</state>"));
        let late = rewrite_nat_states(DESCRIBE, &c, t0 + ms(1_500), &[]);
        assert_eq!(late, DESCRIBE);
    }

    #[test]
    fn a_state_filter_sees_the_rewritten_state() {
        let t0 = Instant::now();
        let mut c = clocks();
        c.nat_created("nat-1", t0, vec![], None);
        let out = rewrite_nat_states(DESCRIBE, &c, t0, &["available".to_string()]);
        assert!(!out.contains("nat-1"), "{out}");
        roxmltree::Document::parse(&out).expect("still well-formed");
    }

    #[test]
    fn functions_are_pending_then_in_progress_after_an_update() {
        let t0 = Instant::now();
        let mut c = Clocks {
            timing: Timing {
                lambda_pending_ms: 100,
                lambda_update_ms: 100,
                ..Timing::default()
            },
            ..Clocks::default()
        };
        c.function_created("k".into(), t0, None);
        assert_eq!(c.function_phase("k", t0), FunctionPhase::Pending);
        assert_eq!(c.function_phase("k", t0 + ms(150)), FunctionPhase::Settled);
        c.function_updated("k", t0 + ms(150));
        assert_eq!(
            c.function_phase("k", t0 + ms(200)),
            FunctionPhase::UpdateInProgress
        );
        let mut config = serde_json::json!({"State": "Active", "LastUpdateStatus": "Successful"});
        rewrite_function_configuration(&mut config, FunctionPhase::UpdateInProgress, None);
        assert_eq!(config["LastUpdateStatus"], "InProgress");
    }

    /// Lambda developer guide, function states: "When function creation fails, Lambda sets the
    /// function state to failed, and you must delete and recreate the function."
    #[test]
    fn a_function_made_to_fail_reads_failed_with_its_reason_after_pending() {
        let t0 = Instant::now();
        let mut c = Clocks {
            timing: Timing {
                lambda_pending_ms: 100,
                ..Timing::default()
            },
            ..Clocks::default()
        };
        let reason = (
            "SubnetOutOfIPAddresses".to_string(),
            "no addresses".to_string(),
        );
        c.function_created("k".into(), t0, Some(reason.clone()));
        assert_eq!(c.function_phase("k", t0), FunctionPhase::Pending);
        assert_eq!(c.function_phase("k", t0 + ms(150)), FunctionPhase::Failed);
        let mut config = serde_json::json!({"State": "Active"});
        rewrite_function_configuration(&mut config, FunctionPhase::Failed, c.function_failure("k"));
        assert_eq!(config["State"], "Failed");
        assert_eq!(config["StateReasonCode"], "SubnetOutOfIPAddresses");
    }

    /// NatGateway data type: failed, "Check the failureCode and failureMessage fields".
    #[test]
    fn a_gateway_made_to_fail_reads_failed_with_its_code_and_message() {
        let t0 = Instant::now();
        let mut c = clocks();
        let failure = ("InternalError".to_string(), "invalid state".to_string());
        c.nat_created("nat-1", t0, vec![], Some(failure));
        let early = rewrite_nat_states(DESCRIBE, &c, t0, &[]);
        assert!(early.contains("<state>pending</state>"), "{early}");
        let late = rewrite_nat_states(DESCRIBE, &c, t0 + ms(1_500), &[]);
        assert!(
            late.contains("<state>failed</state><failureCode>InternalError</failureCode><failureMessage>invalid state</failureMessage>"),
            "{late}"
        );
        roxmltree::Document::parse(&late).expect("still well-formed");
    }

    /// terraform-provider-aws issue 49299, sno-for-100 #5: an address is refused for a moment
    /// after its NAT gateway reads `deleted`.
    #[test]
    fn an_address_settles_for_a_while_after_its_gateway_reads_deleted() {
        let t0 = Instant::now();
        let mut c = clocks();
        c.timing.address_settling_ms = 500;
        c.nat_created("nat-1", t0, vec!["eipalloc-1".into()], None);
        c.nat_deleted("nat-1", t0);
        assert!(
            !c.address_settling("eipalloc-1", t0 + ms(500)),
            "still deleting"
        );
        assert!(c.address_settling("eipalloc-1", t0 + ms(1_100)));
        assert!(!c.address_settling("eipalloc-2", t0 + ms(1_100)));
        assert!(!c.address_settling("eipalloc-1", t0 + ms(1_600)));
    }

    #[test]
    fn a_role_is_fresh_again_after_a_policy_is_attached() {
        let t0 = Instant::now();
        let mut c = Clocks {
            timing: Timing {
                role_propagation_ms: 100,
                ..Timing::default()
            },
            ..Clocks::default()
        };
        assert!(c.role_assumable("arn:aws:iam::1:role/r", t0));
        c.role_changed("r", t0);
        assert!(!c.role_assumable("arn:aws:iam::1:role/r", t0 + ms(50)));
        assert!(c.role_assumable("arn:aws:iam::1:role/r", t0 + ms(150)));
    }
}
