//! Counting the AWS calls fixedip makes: an SDK interceptor shared by every client.
//!
//! `--verbose` prints the counts, and the read-only commands (`plan`, `ips`, `status`) set
//! [`CallLog::forbid_mutations`] so that a mutating call from them is a loud bug, not a quiet change
//! to someone's account.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use fixedip_core::operation::is_mutating;

/// One request sent to AWS (a retried call counts once per attempt, as AWS bills and throttles).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiCall {
    /// The service as the SDK names it: `EC2`, `Lambda`, `IAM`, `STS`.
    pub service: String,
    /// The operation: `DescribeVpcs`, `CreateNatGateway`...
    pub operation: String,
}

impl ApiCall {
    /// Whether the call can change the account: fixedip-core's rule, the one the chaos proxy and the
    /// end-to-end tests apply to the same calls on the wire.
    pub fn is_mutating(&self) -> bool {
        is_mutating(&self.operation)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCounts {
    pub total: usize,
    pub mutating: usize,
}

/// The calls made through one [`super::Aws`], in the order they were sent.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    inner: Arc<CallLogInner>,
}

#[derive(Debug, Default)]
struct CallLogInner {
    calls: Mutex<Vec<ApiCall>>,
    read_only: AtomicBool,
}

impl CallLog {
    pub fn calls(&self) -> Vec<ApiCall> {
        self.inner.calls.lock().expect("call log lock").clone()
    }

    pub fn counts(&self) -> CallCounts {
        let calls = self.inner.calls.lock().expect("call log lock");
        CallCounts {
            total: calls.len(),
            mutating: calls.iter().filter(|c| c.is_mutating()).count(),
        }
    }

    /// From now on, a mutating call fails before it is sent.
    pub fn forbid_mutations(&self) {
        self.inner.read_only.store(true, Ordering::SeqCst);
    }

    pub(crate) fn interceptor(&self) -> CountCalls {
        CountCalls(self.clone())
    }
}

/// The interceptor: records each request just before it goes on the wire.
#[derive(Debug, Clone)]
pub(crate) struct CountCalls(CallLog);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "fixedip::CountCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let call = ApiCall {
            service: metadata.service().to_owned(),
            operation: metadata.name().to_owned(),
        };
        let log = &self.0.inner;
        if call.is_mutating() && log.read_only.load(Ordering::SeqCst) {
            return Err(format!(
                "fixedip bug: {} {} would change the account during a read-only command; please report it",
                call.service, call.operation
            )
            .into());
        }
        log.calls.lock().expect("call log lock").push(call);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_classified_by_the_shared_rule() {
        let call = |operation: &str| ApiCall {
            service: "EC2".into(),
            operation: operation.into(),
        };
        assert!(!call("DescribeNatGateways").is_mutating());
        assert!(!call("Invoke").is_mutating());
        assert!(call("CreateNatGateway").is_mutating());
    }
}
