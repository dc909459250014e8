//! The AWS side: one SDK configuration and one client per service, observing a stack by its tags,
//! executing a plan.
//!
//! [`Aws::connect`] resolves region and credentials the standard way (`--region`, `--profile`, the
//! environment, `~/.aws`, SSO, instance roles; `AWS_ENDPOINT_URL` is honoured by aws-config itself)
//! and proves the credentials with STS GetCallerIdentity before anything else, so that a missing
//! credential or a wrong region is refused with a clear error before any other call.

pub mod addresses;
pub mod calls;
mod emulator;
pub mod endpoints;
pub mod execute;
pub mod existing;
pub mod functions;
pub mod lease;
pub mod legacy_role;
pub mod nat_group;
pub mod nat_instance;
pub mod network;
pub mod observe;
pub mod quotas;

use std::error::Error as StdError;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_ec2::operation::describe_availability_zones::DescribeAvailabilityZonesOutput;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

pub use calls::{ApiCall, CallCounts, CallLog};

/// Where to find the account: the global `--region` and `--profile` options.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    /// A profile the user named: `--profile`, else `AWS_PROFILE`. Its credentials are used even
    /// when keys are in the environment (the SDK's default chain reads those first): `--profile
    /// prod` in a shell holding dev keys must never act on dev.
    pub profile: Option<String>,
}

impl AwsOptions {
    /// `--profile`, else a non-empty `AWS_PROFILE`.
    pub fn named_profile(flag: Option<&str>) -> Option<String> {
        flag.map(str::to_owned).or_else(|| {
            std::env::var("AWS_PROFILE")
                .ok()
                .filter(|profile| !profile.is_empty())
        })
    }
}

/// A connection to one account and region: the clients share one configuration and one call log.
#[derive(Debug, Clone)]
pub struct Aws {
    pub config: SdkConfig,
    pub region: String,
    /// The account the credentials belong to, from GetCallerIdentity.
    pub account: String,
    pub ec2: aws_sdk_ec2::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    /// Self-healing NAT instances' groups (`nat-self-healing`).
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Every request sent, for `--verbose` and for the tests' "no mutating call" checks.
    pub calls: CallLog,
    /// The region's availability zones as [`Aws::connect_by_zones`] read them to prove the
    /// credentials: taken by the first observation, which would read them anyway.
    pub zones: std::sync::Arc<std::sync::Mutex<Option<DescribeAvailabilityZonesOutput>>>,
}

/// Why fixedip could not talk to AWS. Messages never contain a credential.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AwsError {
    #[error("no AWS region is configured")]
    #[diagnostic(
        code(fixedip::aws::no_region),
        help("pass --region (e.g. --region us-east-1), set AWS_REGION, or set `region` in your AWS profile")
    )]
    NoRegion,

    #[error("`{region}` is not an AWS region name")]
    #[diagnostic(
        code(fixedip::aws::unknown_region),
        help("region names look like us-east-1 or ap-northeast-1: check --region, AWS_REGION and your profile")
    )]
    UnknownRegion { region: String },

    #[error("no AWS credentials were found: {reason}")]
    #[diagnostic(
        code(fixedip::aws::no_credentials),
        help(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws configure` or `aws sso login`, \
             or pass --profile NAME for a profile in ~/.aws/config"
        )
    )]
    NoCredentials { reason: String },

    #[error("the AWS profile `{profile}` is not defined in {}", files.join(" or "))]
    #[diagnostic(
        code(fixedip::aws::unknown_profile),
        help("check the name (`aws configure list-profiles` lists them), or create it with `aws configure --profile {profile}`; AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE move those files")
    )]
    UnknownProfile {
        profile: String,
        /// The files read, in the order the SDK reads them.
        files: Vec<String>,
    },

    #[error("AWS rejected the credentials ({code}): {message}")]
    #[diagnostic(
        code(fixedip::aws::credentials_rejected),
        help("the keys are wrong, expired or for another partition: renew them (`aws sso login`) or pick another --profile")
    )]
    CredentialsRejected { code: String, message: String },

    #[error("could not reach AWS in region `{region}`: {reason}")]
    #[diagnostic(
        code(fixedip::aws::unreachable),
        help("check the region name, the network, and AWS_ENDPOINT_URL if you set one")
    )]
    Unreachable { region: String, reason: String },

    #[error("region `{region}` offers no availability zone to this account")]
    #[diagnostic(
        code(fixedip::aws::no_availability_zones),
        help("check the region name; an opt-in region must be enabled for the account first")
    )]
    NoAvailabilityZones { region: String },

    #[error("stack `{stack}` has {} {component}s tagged as its own: {}", ids.len(), ids.join(", "))]
    #[diagnostic(
        code(fixedip::aws::duplicate),
        help("a stack has one of each: delete the extra ones, or remove their `fixedip:stack` tag, then run again")
    )]
    Duplicate {
        stack: String,
        component: &'static str,
        ids: Vec<String>,
    },

    #[error("stack `{stack}` has {} VPCs tagged as its own: {}", vpcs.len(), vpcs.join(", "))]
    #[diagnostic(code(fixedip::aws::duplicate_vpcs))]
    DuplicateVpcs {
        stack: String,
        /// Each VPC with what it holds: `vpc-1 (4 subnets)`.
        vpcs: Vec<String>,
        #[help]
        what_to_do: String,
    },

    #[error("{operation} failed: {message}")]
    #[diagnostic(code(fixedip::aws::call))]
    Call {
        operation: &'static str,
        /// The AWS error code, when AWS sent one (`UnauthorizedOperation`, `AddressLimitExceeded`...).
        code: Option<String>,
        message: String,
    },

    #[error("FIXEDIP_QUOTAS cannot be read: {reason}")]
    #[diagnostic(
        code(fixedip::aws::bad_quota_setting),
        help("set it to the raised quotas of the account as CODE=LIMIT pairs, e.g. FIXEDIP_QUOTAS=\"L-F678F1CE=10,L-FE5A380F=8\" (Service Quotas lists each quota's code), or unset it for AWS's defaults")
    )]
    BadQuotaSetting { reason: String },

    #[error("{operation}: AWS answered without {missing}")]
    #[diagnostic(code(fixedip::aws::incomplete_answer))]
    IncompleteAnswer {
        operation: &'static str,
        missing: &'static str,
    },

    #[error(
        "region `{region}` does not offer {}: {}",
        if missing.len() == 1 { "this VPC endpoint" } else { "these VPC endpoints" },
        missing.join("; ")
    )]
    #[diagnostic(
        code(fixedip::aws::endpoint_service_unavailable),
        help("remove them from `endpoints = [...]`, or deploy to a region that offers them; {region} offers: {}", offered.join(", "))
    )]
    EndpointServicesUnavailable {
        region: String,
        /// Each as "`logs` (com.amazonaws.<region>.logs, interface)" and why.
        missing: Vec<String>,
        /// The short names of the AWS services the region offers endpoints for.
        offered: Vec<String>,
    },

    #[error("NAT instance {instance} did not get ready{}: it reported: {reported}", if *failed { "" } else { " in time" })]
    #[diagnostic(
        code(fixedip::aws::nat_instance_not_ready),
        help("no route was moved to it: its AZ keeps the egress it had. The lines above are the instance's own (EC2 console output); `cargo fixedip status` shows them again. Terminate the instance and deploy again to retry with a new one, or use nat = \"gateway\"")
    )]
    NatInstanceNotReady {
        instance: String,
        /// The boot wrote its FAILED line (else: no ready line within the bound).
        failed: bool,
        reported: String,
    },

    /// NatGateway data type: "If the NAT gateway could not be created, specifies the error code
    /// for the failure" (`InternalError`: "... is in an invalid state. Please try again.",
    /// `InsufficientFreeAddressesInSubnet`, `Gateway.NotAttached`...). A deploy replaces a failed
    /// gateway once in the same run (`converge/deploy.rs`); this is what it reports when the
    /// replacement fails too.
    #[error("NAT gateway {id} is {state}: {}: {message}", code.as_deref().unwrap_or("no FailureCode"))]
    #[diagnostic(
        code(fixedip::aws::nat_gateway_failed),
        help("AWS could not create it (its FailureCode and FailureMessage are above); its Elastic IP is kept. If the code names a cause of the account's (free addresses in the subnet, an Elastic IP in use elsewhere), fix it; then run deploy again: it replaces the gateway")
    )]
    NatGatewayFailed {
        id: String,
        /// `failed`, or `deleting`/`deleted` when it went before it was ever available.
        state: String,
        code: Option<String>,
        message: String,
    },

    /// VpcEndpoint data type, `State`: "PendingAcceptance | Pending | Available | Deleting |
    /// Deleted | Rejected | Failed | Expired | Partial". A deploy replaces a failed endpoint once in
    /// the same run (`converge/deploy.rs`); this is what it reports when that fails too.
    #[error("VPC endpoint {id} is {state}")]
    #[diagnostic(
        code(fixedip::aws::endpoint_failed),
        help("AWS gives no reason for a failed endpoint: check the service is offered in every AZ of the stack (`aws ec2 describe-vpc-endpoint-services`), then run deploy again: it deletes the endpoint and makes a new one")
    )]
    EndpointFailed { id: String, state: String },

    /// Lambda's function states: "When function creation fails, Lambda sets the function state
    /// to failed, and you must delete and recreate the function"; an update can fail too. A
    /// deploy recreates a function that failed its creation once in the same run
    /// (`converge/deploy.rs`); this is what it reports otherwise.
    #[error("function {name} {failed}: {}: {reason}", code.as_deref().unwrap_or("no StateReasonCode"))]
    #[diagnostic(
        code(fixedip::aws::function_failed),
        help("Lambda's reason is above: fix what it names (free addresses in the private subnets, the role's permissions...), then run deploy again: a function that failed its creation is deleted and created again")
    )]
    FunctionFailed {
        name: String,
        failed: FunctionFailure,
        code: Option<String>,
        reason: String,
    },

    #[error("timed out after {seconds} s waiting for {what}")]
    #[diagnostic(
        code(fixedip::aws::wait_timeout),
        help("AWS may still finish it: run the same command again, it continues from where it stopped")
    )]
    WaitTimeout { what: String, seconds: u64 },
}

/// What of a function Lambda failed: its creation (`State: Failed`) or its last update
/// (`LastUpdateStatus: Failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionFailure {
    Creation,
    Update,
}

impl std::fmt::Display for FunctionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FunctionFailure::Creation => "is Failed",
            FunctionFailure::Update => "failed its last update",
        })
    }
}

impl AwsError {
    /// Wraps a failed SDK call, keeping AWS's error code (when there is one) for the caller to match.
    pub fn call<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let code = error.code().map(str::to_owned);
        let message = match (&error, error.message()) {
            (SdkError::ServiceError(_), Some(message)) => message.to_owned(),
            _ => error_chain(&error),
        };
        AwsError::Call {
            operation,
            code,
            message,
        }
    }

    /// Several VPCs tagged as one stack's, each with how many subnets it holds. The advice
    /// names the ones that hold none (a CreateVpc sent twice leaves an empty one): those can go.
    pub fn duplicate_vpcs(stack: &str, held: &[(String, usize)]) -> AwsError {
        let vpcs = held
            .iter()
            .map(|(id, n)| match n {
                0 => format!("{id} (empty)"),
                1 => format!("{id} (1 subnet)"),
                n => format!("{id} ({n} subnets)"),
            })
            .collect();
        let empty: Vec<&str> = held
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(id, _)| id.as_str())
            .collect();
        let used = held.len() - empty.len();
        let what_to_do = if !empty.is_empty() && used <= 1 {
            let commands: Vec<String> = empty
                .iter()
                .map(|id| format!("`aws ec2 delete-vpc --vpc-id {id}`"))
                .collect();
            format!(
                "a stack has one VPC; {} holds nothing (left by a create that was sent twice): delete it with {} (detach and delete an internet gateway attached to it first, if any), then run again",
                empty.join(" and "),
                commands.join(" and ")
            )
        } else {
            format!(
                "a stack has one VPC, and fixedip does not guess which: keep the one your functions run in, and take each other one out of the stack, either by deleting it (`cargo fixedip destroy` cannot choose either; delete its subnets, gateways and then `aws ec2 delete-vpc --vpc-id <id>`) or by removing its tag (`aws ec2 delete-tags --resources <id> --tags Key={}`), then run again",
                fixedip_core::tags::STACK
            )
        };
        AwsError::DuplicateVpcs {
            stack: stack.to_owned(),
            vpcs,
            what_to_do,
        }
    }

    /// The AWS error code of a failed call.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// The AWS error codes that mean "these credentials are not valid", whatever the service.
const REJECTED_CREDENTIALS: &[&str] = &[
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "AuthFailure",
];

impl Aws {
    /// Loads the configuration, checks the region and the credentials, and builds the clients.
    pub async fn connect(options: &AwsOptions) -> Result<Aws, AwsError> {
        let mut aws = Aws::connect_unverified(options).await?;
        let identity = aws
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::first_call(&aws.region, "GetCallerIdentity", e))?;
        aws.account = identity
            .account()
            .ok_or(AwsError::IncompleteAnswer {
                operation: "GetCallerIdentity",
                missing: "an account id",
            })?
            .to_owned();
        Ok(aws)
    }

    /// As [`Aws::connect`], proving the credentials with the first read the observation makes
    /// anyway (DescribeAvailabilityZones, kept for it: [`Aws::take_zones`]) instead of STS
    /// GetCallerIdentity: deploy, plan and destroy, which need no account id, then refuse bad
    /// credentials before a build as they did, one call and one round trip sooner (issue 18).
    /// `account` is empty.
    pub async fn connect_by_zones(options: &AwsOptions) -> Result<Aws, AwsError> {
        let aws = Aws::connect_unverified(options).await?;
        let zones = aws
            .ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| AwsError::first_call(&aws.region, "DescribeAvailabilityZones", e))?;
        *aws.zones.lock().expect("not poisoned") = Some(zones);
        Ok(aws)
    }

    /// As [`Aws::connect`] without asking STS who the credentials belong to: for `ips`, which
    /// answers with one call. `account` is empty; the first call's errors go through
    /// [`AwsError::first_call`].
    pub async fn connect_unverified(options: &AwsOptions) -> Result<Aws, AwsError> {
        // Adaptive retries slow down on throttling instead of failing: a deploy makes bursts of
        // Describe calls, and AWS throttles EC2 per account. 8 attempts, not 5: one read that
        // fails five times in a row ends a whole run, and under the reliability suite's 20 %
        // throttling plus 5 % 5xx a destroy's 200 reads met that about once in five runs; 8
        // makes it about 1 in 70,000 per call. terraform-provider-aws retries AWS calls up to 25
        // times by default (its `max_retries`).
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::adaptive().with_max_attempts(8));
        if let Some(profile) = &options.profile {
            check_profile_exists(profile).await?;
            // The named profile's credentials, not the environment's keys, which the default chain
            // would read first.
            let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build();
            loader = loader
                .profile_name(profile)
                .credentials_provider(credentials);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let config = loader.load().await;

        let region = config.region().ok_or(AwsError::NoRegion)?.to_string();
        if !fixedip_core::settings::is_region(&region) {
            return Err(AwsError::UnknownRegion { region });
        }
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| AwsError::NoCredentials {
                reason: "no credential source is configured".to_owned(),
            })?;
        // Asked directly so that "none found" is told apart from "rejected by AWS".
        if let Err(error) = credentials.provide_credentials().await {
            return Err(AwsError::NoCredentials {
                reason: error_chain(&error),
            });
        }

        Ok(Aws::from_config(config))
    }

    /// The clients of one loaded configuration, every call counted in a new [`CallLog`];
    /// `account` empty. (The tests build theirs so, against the emulator or recorded answers.)
    pub fn from_config(config: SdkConfig) -> Aws {
        let calls = CallLog::default();
        let counter = calls.interceptor();
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        );
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        );
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        );
        let autoscaling = aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(&config)
                .interceptor(counter)
                .build(),
        );
        Aws {
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            config,
            account: String::new(),
            ec2,
            lambda,
            iam,
            sts,
            autoscaling,
            calls,
            zones: Default::default(),
        }
    }

    /// The availability zones [`Aws::connect_by_zones`] read, once.
    pub fn take_zones(&self) -> Option<DescribeAvailabilityZonesOutput> {
        self.zones.lock().expect("not poisoned").take()
    }
}

impl AwsError {
    /// The error of the first call a command makes: unreachable endpoint and rejected credentials
    /// are told apart from other failures.
    pub fn first_call<E>(
        region: &str,
        operation: &'static str,
        error: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        match &error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError::Unreachable {
                region: region.to_owned(),
                reason: error_chain(&error),
            },
            _ if error
                .code()
                .is_some_and(|code| REJECTED_CREDENTIALS.contains(&code)) =>
            {
                AwsError::CredentialsRejected {
                    code: error.code().unwrap_or_default().to_owned(),
                    message: error.message().unwrap_or_default().to_owned(),
                }
            }
            _ => AwsError::call(operation, error),
        }
    }
}

/// An error and its causes, `: `-separated, without the Debug dump `DisplayErrorContext` adds.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // SDK errors often repeat their cause's text in their own.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Refuses a profile that no config or credentials file defines, naming the files read (the SDK
/// would otherwise fall through to other credentials, or fail later with less to go on).
async fn check_profile_exists(profile: &str) -> Result<(), AwsError> {
    use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    let (fs, env) = (Fs::real(), Env::real());
    let defined = aws_config::profile::load(&fs, &env, &ProfileFiles::default(), None)
        .await
        .is_ok_and(|set| set.get_profile(profile).is_some());
    if defined {
        return Ok(());
    }
    let file = |variable: &str, default: &str| {
        std::env::var(variable)
            .ok()
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    Err(AwsError::UnknownProfile {
        profile: profile.to_owned(),
        files: vec![
            file("AWS_CONFIG_FILE", "~/.aws/config"),
            file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_vpcs_name_the_empty_one_to_delete() {
        let error = AwsError::duplicate_vpcs(
            "default",
            &[("vpc-1".to_owned(), 4), ("vpc-2".to_owned(), 0)],
        );
        assert_eq!(
            error.to_string(),
            "stack `default` has 2 VPCs tagged as its own: vpc-1 (4 subnets), vpc-2 (empty)"
        );
        let AwsError::DuplicateVpcs { what_to_do, .. } = &error else {
            unreachable!()
        };
        assert!(
            what_to_do.contains("`aws ec2 delete-vpc --vpc-id vpc-2`")
                && !what_to_do.contains("vpc-1"),
            "{what_to_do}"
        );
        // Both in use: no guess, both ways out named.
        let error = AwsError::duplicate_vpcs(
            "default",
            &[("vpc-1".to_owned(), 4), ("vpc-2".to_owned(), 2)],
        );
        let AwsError::DuplicateVpcs { what_to_do, .. } = &error else {
            unreachable!()
        };
        assert!(
            what_to_do.contains("does not guess") && what_to_do.contains("delete-tags"),
            "{what_to_do}"
        );
    }
}
