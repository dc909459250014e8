//! What the proxy does to the traffic: one serde value, set at start or replaced at run time
//! (`PUT /_chaos/scenario`), so that a test can change faults between two runs of the CLI.
//!
//! Every duration is in milliseconds (`*_ms`) so that a scenario file is plain JSON. The default
//! scenario changes nothing: the proxy only identifies and logs.

use serde::{Deserialize, Serialize};

/// Everything the proxy adds to what moto does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seed of the random choices (latency, fault rates), so that a failing run can be replayed.
    pub seed: u64,
    /// Added before each AWS call is forwarded.
    pub latency: Option<Latency>,
    /// Faults, checked in order; the first that fires answers the call.
    pub faults: Vec<FaultRule>,
    /// Stop the world after the k-th mutating call (1-based) has been answered: every later call is
    /// held until `resume`, so that a test can kill the client at exactly that point.
    pub pause_after_mutating: Option<u64>,
    /// AWS's asynchronous states, which moto skips.
    pub timing: Timing,
    /// The dependency rules that moto does not enforce and AWS does.
    pub dependency_rules: bool,
    /// Lambda's Hyperplane ENIs: created in moto when a function joins a VPC.
    pub hyperplane_enis: Option<HyperplaneEnis>,
    /// Resources AWS fails to create, with AWS's reason (`failures.rs`).
    pub failures: Failures,
    /// Client tokens answered as AWS answers them: a repeated token gets the original result, even
    /// once that resource is gone (`tokens.rs`).
    pub client_tokens: bool,
    /// AZs (by name) where CreateSubnet is refused as AWS refuses it in a zone the account lists
    /// but cannot use (`zones.rs`).
    pub refused_subnet_azs: Vec<String>,
    /// AZs (by name) where RunInstances is refused `Unsupported`, as AWS refuses an instance type
    /// in a zone with constraints on it (`zones.rs`).
    pub unsupported_instance_azs: Vec<String>,
    /// AZs (by name) Lambda does not support: a CreateFunction or UpdateFunctionConfiguration
    /// naming a subnet in one is refused as Lambda refuses it (`zones.rs`).
    pub lambda_refused_azs: Vec<String>,
    /// VPC quotas counted against creates, as AWS refuses them (`quotas.rs`).
    pub quotas: Option<crate::quotas::QuotaLimits>,
    /// The console of fixedip's NAT instances (`nat_boot.rs`). Always modelled, since moto's
    /// console is a fixed sample: by default ready as soon as the instance has a public address.
    pub nat_boot: NatBoot,
}

/// How a NAT instance launched by fixedip boots, as its console output shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatBoot {
    /// The ready line appears this long after the instance first has a public address (its
    /// Elastic IP, or a public IP at launch): the user data's nftables install needs the
    /// package repositories.
    pub ready_after_ms: u64,
    /// Launches (counted from 1 since the scenario was set) that never get ready.
    pub never_ready: Vec<NeverReady>,
    /// A self-healing NAT's replacement (`nat_group.rs`) attaches the slot's interface, and so
    /// starts its boot, no sooner than this after the instance it replaces was terminated: the
    /// group notices a terminated instance at its next health check, then launches (EC2 Auto
    /// Scaling User Guide, "Health checks for instances in an Auto Scaling group"); moto
    /// replaces it at once.
    pub replacement_after_ms: u64,
}

/// A NAT instance whose boot fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeverReady {
    pub nth: u64,
    /// Nothing of fixedip's on the console at all (the user data never ran), rather than the
    /// FAILED line.
    #[serde(default)]
    pub silent: bool,
}

/// Resources that end `failed` (NAT gateways) or `Failed` (functions) instead of available.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Failures {
    /// The next CreateFunction (or the next `times`) of each of these functions makes a function
    /// that reads `Failed`.
    pub functions: Vec<FunctionFailure>,
    /// The k-th CreateNatGateway (from 1, counted from when the scenario was set) makes a gateway
    /// that reads `failed` once its `pending` time is over.
    pub nat_gateways: Vec<NatFailure>,
    /// The k-th CreateVpcEndpoint answered (from 1, counted from when the scenario was set) makes
    /// an endpoint that reads `failed` (VpcEndpoint data type, `State`: "... | Failed | ...").
    pub endpoints: Vec<u64>,
}

/// A function Lambda fails to create, with its `StateReasonCode` and `StateReason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionFailure {
    pub function: String,
    #[serde(default = "FunctionFailure::default_code")]
    pub state_reason_code: String,
    #[serde(default = "FunctionFailure::default_reason")]
    pub state_reason: String,
    /// How many creates of the function fail, from the first.
    #[serde(default = "FunctionFailure::once")]
    pub times: u32,
}

impl FunctionFailure {
    fn default_code() -> String {
        "SubnetOutOfIPAddresses".into()
    }
    fn default_reason() -> String {
        "Lambda was unable to configure access to your environment variables because the subnet has no available IP addresses.".into()
    }

    fn once() -> u32 {
        1
    }

    /// The first create of `function` fails with SubnetOutOfIPAddresses.
    pub fn out_of_addresses(function: &str) -> FunctionFailure {
        FunctionFailure {
            function: function.to_owned(),
            state_reason_code: FunctionFailure::default_code(),
            state_reason: FunctionFailure::default_reason(),
            times: 1,
        }
    }

    /// The first create of `function` fails with Lambda's `InternalError`.
    pub fn internal_error(function: &str) -> FunctionFailure {
        FunctionFailure {
            function: function.to_owned(),
            state_reason_code: "InternalError".into(),
            state_reason: "An internal error occurred. Please try again.".into(),
            times: 1,
        }
    }
}

/// A NAT gateway that AWS fails to create, with its `FailureCode` and `FailureMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatFailure {
    pub nth: u64,
    #[serde(default = "NatFailure::default_code")]
    pub failure_code: String,
    #[serde(default = "NatFailure::default_message")]
    pub failure_message: String,
}

impl NatFailure {
    fn default_code() -> String {
        "InternalError".into()
    }
    fn default_message() -> String {
        "Network interface eni-00000000, created and used internally by this NAT gateway is in an invalid state. Please try again.".into()
    }

    /// The k-th create fails with AWS's InternalError (NatGateway data type, FailureCode).
    pub fn internal_error(nth: u64) -> NatFailure {
        NatFailure {
            nth,
            failure_code: NatFailure::default_code(),
            failure_message: NatFailure::default_message(),
        }
    }
}

/// Latency added to every AWS call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    Fixed {
        ms: u64,
    },
    /// Uniform in `[min_ms, max_ms]`, drawn from the scenario's seed.
    Uniform {
        min_ms: u64,
        max_ms: u64,
    },
}

/// A fault and which calls it hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub fault: Fault,
    #[serde(default, rename = "match")]
    pub matches: CallMatcher,
    pub when: Trigger,
}

/// Which calls a rule considers; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallMatcher {
    /// SigV4 service names (`ec2`, `lambda`...).
    pub services: Vec<String>,
    /// Operation names (`CreateVpc`); empty means any.
    pub operations: Vec<String>,
    /// `Some(true)`: only mutating calls; `Some(false)`: only reads.
    pub mutating: Option<bool>,
}

impl CallMatcher {
    pub fn matches(&self, op: &crate::protocol::Operation) -> bool {
        (self.services.is_empty() || self.services.contains(&op.service))
            && (self.operations.is_empty() || self.operations.contains(&op.name))
            && self.mutating.is_none_or(|m| m == op.mutating)
    }
}

/// When a rule fires among the calls it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Each matching call with this probability (0.0..=1.0), from the scenario's seed.
    Rate(f64),
    /// Only the k-th matching call (1-based), counted from when the scenario was set.
    Nth(u64),
    /// Every matching call.
    Always,
}

/// What a fault does to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The service's own throttling error, in its wire format (see `faults.rs`).
    Throttle,
    /// HTTP 500 with the service's internal-error body.
    InternalError,
    /// HTTP 503 with the service's unavailable body.
    ServiceUnavailable,
    /// The connection is closed before the call reaches moto: nothing happened.
    DropConnection,
    /// The call reaches moto and takes effect, then the connection is closed: the client cannot know.
    LostResponse,
}

/// How long AWS keeps things in their in-between states. Zero means moto's instant behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// A new NAT gateway reads `pending` for this long, then `available`.
    pub nat_pending_ms: u64,
    /// A deleted NAT gateway reads `deleting` for this long, then `deleted`.
    pub nat_deleting_ms: u64,
    /// A new function reads `State: Pending` for this long.
    pub lambda_pending_ms: u64,
    /// After a configuration or code update, `LastUpdateStatus: InProgress` for this long.
    pub lambda_update_ms: u64,
    /// A new IAM role, or one a policy was attached to, cannot be assumed by Lambda for this long
    /// (IAM's eventual consistency).
    pub role_propagation_ms: u64,
    /// A new EC2 id is not found by the mutating calls naming it, nor by a Describe* listing it,
    /// for this long (`consistency.rs`).
    pub fresh_id_ms: u64,
    /// After a NAT gateway reads `deleted`, its Elastic IP's ReleaseAddress and AssociateAddress
    /// are refused for this long (`consistency.rs`).
    pub address_settling_ms: u64,
}

/// Lambda's Hyperplane ENIs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HyperplaneEnis {
    /// How long the ENIs stay after the function leaves the VPC or is deleted.
    pub linger_ms: u64,
}

impl Scenario {
    /// What AWS does, with every delay multiplied by `scale` (1.0 = the real durations of issue 5:
    /// NAT pending 60 s, Lambda pending 10 s, role propagation 8 s, lingering ENIs 90 s; and of
    /// issue 15: fresh ids unknown for 5 s, an Elastic IP refused for 5 s after its NAT gateway
    /// reads `deleted`), AWS's dependency rules, and client tokens answered as AWS does.
    pub fn aws_like(scale: f64) -> Scenario {
        let ms = |seconds: f64| (seconds * 1000.0 * scale).round() as u64;
        Scenario {
            timing: Timing {
                nat_pending_ms: ms(60.0),
                nat_deleting_ms: ms(60.0),
                lambda_pending_ms: ms(10.0),
                lambda_update_ms: ms(5.0),
                role_propagation_ms: ms(8.0),
                fresh_id_ms: ms(5.0),
                address_settling_ms: ms(5.0),
            },
            dependency_rules: true,
            hyperplane_enis: Some(HyperplaneEnis {
                linger_ms: ms(90.0),
            }),
            client_tokens: true,
            // Field reports of AL2023 NAT instances: ready 1–2 minutes after launch (cloud-init,
            // then the package install).
            nat_boot: NatBoot {
                ready_after_ms: ms(60.0),
                never_ready: Vec::new(),
                replacement_after_ms: ms(60.0),
            },
            ..Scenario::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_reads_from_json() {
        let json = r#"{
            "seed": 7,
            "latency": {"uniform": {"min_ms": 10, "max_ms": 50}},
            "faults": [
                {"fault": "throttle", "match": {"services": ["ec2"]}, "when": {"rate": 0.2}},
                {"fault": "lost_response", "match": {"operations": ["CreateVpc"]}, "when": {"nth": 1}}
            ],
            "pause_after_mutating": 3,
            "timing": {"nat_pending_ms": 1000},
            "dependency_rules": true,
            "hyperplane_enis": {"linger_ms": 2000}
        }"#;
        let s: Scenario = serde_json::from_str(json).unwrap();
        assert_eq!(s.faults[1].when, Trigger::Nth(1));
        assert_eq!(s.timing.nat_pending_ms, 1000);
        let back: Scenario = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn aws_like_scales_issue_5_s_figures() {
        let real = Scenario::aws_like(1.0);
        assert_eq!(real.timing.nat_pending_ms, 60_000);
        assert_eq!(real.timing.lambda_pending_ms, 10_000);
        assert_eq!(real.timing.role_propagation_ms, 8_000);
        assert_eq!(
            real.hyperplane_enis,
            Some(HyperplaneEnis { linger_ms: 90_000 })
        );
        assert!(real.dependency_rules);
        assert_eq!(Scenario::aws_like(0.01).timing.nat_pending_ms, 600);
        assert_eq!(real.nat_boot.ready_after_ms, 60_000);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Scenario>(r#"{"latency_ms": 5}"#).is_err());
    }
}
