//! fixedip-chaos: an HTTP proxy between the AWS SDK and a moto server that makes moto behave more like
//! AWS: latency, throttling and 5xx in each service's wire format, dropped connections and lost responses,
//! NAT gateways and functions that take time, dependency rules, and Lambda's lingering Hyperplane ENIs.
//! Every call is identified and logged. See `docs/chaos.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fixedip_chaos::{ChaosProxy, Scenario};
//! let proxy = ChaosProxy::start("http://127.0.0.1:5000", Scenario::aws_like(0.1)).await?;
//! // Point the SDK (or `cargo fixedip`) at proxy.url() through AWS_ENDPOINT_URL, then:
//! let creates = proxy.log().iter().filter(|c| c.operation.name == "CreateVpc").count();
//! # let _ = creates; Ok(()) }
//! ```

pub mod authorization;
pub mod consistency;
mod control;
pub mod dependencies;
pub mod enis;
pub mod faults;
pub mod iam;
pub mod launch;
pub mod log;
pub mod nat_boot;
pub mod nat_group;
pub mod protocol;
pub mod proxy;
pub mod quotas;
pub mod scenario;
pub mod termination;
pub mod timing;
pub mod tokens;
pub mod upstream;
pub mod zones;

pub use iam::Authorization;
pub use log::{LogEntry, LogQueries, LogSummary, Outcome};
pub use protocol::Operation;
pub use proxy::{ChaosProxy, ProxyOptions, StartError};
pub use scenario::{
    CallMatcher, Failures, Fault, FaultRule, FunctionFailure, HyperplaneEnis, Latency, NatFailure,
    Scenario, Timing, Trigger,
};
