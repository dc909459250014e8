//! An IAM policy evaluator for the suites: does an identity policy allow a request, conditions
//! included? moto does not enforce IAM, so without this a policy that denies one of fixedip's own
//! calls (a condition key the call does not carry, a resource the statement does not name) passes
//! every test and fails on the first real account.
//!
//! What it implements, from the IAM User Guide's policy evaluation logic
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! a request is allowed when an `Allow` statement matches its action, its resource and every
//! condition, and no `Deny` statement matches; an EC2 call that names several resources is
//! authorized once per resource (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html>),
//! each with that resource's own `aws:ResourceTag/*`. Condition operators: `StringEquals`,
//! `StringLike`, `StringNotEquals`, `ArnEquals`, `ArnLike`, `Null`, `Bool`, and the
//! `ForAllValues:`/`ForAnyValue:` set forms. An operator it does not know denies, so that the
//! evaluator never allows what it cannot judge. Not modelled: `NotAction`/`NotResource`,
//! permissions boundaries, SCPs, resource policies (fixedip's document uses none of them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One authorization AWS makes: an action on one resource, in a context of condition keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorization {
    /// `service:Action`, as IAM names it (`lambda:InvokeFunction`, not the API's `Invoke`).
    pub action: String,
    /// The resource's ARN, or `*` for actions that take no resource-level permissions.
    pub resource: String,
    /// Condition keys and their values (`aws:ResourceTag/fixedip:stack`, `ec2:CreateAction`...).
    pub context: BTreeMap<String, Vec<String>>,
}

impl Authorization {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Authorization {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context
            .entry(key.into())
            .or_default()
            .push(value.into());
        self
    }

    /// Each tag as `<prefix>/<key>` (`aws:ResourceTag`, `aws:RequestTag`), and the request's keys
    /// as `aws:TagKeys` when they are request tags.
    pub fn with_tags(mut self, prefix: &str, tags: &[(String, String)]) -> Self {
        for (key, value) in tags {
            self = self.with(format!("{prefix}/{key}"), value.clone());
            if prefix == "aws:RequestTag" {
                self = self.with("aws:TagKeys", key.clone());
            }
        }
        self
    }
}

impl std::fmt::Display for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        if !self.context.is_empty() {
            write!(f, " with {:?}", self.context)?;
        }
        Ok(())
    }
}

/// Whether `policy` (an identity policy document) allows `request`; the reason when it does not.
pub fn evaluate(policy: &Value, request: &Authorization) -> Result<(), String> {
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => return Err("the policy has no Statement".into()),
    };
    let mut allowed_by = None;
    for statement in &statements {
        let matches = strings(&statement["Action"])
            .iter()
            .any(|pattern| matches_ignoring_case(pattern, &request.action))
            && strings(&statement["Resource"])
                .iter()
                .any(|pattern| wildcard(pattern, &request.resource))
            && conditions_hold(&statement["Condition"], &request.context)?;
        if !matches {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => {
                return Err(format!("denied by statement {}", sid(statement)));
            }
            Some("Allow") => allowed_by = Some(sid(statement)),
            other => return Err(format!("a statement's Effect is {other:?}")),
        }
    }
    match allowed_by {
        Some(_) => Ok(()),
        None => Err("no statement allows it (implicit deny)".into()),
    }
}

fn sid(statement: &Value) -> String {
    statement["Sid"]
        .as_str()
        .unwrap_or("without a Sid")
        .to_owned()
}

/// A JSON string or list of strings, as policies write both.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

/// IAM's `*` (any run of characters) and `?` (one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer glob with backtracking to the last `*`.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Action names are case-insensitive in IAM.
fn matches_ignoring_case(pattern: &str, action: &str) -> bool {
    wildcard(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

fn conditions_hold(
    condition: &Value,
    context: &BTreeMap<String, Vec<String>>,
) -> Result<bool, String> {
    let Some(blocks) = condition.as_object() else {
        return Ok(true);
    };
    for (operator, keys) in blocks {
        let Some(keys) = keys.as_object() else {
            return Err(format!("condition {operator} is not an object"));
        };
        for (key, wanted) in keys {
            // Condition keys are case-insensitive; tag keys inside them are compared as written.
            let present = context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_slice());
            if !condition_holds(operator, present, &strings(wanted))? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn condition_holds(
    operator: &str,
    present: Option<&[String]>,
    wanted: &[String],
) -> Result<bool, String> {
    if operator == "Null" {
        // "true": the key must be absent; "false": present.
        let absent = present.is_none_or(<[String]>::is_empty);
        return Ok(wanted.iter().all(|w| (w == "true") == absent));
    }
    let (set, base) = match operator.split_once(':') {
        Some((set @ ("ForAllValues" | "ForAnyValue"), base)) => (Some(set), base),
        _ => (None, operator),
    };
    let compare: fn(&str, &str) -> bool = match base.trim_end_matches("IfExists") {
        "StringEquals" | "ArnEquals" | "Bool" => |w, v| w == v,
        "StringEqualsIgnoreCase" => |w, v| w.eq_ignore_ascii_case(v),
        "StringLike" | "ArnLike" => wildcard,
        "StringNotEquals" => |w, v| w != v,
        _ => {
            return Err(format!(
                "the evaluator does not know condition operator {operator}"
            ))
        }
    };
    let negated = base.starts_with("StringNot");
    let values = present.unwrap_or_default();
    Ok(match set {
        // True when every value is allowed, and when there are none (IAM's documented pitfall).
        Some("ForAllValues") => values.iter().all(|v| wanted.iter().any(|w| compare(w, v))),
        Some(_) => values.iter().any(|v| wanted.iter().any(|w| compare(w, v))),
        None if values.is_empty() => base.ends_with("IfExists"),
        None if negated => values.iter().all(|v| wanted.iter().all(|w| compare(w, v))),
        None => values.iter().any(|v| wanted.iter().any(|w| compare(w, v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Read", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
                {"Sid": "Tagged", "Effect": "Allow", "Action": ["ec2:DeleteVpc", "ec2:CreateTags"],
                 "Resource": "arn:aws:ec2:*:*:vpc/*",
                 "Condition": {"Null": {"aws:ResourceTag/fixedip:stack": "false"}}},
                {"Sid": "OnCreate", "Effect": "Allow", "Action": "ec2:CreateTags",
                 "Resource": "arn:aws:ec2:*:*:subnet/*",
                 "Condition": {"StringEquals": {"ec2:CreateAction": ["CreateSubnet", "CreateVpc"]}}},
                {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole",
                 "Resource": "arn:aws:iam::*:role/fixedip-*",
                 "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
                {"Sid": "NoProd", "Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}
            ]
        })
    }

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const VPC: &str = "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1";

    #[test]
    fn actions_and_resources_match_with_wildcards() {
        let p = policy();
        assert!(evaluate(&p, &Authorization::new("ec2:DescribeVpcs", "*")).is_ok());
        assert!(evaluate(&p, &Authorization::new("EC2:describevpcs", "*")).is_ok());
        assert!(evaluate(&p, &Authorization::new("ec2:CreateVpc", "*")).is_err());
        assert!(wildcard(
            "arn:aws:iam::*:role/fixedip-*",
            "arn:aws:iam::1:role/fixedip-a-lambda"
        ));
        assert!(!wildcard(
            "arn:aws:iam::*:role/fixedip-*",
            "arn:aws:iam::1:role/other"
        ));
        assert!(wildcard("a?c*", "abcdef") && !wildcard("a?c", "ac"));
    }

    #[test]
    fn resource_tags_decide_and_a_deny_wins() {
        let p = policy();
        let delete = |t: &[(&str, &str)]| {
            Authorization::new("ec2:DeleteVpc", VPC).with_tags("aws:ResourceTag", &tags(t))
        };
        assert!(evaluate(&p, &delete(&[("fixedip:stack", "a")])).is_ok());
        assert!(evaluate(&p, &delete(&[("other", "a")])).is_err());
        let denied = evaluate(&p, &delete(&[("fixedip:stack", "a"), ("env", "prod")]));
        assert!(denied.unwrap_err().contains("NoProd"));
    }

    #[test]
    fn create_action_and_passed_service_conditions() {
        let p = policy();
        let subnet = "arn:aws:ec2:us-east-1:123456789012:subnet/new";
        let on_create = Authorization::new("ec2:CreateTags", subnet);
        assert!(evaluate(
            &p,
            &on_create.clone().with("ec2:CreateAction", "CreateSubnet")
        )
        .is_ok());
        assert!(evaluate(
            &p,
            &on_create.clone().with("ec2:CreateAction", "RunInstances")
        )
        .is_err());
        // A standalone CreateTags carries no ec2:CreateAction: the statement does not apply.
        assert!(evaluate(&p, &on_create).is_err());
        let pass = Authorization::new(
            "iam:PassRole",
            "arn:aws:iam::1:role/fixedip-a-us-east-1-lambda",
        );
        assert!(evaluate(
            &p,
            &pass
                .clone()
                .with("iam:PassedToService", "lambda.amazonaws.com")
        )
        .is_ok());
        assert!(evaluate(&p, &pass.with("iam:PassedToService", "ec2.amazonaws.com")).is_err());
    }

    #[test]
    fn set_operators_and_unknown_operators() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let wanted = keys(&["fixedip:stack", "fixedip:slot"]);
        assert!(condition_holds(
            "ForAllValues:StringEquals",
            Some(&keys(&["fixedip:slot"])),
            &wanted
        )
        .unwrap());
        assert!(
            !condition_holds("ForAllValues:StringEquals", Some(&keys(&["Name"])), &wanted).unwrap()
        );
        assert!(condition_holds("ForAllValues:StringEquals", None, &wanted).unwrap());
        assert!(!condition_holds("ForAnyValue:StringEquals", None, &wanted).unwrap());
        assert!(condition_holds("StringEqualsIfExists", None, &wanted).unwrap());
        assert!(condition_holds("NumericLessThan", None, &wanted).is_err());
    }
}
