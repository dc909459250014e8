//! Client tokens as AWS answers them, which moto does not: moto ignores CreateNatGateway's token
//! (a repeat tries a second gateway on the same address) and makes a new instance for every
//! RunInstances.
//!
//! "If you retry an API request with the same client token and the same parameters after it has
//! completed successfully, the result of the original request is returned." "A client token is
//! valid for at least 24 hours after the termination of the instance. You should not reuse a
//! client token in another call later on." (EC2 API reference, Ensuring idempotency; the current
//! guide: "If you retry a successful request using the same client token, but one or more of the
//! parameters are different … the retry fails with an IdempotentParameterMismatch error".) Since
//! 2025 RunInstances answers a token of a terminated instance with IdempotentInstanceTerminated
//! (boto/boto3 #4406). No validity window is documented for the other operations' tokens: the
//! proxy remembers them for as long as it runs.
//!
//! So a create whose token was used before gets the original answer, naming the original
//! resource even when it is deleted by now; RunInstances of a terminated instance gets
//! IdempotentInstanceTerminated; other parameters get IdempotentParameterMismatch.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::protocol::param;

/// The operations whose ClientToken the proxy honours (the SDK fills it in for the first three).
pub const WITH_TOKENS: &[&str] = &[
    "RunInstances",
    "CreateNatGateway",
    "CreateRouteTable",
    "CreateVpcEndpoint",
];

/// The first answer to each token.
#[derive(Debug, Default)]
pub struct Tokens {
    /// (caller's account key, operation, token) → what was asked and answered.
    seen: HashMap<(String, String, String), Remembered>,
}

#[derive(Debug, Clone)]
struct Remembered {
    parameters: u64,
    answer: String,
}

/// What a repeated token gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The original answer, as it was.
    Original(String),
    /// 400 with this code and message.
    Refused(&'static str, &'static str),
    /// For RunInstances: the original answer unless one of these instances is terminated.
    UnlessTerminated {
        answer: String,
        instances: Vec<String>,
    },
}

pub const TERMINATED: (&str, &str) = (
    "IdempotentInstanceTerminated",
    "The client token you have provided is associated with a terminated instance. Please use a different client token.",
);

const MISMATCH: (&str, &str) = (
    "IdempotentParameterMismatch",
    "The client token you have provided is associated with a resource that has different parameters.",
);

/// A digest of the request's parameters, the token and the tags left out (AWS compares the
/// request's parameters; the tags are the same for a repeated create anyway).
fn parameters(params: &[(String, String)]) -> u64 {
    let mut kept: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "ClientToken" && !k.starts_with("TagSpecification"))
        .collect();
    kept.sort();
    let mut hasher = DefaultHasher::new();
    kept.hash(&mut hasher);
    hasher.finish()
}

impl Tokens {
    /// What a call gets for a token seen before; `None` lets it through to moto.
    pub fn replay(
        &self,
        account: &str,
        operation: &str,
        params: &[(String, String)],
    ) -> Option<Replay> {
        if !WITH_TOKENS.contains(&operation) {
            return None;
        }
        let token = param(params, "ClientToken")?;
        let seen = self
            .seen
            .get(&(account.to_owned(), operation.to_owned(), token.to_owned()))?;
        if seen.parameters != parameters(params) {
            return Some(Replay::Refused(MISMATCH.0, MISMATCH.1));
        }
        if operation == "RunInstances" {
            return Some(Replay::UnlessTerminated {
                answer: seen.answer.clone(),
                instances: crate::upstream::xml_texts(&seen.answer, "instanceId"),
            });
        }
        Some(Replay::Original(seen.answer.clone()))
    }

    /// Remembers a successful answer to a call with a token.
    pub fn answered(
        &mut self,
        account: &str,
        operation: &str,
        params: &[(String, String)],
        answer: &str,
    ) {
        let Some(token) = param(params, "ClientToken").filter(|_| WITH_TOKENS.contains(&operation))
        else {
            return;
        };
        self.seen
            .entry((account.to_owned(), operation.to_owned(), token.to_owned()))
            .or_insert(Remembered {
                parameters: parameters(params),
                answer: answer.to_owned(),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_repeated_token_gets_the_original_answer_and_other_parameters_a_mismatch() {
        let mut tokens = Tokens::default();
        let first = params(&[
            ("SubnetId", "subnet-1"),
            ("AllocationId", "eipalloc-1"),
            ("ClientToken", "t1"),
            ("TagSpecification.1.Tag.1.Key", "a"),
        ]);
        assert_eq!(tokens.replay("acct", "CreateNatGateway", &first), None);
        tokens.answered("acct", "CreateNatGateway", &first, "<nat-1/>");
        assert_eq!(
            tokens.replay("acct", "CreateNatGateway", &first),
            Some(Replay::Original("<nat-1/>".into()))
        );
        let other = params(&[
            ("SubnetId", "subnet-2"),
            ("AllocationId", "eipalloc-1"),
            ("ClientToken", "t1"),
        ]);
        assert_eq!(
            tokens.replay("acct", "CreateNatGateway", &other),
            Some(Replay::Refused(MISMATCH.0, MISMATCH.1))
        );
        assert_eq!(
            tokens.replay("other-account", "CreateNatGateway", &first),
            None
        );
        let no_token = params(&[("SubnetId", "subnet-1")]);
        assert_eq!(tokens.replay("acct", "CreateNatGateway", &no_token), None);
    }

    #[test]
    fn run_instances_replays_unless_its_instance_is_terminated() {
        let mut tokens = Tokens::default();
        let launch = params(&[("ImageId", "ami-1"), ("ClientToken", "t2")]);
        tokens.answered(
            "acct",
            "RunInstances",
            &launch,
            "<r><instancesSet><item><instanceId>i-1</instanceId></item></instancesSet></r>",
        );
        match tokens.replay("acct", "RunInstances", &launch) {
            Some(Replay::UnlessTerminated { instances, .. }) => {
                assert_eq!(instances, vec!["i-1".to_string()])
            }
            other => panic!("{other:?}"),
        }
    }
}
