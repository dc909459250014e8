//! Injected errors, written as each service writes them, so that the SDK's own error parsing and retry
//! classification are what get exercised.

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::protocol::{Operation, Protocol};
use crate::scenario::{Fault, FaultRule, Trigger};

/// An error answer ready to send.
pub type ErrorResponse = Response<Bytes>;

/// Decides, call by call, which fault (if any) fires. Counters restart when the scenario is replaced.
pub struct FaultPlan {
    rules: Vec<FaultRule>,
    /// How many calls each rule has matched so far (for `Trigger::Nth`).
    matched: Vec<u64>,
    rng: fastrand::Rng,
}

impl FaultPlan {
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        let matched = vec![0; rules.len()];
        FaultPlan {
            rules,
            matched,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The fault for this call: the first rule that fires. Every matching rule counts the call, so that
    /// "the k-th matching call" of one rule does not depend on what the rules before it did.
    pub fn decide(&mut self, op: &Operation) -> Option<Fault> {
        let mut chosen = None;
        for (rule, matched) in self.rules.iter().zip(self.matched.iter_mut()) {
            if !rule.matches.matches(op) {
                continue;
            }
            *matched += 1;
            let fires = match rule.when {
                Trigger::Always => true,
                Trigger::Nth(k) => *matched == k,
                Trigger::Rate(p) => self.rng.f64() < p,
            };
            if fires && chosen.is_none() {
                chosen = Some(rule.fault);
            }
        }
        chosen
    }

    /// A draw in `[min, max]` from the same seeded generator (used for latency).
    pub fn uniform(&mut self, min: u64, max: u64) -> u64 {
        self.rng.u64(min..=max.max(min))
    }
}

/// The throttling error of the operation's service, as AWS sends it.
pub fn throttle(op: &Operation) -> ErrorResponse {
    match op.protocol {
        // EC2 throttles with 503 and `RequestLimitExceeded`.
        Protocol::Ec2Query => ec2_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        Protocol::AwsQuery => query_error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        Protocol::RestJson => rest_json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            r#"{"Type":"User","message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}"#
                .into(),
        ),
        Protocol::Json11 => json11_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
    }
}

/// HTTP 500 or 503 with the body the service sends for it.
pub fn server_error(op: &Operation, status: StatusCode) -> ErrorResponse {
    let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
    match op.protocol {
        Protocol::Ec2Query => {
            let code = if unavailable {
                "Unavailable"
            } else {
                "InternalError"
            };
            ec2_error(status, code, "An internal error has occurred")
        }
        Protocol::AwsQuery => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalFailure"
            };
            query_error(status, code, "An internal error has occurred")
        }
        Protocol::RestJson => {
            let code = "ServiceException";
            let body = format!(r#"{{"Type":"Service","message":"{code}"}}"#);
            rest_json_error(status, code, body)
        }
        Protocol::Json11 => {
            let code = if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalServerError"
            };
            json11_error(status, code, "An internal error has occurred")
        }
    }
}

/// An EC2 answer the proxy gives on moto's behalf (a replayed client token's original answer).
pub fn ec2_answer(body: String) -> ErrorResponse {
    respond(StatusCode::OK, "text/xml;charset=UTF-8", None, body)
}

/// EC2's error document: `<Response><Errors><Error>`.
pub fn ec2_error(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
         <Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        xml_escape(message),
        request_id()
    );
    respond(status, "text/xml;charset=UTF-8", None, body)
}

/// IAM's and STS's error document: `<ErrorResponse><Error>`.
pub fn query_error(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>{kind}</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(message),
        request_id()
    );
    respond(status, "text/xml", None, body)
}

/// Lambda's errors: the type in `x-amzn-ErrorType`, details in the JSON body.
pub fn rest_json_error(status: StatusCode, code: &str, body: String) -> ErrorResponse {
    respond(status, "application/json", Some(code), body)
}

/// A Lambda error with the usual `{"Type": "User", "message": ...}` body.
pub fn lambda_user_error(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    let body = serde_json::json!({ "Type": "User", "message": message }).to_string();
    rest_json_error(status, code, body)
}

/// SSM's errors: `{"__type": code, "message": ...}`.
pub fn json11_error(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    respond(status, "application/x-amz-json-1.1", None, body)
}

fn respond(
    status: StatusCode,
    content_type: &str,
    error_type: Option<&str>,
    body: String,
) -> ErrorResponse {
    let mut builder = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header("x-amzn-RequestId", request_id());
    if let Some(error_type) = error_type {
        builder = builder.header("x-amzn-ErrorType", error_type);
    }
    builder
        .body(Bytes::from(body))
        .expect("static status and header names are valid")
}

/// A request id shaped like AWS's (a UUID), only for the look of logs.
fn request_id() -> String {
    let n = fastrand::u128(..);
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::CallMatcher;

    fn op(name: &str, protocol: Protocol) -> Operation {
        Operation {
            service: "ec2".into(),
            name: name.into(),
            mutating: true,
            protocol,
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn nth_fires_once_on_the_kth_matching_call() {
        let rule = FaultRule {
            fault: Fault::LostResponse,
            matches: CallMatcher {
                operations: vec!["CreateSubnet".into()],
                ..CallMatcher::default()
            },
            when: Trigger::Nth(2),
        };
        let mut plan = FaultPlan::new(vec![rule], 1);
        let subnet = op("CreateSubnet", Protocol::Ec2Query);
        let vpc = op("CreateVpc", Protocol::Ec2Query);
        assert_eq!(plan.decide(&subnet), None);
        assert_eq!(plan.decide(&vpc), None);
        assert_eq!(plan.decide(&subnet), Some(Fault::LostResponse));
        assert_eq!(plan.decide(&subnet), None);
    }

    #[test]
    fn rates_are_close_to_the_asked_rate_and_repeatable() {
        let rule = FaultRule {
            fault: Fault::Throttle,
            matches: CallMatcher::default(),
            when: Trigger::Rate(0.2),
        };
        let count = |seed| {
            let mut plan = FaultPlan::new(vec![rule.clone()], seed);
            let o = op("CreateVpc", Protocol::Ec2Query);
            (0..10_000).filter(|_| plan.decide(&o).is_some()).count()
        };
        let fired = count(42);
        assert!((1_800..2_200).contains(&fired), "{fired}");
        assert_eq!(fired, count(42));
    }

    #[test]
    fn each_service_throttles_in_its_own_format() {
        let ec2 = throttle(&op("CreateVpc", Protocol::Ec2Query));
        assert_eq!(ec2.status(), 503);
        assert!(std::str::from_utf8(ec2.body())
            .unwrap()
            .contains("<Code>RequestLimitExceeded</Code>"));
        let iam = throttle(&op("CreateRole", Protocol::AwsQuery));
        assert!(std::str::from_utf8(iam.body())
            .unwrap()
            .contains("<ErrorResponse"));
        let lambda = throttle(&op("CreateFunction", Protocol::RestJson));
        assert_eq!(lambda.status(), 429);
        assert_eq!(
            lambda.headers()["x-amzn-ErrorType"],
            "TooManyRequestsException"
        );
        let ssm = throttle(&op("PutParameter", Protocol::Json11));
        assert!(std::str::from_utf8(ssm.body())
            .unwrap()
            .contains("ThrottlingException"));
    }
}
