//! The acceptance suite (issue 19): one sequence of scenarios a maintainer runs against a real AWS
//! account (`FIXEDIP_ACC=1`), and that CI runs on every build against the emulator through the chaos
//! proxy's `aws_like` scenario, so that every line of it is exercised before anyone spends money on
//! it. terraform providers do the same with `TF_ACC` and sweepers.
//!
//! The scenarios ([`scenarios`]) deploy generated copies of the example function
//! (examples/hello-egress, [`functions`]) with `cargo fixedip` as a user runs it, probe the egress of
//! each mode ([`probe`]: on AWS the function itself fetches a what-is-my-IP service; on the
//! emulator the data-plane twin runs it), and write a report ([`report`]). Everything a run
//! creates carries its run tag ([`RunId`]), which the sweeper ([`sweep`]) looks for: a run sweeps
//! its own resources at its end, whatever happened, and `fixedip-acceptance sweep` removes what a
//! killed run left. Before it spends anything, a run against AWS says what it creates, what it
//! costs and how long it takes ([`safety`]).

pub mod cli;
mod existing;
pub mod functions;
pub mod probe;
pub mod report;
mod retry;
pub mod safety;
pub mod scenarios;
pub mod sweep;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The environment variable that lets the suite reach a real AWS account, as terraform's `TF_ACC`.
pub const ACC_VARIABLE: &str = "FIXEDIP_ACC";
/// The tag on what the suite creates itself (the existing VPC) and on its functions (fixedip's
/// `tags` setting reaches the function only): `fixedip-acceptance=<run id>`. Not `fixedip:…`:
/// settings may not use the prefix of fixedip's ownership tags.
pub const RUN_TAG: &str = "fixedip-acceptance";
/// Every stack the suite deploys is named this and its run id: fixedip tags everything it creates
/// with `fixedip:stack=<stack>`, so the stack's tag is the run tag of fixedip's own resources.
pub const STACK_PREFIX: &str = "fixedip-acc-";

/// Where a run goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// moto behind the chaos proxy at `endpoint` (its `aws_like` scenario); dummy credentials.
    Emulator { endpoint: String },
    /// A real account in `region`, with the standard credential chain of the environment.
    Aws { region: String },
}

/// The region every emulator run deploys to.
pub const EMULATOR_REGION: &str = crate::REGION;

impl Target {
    pub fn region(&self) -> &str {
        match self {
            Target::Emulator { .. } => EMULATOR_REGION,
            Target::Aws { region } => region,
        }
    }

    pub fn is_aws(&self) -> bool {
        matches!(self, Target::Aws { .. })
    }

    /// The SDK configuration of the suite's own calls (the sweeper, the existing VPC, the probes).
    pub async fn sdk_config(&self) -> SdkConfig {
        let loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region().to_owned()));
        match self {
            Target::Emulator { endpoint } => {
                loader
                    .endpoint_url(endpoint)
                    .credentials_provider(aws_sdk_sts::config::Credentials::new(
                        crate::ACCESS_KEY_ID,
                        crate::SECRET_ACCESS_KEY,
                        None,
                        None,
                        "fixedip-acceptance",
                    ))
                    .load()
                    .await
            }
            Target::Aws { .. } => loader.load().await,
        }
    }

    /// The environment of a `cargo fixedip` run: on the emulator, the endpoint and dummy
    /// credentials and nothing else of the caller's AWS settings; on AWS, the region (the
    /// caller's credential chain is left as it is).
    pub fn cli_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_REGION", self.region().to_owned()),
            ("AWS_DEFAULT_REGION", self.region().to_owned()),
        ];
        if let Target::Emulator { endpoint } = self {
            env.extend([
                ("AWS_ENDPOINT_URL", endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", crate::ACCESS_KEY_ID.to_owned()),
                ("AWS_SECRET_ACCESS_KEY", crate::SECRET_ACCESS_KEY.to_owned()),
                (
                    "AWS_CONFIG_FILE",
                    "/nonexistent/fixedip-acceptance".to_owned(),
                ),
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    "/nonexistent/fixedip-acceptance".to_owned(),
                ),
                ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
                // The run's functions are a workspace of their own: the CLI's `cargo metadata`
                // would otherwise fetch their dependencies' manifests. Nothing reaches the
                // internet in a test.
                ("CARGO_NET_OFFLINE", "true".to_owned()),
            ]);
        }
        env
    }
}

/// Why a run against AWS does not start.
pub fn aws_target(acc: Option<&str>, region: Option<&str>) -> Result<Option<Target>, String> {
    match acc {
        None | Some("") | Some("0") => Ok(None),
        Some("1") => match region {
            Some(region) if fixedip_core::settings::is_region(region) => Ok(Some(Target::Aws {
                region: region.to_owned(),
            })),
            Some(region) => Err(format!(
                "{region:?} is not an AWS region: give the region to run in with --region, e.g. \
                 --region us-east-1"
            )),
            None => Err(format!(
                "{ACC_VARIABLE}=1 runs the suite against a real AWS account: say in which region \
                 with --region (AWS_REGION is not read, so that a shell's default never decides \
                 where money is spent)"
            )),
        },
        Some(other) => Err(format!(
            "{ACC_VARIABLE}={other:?}: set it to 1 to run against AWS, or leave it unset for the \
             emulator"
        )),
    }
}

/// A run's id: its stack is `fixedip-acc-<id>`, and what the suite makes carries
/// `fixedip-acceptance=<id>`. Eight hex digits of the clock and the process id: two runs started in
/// the same account at once get different ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId(pub String);

impl RunId {
    pub fn new() -> RunId {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mixed = (nanos as u64).rotate_left(17) ^ u64::from(std::process::id());
        RunId(format!("{:08x}", mixed as u32))
    }

    /// The stack every scenario of the run deploys.
    pub fn stack(&self) -> String {
        format!("{STACK_PREFIX}{}", self.0)
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which runs a sweep removes: one, or every run of the suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    One(RunId),
    All,
}

impl Runs {
    /// Whether a resource with these tags is the suite's: `fixedip-acceptance` of the run, or
    /// `fixedip:stack` naming the run's stack. Nothing else is ever touched.
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        tags.into_iter().any(|(key, value)| match (key, self) {
            (RUN_TAG, Runs::One(run)) => value == run.0,
            (RUN_TAG, Runs::All) => !value.is_empty(),
            ("fixedip:stack", _) => self.owns_stack(value),
            _ => false,
        })
    }

    /// Whether the stack `name` is one of the suite's runs.
    pub fn owns_stack(&self, name: &str) -> bool {
        match self {
            Runs::One(run) => name == run.stack(),
            Runs::All => name
                .strip_prefix(STACK_PREFIX)
                .is_some_and(|id| !id.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_aws_only_with_the_variable_and_a_region() {
        assert!(aws_target(None, Some("us-east-1")).unwrap().is_none());
        assert!(aws_target(Some("0"), None).unwrap().is_none());
        let err = aws_target(Some("1"), None).unwrap_err();
        assert!(err.contains("--region"), "{err}");
        assert!(aws_target(Some("1"), Some("mars-1")).is_err());
        assert!(aws_target(Some("yes"), Some("us-east-1")).is_err());
        assert!(matches!(
            aws_target(Some("1"), Some("eu-west-1")),
            Ok(Some(Target::Aws { region })) if region == "eu-west-1"
        ));
    }

    #[test]
    fn a_sweep_owns_the_run_tag_or_the_run_s_stack_and_nothing_else() {
        let run = RunId("0a1b2c3d".into());
        let one = Runs::One(run.clone());
        assert!(one.owns([(RUN_TAG, "0a1b2c3d")]));
        assert!(one.owns([("fixedip:stack", "fixedip-acc-0a1b2c3d")]));
        assert!(!one.owns([("fixedip:stack", "fixedip-acc-ffffffff")]));
        assert!(!one.owns([
            ("fixedip:stack", "default"),
            ("Name", "fixedip-acc-0a1b2c3d")
        ]));
        assert!(Runs::All.owns([("fixedip:stack", "fixedip-acc-ffffffff")]));
        assert!(!Runs::All.owns([("fixedip:stack", "fixedip-acc-")]));
        assert!(!Runs::All.owns([("fixedip:stack", "default")]));
        assert!(!Runs::All.owns([]));
        assert!(fixedip_core::requirements::StackName::parse(&run.stack()).is_ok());
    }
}
