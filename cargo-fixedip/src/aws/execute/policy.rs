//! How AWS answers, in one place: every call the executor makes goes through [`Context::send`],
//! which classifies a failed answer and says whether it is worth sending again, after how long,
//! and for how long in all. The planner decides what to do; this decides only how to carry out one
//! call on a service that is eventually consistent, throttles and finishes things on its own.
//!
//! The classes, and what AWS documents about each:
//!
//! - **not visible yet**: a call naming an id this run just created answers `*.NotFound`. "The
//!   Amazon EC2 API follows an eventual consistency model"; AWS advises retries "starting with a
//!   couple of seconds of wait time, and increasing gradually up to five minutes"
//!   (docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html; terraform issue 7104, PR
//!   7156; terraform-provider-aws waits up to 5 minutes, `ec2PropagationTimeout`).
//! - **propagating**: Lambda cannot assume a role yet ("The role defined for the function cannot be
//!   assumed by Lambda", "The provided execution role does not have permissions"), on CreateFunction
//!   *and* UpdateFunctionConfiguration (apex/up issue 189), whether the role is new or had a policy
//!   attached moments ago. terraform retries both calls for 5 minutes (`retryFunctionOp`).
//! - **throttled**: `RequestLimitExceeded`, `Throttling`, `TooManyRequestsException`... The SDK's
//!   adaptive retries come first; past them, the call is sent again within a time budget with
//!   jitter, as the EC2 throttling guide advises ("use an exponential backoff algorithm… implement
//!   a maximum delay interval… You can also use jitter").
//! - **outcome unknown**: no answer, or a 5xx. Safe to send again only for a call whose repeat is
//!   harmless; a create that must not happen twice looks for what it made first
//!   ([`Context::create_or_find`]).
//! - **in use**: `DependencyViolation`, an interface "currently in use": something AWS releases on
//!   its own (usually Lambda's Hyperplane interfaces: P99 about 35 minutes, terraform waits 45).
//! - **conflict**: Lambda's `ResourceConflictException` while a function is `Pending` or an update
//!   is `InProgress` (Lambda developer guide, function states).
//! - **address settling**: right after its NAT gateway reads `deleted`, an Elastic IP's
//!   ReleaseAddress or AssociateAddress can answer `AuthFailure` or
//!   `InvalidNetworkInterfaceID.NotFound` for seconds (terraform-provider-aws issue 49299;
//!   eformat/sno-for-100 #5: "a short pause" fixed it).
//! - **final**: anything else; reported to the user at once.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use super::*;

/// What a failed answer means for the call that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    NotVisibleYet,
    Propagating,
    Throttled,
    OutcomeUnknown,
    InUse,
    Conflict,
    AddressSettling,
    Final,
}

impl Class {
    /// What the executor waits for, as the user reads it on stderr.
    pub fn waiting_for(self) -> &'static str {
        match self {
            Class::NotVisibleYet => {
                "AWS to make what was just created visible (eventual consistency)"
            }
            Class::Propagating => "the IAM role to reach Lambda",
            Class::Throttled => "AWS's request rate limit (throttled)",
            Class::OutcomeUnknown => "AWS to answer (no answer or a server error)",
            Class::InUse => "what still uses it to go (DependencyViolation)",
            Class::Conflict => {
                "the function's previous change to finish (ResourceConflictException)"
            }
            Class::AddressSettling => "the Elastic IP to leave its deleted NAT gateway",
            Class::Final => "nothing",
        }
    }
}

/// A failed answer, as far as the policy needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failure<'e> {
    pub code: Option<&'e str>,
    pub message: Option<&'e str>,
    /// The HTTP status, when AWS answered at all.
    pub status: Option<u16>,
}

impl<'e> Failure<'e> {
    pub fn of<E: ProvideErrorMetadata>(error: &'e SdkError<E, HttpResponse>) -> Failure<'e> {
        let status = match error {
            SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
            SdkError::ResponseError(response) => Some(response.raw().status().as_u16()),
            _ => None,
        };
        Failure {
            code: error.code(),
            message: error.message(),
            status,
        }
    }
}

/// The codes services use for throttling.
const THROTTLED: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequestsException",
    "EC2ThrottledException",
];

/// What Lambda answers while a role change has not reached it. Lambda's code for this is the
/// generic InvalidParameterValueException: only its message tells this case from a wrong value
/// (terraform matches the same two messages).
const ROLE_NOT_YET_ASSUMABLE: &[&str] = &[
    "cannot be assumed by Lambda",
    "The provided execution role does not have permissions",
];

/// Classifies one failed answer to `operation`. `fresh`: the call names an id this run created
/// (a not-found then means "not visible yet", otherwise "not there").
pub fn classify(operation: &str, failure: Failure<'_>, fresh: bool) -> Class {
    let code = failure.code.unwrap_or_default();
    let message = failure.message.unwrap_or_default();
    let address_call = matches!(operation, "ReleaseAddress" | "AssociateAddress");
    if THROTTLED.contains(&code) {
        return Class::Throttled;
    }
    if failure.status.is_none_or(|s| s >= 500) && !code.ends_with("Exception") {
        // No answer at all, or a server error (Lambda's 502s with a named exception are below).
        return Class::OutcomeUnknown;
    }
    if address_call && matches!(code, "AuthFailure" | "InvalidNetworkInterfaceID.NotFound") {
        return Class::AddressSettling;
    }
    if code.ends_with(".NotFound") || code.ends_with("NotFound") {
        return if fresh {
            Class::NotVisibleYet
        } else {
            Class::Final
        };
    }
    match code {
        "DependencyViolation" | "InvalidNetworkInterface.InUse" => Class::InUse,
        // EC2 uses InvalidParameterValue for many things; only this message means "wait".
        "InvalidParameterValue" if message.contains("currently in use") => Class::InUse,
        "ResourceConflictException" | "ResourceNotReadyException" => Class::Conflict,
        "InvalidParameterValueException"
            if matches!(operation, "CreateFunction" | "UpdateFunctionConfiguration")
                && ROLE_NOT_YET_ASSUMABLE.iter().any(|m| message.contains(m)) =>
        {
            Class::Propagating
        }
        "ServiceException" => Class::OutcomeUnknown,
        _ => Class::Final,
    }
}

/// The first pause of every retry and poll: half a second, or the poll interval when the user
/// polls faster.
///
/// AWS asks for exponential backoff on what is eventually consistent: "Run the appropriate
/// Describe command using an exponential backoff algorithm… starting with a couple of seconds of
/// wait time, and increasing gradually" (EC2 developer guide, "Eventual consistency in the Amazon
/// EC2 API"). The pauses here still double (to `--poll-interval`, 2 s, for what ends within
/// seconds; further for throttling) and carry jitter; they only start sooner than "a couple of
/// seconds": most of what a deploy meets (a fresh id, a role Lambda cannot assume yet, a NAT
/// gateway's state) is ready within seconds, often just after the first refusal, and a pause of
/// 1–2 s there was the larger part of a fresh deploy's time beyond AWS's own waits (issue 18,
/// docs/benchmarks.md). It costs a waiting call one try more in its first 1.5 s, against EC2's
/// request rate limits, which count per API ("Request throttling for the Amazon EC2 API").
pub const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// The longest pause between two probes of ids this run created and AWS does not show yet: one
/// second. The probe is one call for all the steps that wait on the same ids ([`FreshIdProbes`]: the
/// dozen subnets, route tables and groups of a new VPC send one CreateSubnet a second between
/// them, not one each), so that the run goes on within a second of AWS showing the id, well
/// within EC2's per-API request buckets ("Request throttling for the Amazon EC2 API").
pub const FRESH_ID_CAP: Duration = Duration::from_secs(1);

impl Timeouts {
    /// [`FIRST_PAUSE`], or the poll interval when it is shorter.
    pub fn first_pause(&self) -> Duration {
        FIRST_PAUSE.min(self.poll_first)
    }
}

/// How long and how often a class of failure is retried: pauses from `first`, doubling up to
/// `cap`, with jitter, while the call has taken less than `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub first: Duration,
    pub cap: Duration,
    pub total: Duration,
}

impl Timeouts {
    /// The budget of a class; `None` for what is not retried.
    pub fn budget(&self, class: Class) -> Option<Budget> {
        let first = self.first_pause();
        // Throttling wants growing pauses (the EC2 throttling guide), and so does what may take
        // tens of minutes (Lambda's interfaces); what ends within seconds (a fresh id, a role,
        // an update) is tried again every poll, so that the run goes on within one poll of it.
        let cap = match class {
            Class::Throttled | Class::OutcomeUnknown | Class::InUse => self.poll_max,
            // One call probes for every step that names the same new ids ([`FreshIdProbes`]): it
            // may come back sooner without sending many more calls.
            Class::NotVisibleYet => self.poll_first.min(FRESH_ID_CAP),
            _ => self.poll_first,
        }
        .max(first);
        let total = match class {
            Class::NotVisibleYet => self.propagation,
            Class::Propagating => self.role_propagation,
            Class::Throttled | Class::OutcomeUnknown => self.throttling,
            Class::InUse => self.lambda_interfaces,
            Class::Conflict => self.function,
            Class::AddressSettling => self.propagation,
            Class::Final => return None,
        };
        Some(Budget { first, cap, total })
    }
}

/// The pauses of one call's retries.
pub struct Retries {
    started: Instant,
    next: Option<Duration>,
}

impl Retries {
    pub fn new() -> Retries {
        Retries {
            started: Instant::now(),
            next: None,
        }
    }

    /// The pause before the next attempt under `budget`, or `None` when the budget is spent.
    pub fn next_pause(&mut self, budget: Budget) -> Option<Duration> {
        let base = self
            .next
            .map_or(budget.first, |last| (last * 2).min(budget.cap));
        self.next = Some(base);
        let pause = jittered(base);
        (self.started.elapsed() + pause <= budget.total).then_some(pause)
    }

    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Between half and all of `pause`: calls that failed together do not all come back together.
fn jittered(pause: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = pause / 2;
    half + half.mul_f64((random % 1000) as f64 / 1000.0)
}

/// The ids this run created that AWS has not shown yet, by the set a step names: while one step's
/// call probes whether AWS knows them, every other step naming the same set waits for that call's
/// answer instead of sending its own, and tries again the moment it comes.
///
/// A new VPC's id is named by every subnet, route table and security group of the stack: each
/// refused and retried on its own schedule, a stack of six AZs sent a dozen CreateSubnet a second
/// against EC2's per-API request bucket while the id propagated, and each went on up to a pause
/// after AWS showed it (issue 18: the larger part of a fresh deploy's time beyond AWS's own chain).
#[derive(Debug, Default)]
pub(super) struct FreshIdProbes {
    /// The step that probes each set, and what wakes the ones waiting on it.
    probes: Mutex<BTreeMap<Vec<StepId>, Probe>>,
}

/// The step whose call probes a set of new ids, and what its answer wakes.
type Probe = (StepId, Arc<tokio::sync::Notify>);

impl FreshIdProbes {
    /// The new ids `step` names, as the steps that created them; a step that names none but its
    /// own (a call on what it made a moment ago) waits on itself.
    fn named_by(step: &Step) -> Vec<StepId> {
        let mut ids: Vec<StepId> = (step.action.refs().iter())
            .filter_map(|r| match r {
                Ref::Step(id) => Some(*id),
                Ref::Existing(_) => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            ids.push(step.id);
        }
        ids
    }

    /// After `step`'s call was answered "not found yet": the first step to ask probes again after
    /// `pause`; every other one waits for the prober's next answer (at most `patience`).
    async fn wait(&self, step: &Step, pause: Duration, patience: Duration) {
        let ids = FreshIdProbes::named_by(step);
        let answered = {
            let mut probes = self.probes.lock().expect("fresh ids");
            match probes.get(&ids) {
                Some((prober, notify)) if *prober != step.id => {
                    Some(notify.clone().notified_owned())
                }
                Some(_) => None,
                None => {
                    probes.insert(ids, (step.id, Arc::new(tokio::sync::Notify::new())));
                    None
                }
            }
        };
        match answered {
            Some(answered) => {
                let _ = tokio::time::timeout(patience, answered).await;
            }
            None => tokio::time::sleep(pause).await,
        }
    }

    /// `step`'s call got an answer other than "not found yet": whatever it was, the steps waiting
    /// on the same ids try again now (the prober's success is theirs; its failure makes one of
    /// them the next prober).
    fn answered(&self, step: &Step) {
        let ids = FreshIdProbes::named_by(step);
        let mut probes = self.probes.lock().expect("fresh ids");
        if let Some((_, notify)) = probes.remove(&ids) {
            notify.notify_waiters();
        }
    }
}

impl<'a> Context<'a> {
    /// Waits before `step`'s next try: `pause`, or for a fresh id, until the call probing the
    /// same ids is answered ([`FreshIdProbes`]).
    pub(super) async fn pause(
        &self,
        step: &Step,
        class: Class,
        pause: Duration,
        retries: &Retries,
    ) {
        if class != Class::NotVisibleYet {
            tokio::time::sleep(pause).await;
            return;
        }
        // A waiter tries on its own now and then, in case its prober went away without an answer
        // (nothing drops a step's call half-way today: a guard, not a schedule).
        let budget = self.inputs.timeouts.propagation;
        let patience = budget
            .saturating_sub(retries.waited())
            .min(FRESH_ID_CAP * 5);
        self.fresh.wait(step, pause, patience).await;
    }

    /// `step`'s call was answered otherwise than "not found yet" ([`FreshIdProbes::answered`]).
    pub(super) fn answered(&self, step: &Step) {
        self.fresh.answered(step);
    }

    /// The policy's answer to one failed call: its class, and the pause before trying again, or
    /// `None` when the class is final or its time budget is spent.
    pub(super) fn next_try<E: ProvideErrorMetadata>(
        &self,
        operation: &str,
        error: &SdkError<E, HttpResponse>,
        fresh: bool,
        retries: &mut Retries,
    ) -> Option<(Class, Duration)> {
        let class = classify(operation, Failure::of(error), fresh);
        let budget = self.inputs.timeouts.budget(class)?;
        retries.next_pause(budget).map(|pause| (class, pause))
    }

    /// Sends one call as often and as long as [`classify`] and [`Timeouts::budget`] say. `done`:
    /// the codes that mean the call's work is done (a removal's not-found), returned at once.
    pub(in crate::aws) async fn send<T, E, F>(
        self,
        step: &'a Step,
        operation: &'static str,
        done: &[&str],
        send: impl Fn() -> F,
    ) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata,
    {
        self.send_naming(step, operation, done, names_fresh_ids(step), send)
            .await
    }

    /// [`Context::send`] for a call that names what the step itself created a moment ago
    /// (`fresh`): its not-found is "not visible yet" whatever the step's own references.
    pub(in crate::aws) async fn send_naming<T, E, F>(
        self,
        step: &'a Step,
        operation: &'static str,
        done: &[&str],
        fresh: bool,
        send: impl Fn() -> F,
    ) -> Result<T, SdkError<E, HttpResponse>>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata,
    {
        let mut retries = Retries::new();
        loop {
            let answer = send().await;
            let error = match answer {
                Ok(answer) => {
                    self.answered(step);
                    return Ok(answer);
                }
                Err(e) => e,
            };
            let next = match has_code(&error, done) {
                true => None,
                false => self.next_try(operation, &error, fresh, &mut retries),
            };
            if next.is_none_or(|(class, _)| class != Class::NotVisibleYet) {
                self.answered(step);
            }
            let Some((class, pause)) = next else {
                return Err(error);
            };
            (self.progress)(Progress::Waiting {
                step,
                what: class.waiting_for(),
            });
            self.pause(step, class, pause, &retries).await;
        }
    }

    /// [`Context::send`] for a call that returns nothing the step needs.
    pub(in crate::aws) async fn send_done<T, E, F>(
        self,
        step: &'a Step,
        operation: &'static str,
        send: impl Fn() -> F,
    ) -> Result<Produced, AwsError>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.send(step, operation, &[], send)
            .await
            .map_err(|e| AwsError::call(operation, e))?;
        Ok(Produced::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step naming the VPC made by step 0 (a subnet, a route table...).
    fn naming_the_new_vpc(id: usize) -> Step {
        Step {
            id: StepId(id),
            action: Action::EnableVpcDns {
                vpc: Ref::Step(StepId(0)),
            },
            after: vec![StepId(0)],
        }
    }

    /// Six steps wait for one new id that AWS shows after `shown`: each call before it is
    /// answered "not found"; returns the calls each step sent, the step that probed first.
    async fn six_steps_wait_for_one_id(shown: Duration, prober_gives_up: bool) -> Vec<usize> {
        let fresh = FreshIdProbes::default();
        let started = Instant::now();
        let pause = Duration::from_millis(20);
        let steps: Vec<Step> = (1..=6).map(naming_the_new_vpc).collect();
        let runs = steps.iter().map(|step| {
            let fresh = &fresh;
            async move {
                let mut calls = 0;
                loop {
                    calls += 1;
                    if started.elapsed() >= shown {
                        fresh.answered(step);
                        return calls;
                    }
                    // The first prober's call is refused for good once: the others go on.
                    if prober_gives_up && step.id == StepId(1) && calls == 3 {
                        fresh.answered(step);
                        return calls;
                    }
                    fresh.wait(step, pause, Duration::from_secs(5)).await;
                }
            }
        });
        futures::future::join_all(runs).await
    }

    #[tokio::test]
    async fn steps_naming_one_new_id_wait_for_one_probe() {
        let calls = six_steps_wait_for_one_id(Duration::from_millis(200), false).await;
        let probes = calls.iter().max().copied().unwrap();
        // The prober tries every 20 ms until the id shows; the five others each send their
        // first call and one more once the probe is answered, not one every pause.
        assert!(probes >= 8, "the prober's calls: {calls:?}");
        assert_eq!(
            calls.iter().filter(|c| **c == 2).count(),
            5,
            "each other step: its first call, and one after the probe's answer: {calls:?}"
        );
    }

    #[tokio::test]
    async fn a_prober_that_stops_hands_the_probe_on() {
        let started = Instant::now();
        let calls = six_steps_wait_for_one_id(Duration::from_millis(200), true).await;
        assert_eq!(calls[0], 3, "the first prober stopped at its third call");
        // The others did not wait for their whole patience (5 s): one of them probed next.
        assert!(started.elapsed() < Duration::from_secs(2), "{calls:?}");
        assert!(
            calls[1..].iter().any(|c| *c > 2),
            "a next prober: {calls:?}"
        );
    }

    fn failure<'e>(code: &'e str, status: u16) -> Failure<'e> {
        Failure {
            code: Some(code),
            message: None,
            status: Some(status),
        }
    }

    #[test]
    fn a_fresh_id_not_found_is_waited_for_and_an_old_one_is_final() {
        for code in [
            "InvalidVpcID.NotFound",
            "InvalidSubnetID.NotFound",
            "InvalidRouteTableID.NotFound",
            "InvalidGroup.NotFound",
            "InvalidAllocationID.NotFound",
            "InvalidNatGatewayID.NotFound",
            "NatGatewayNotFound",
            "InvalidInstanceID.NotFound",
        ] {
            assert_eq!(
                classify("CreateRoute", failure(code, 400), true),
                Class::NotVisibleYet,
                "{code}"
            );
            assert_eq!(
                classify("CreateRoute", failure(code, 400), false),
                Class::Final,
                "{code}"
            );
        }
    }

    #[test]
    fn throttling_server_errors_and_silence_are_told_apart_from_final_errors() {
        for (code, status) in [
            ("RequestLimitExceeded", 503),
            ("Throttling", 400),
            ("TooManyRequestsException", 429),
            ("ThrottlingException", 400),
        ] {
            assert_eq!(
                classify("X", failure(code, status), false),
                Class::Throttled
            );
        }
        assert_eq!(
            classify("X", failure("InternalError", 500), false),
            Class::OutcomeUnknown
        );
        assert_eq!(
            classify("X", Failure::default(), false),
            Class::OutcomeUnknown,
            "no answer at all"
        );
        assert_eq!(
            classify("CreateVpc", failure("VpcLimitExceeded", 400), false),
            Class::Final
        );
        assert_eq!(
            classify("X", failure("UnauthorizedOperation", 403), true),
            Class::Final
        );
    }

    #[test]
    fn role_propagation_is_recognised_on_create_and_update_only() {
        let assumable = |operation| {
            classify(
                operation,
                Failure {
                    code: Some("InvalidParameterValueException"),
                    message: Some("The role defined for the function cannot be assumed by Lambda."),
                    status: Some(400),
                },
                false,
            )
        };
        assert_eq!(assumable("CreateFunction"), Class::Propagating);
        assert_eq!(assumable("UpdateFunctionConfiguration"), Class::Propagating);
        assert_eq!(assumable("TagResource"), Class::Final);
        let other = Failure {
            code: Some("InvalidParameterValueException"),
            message: Some("Memory size must be a multiple of 1 MB"),
            status: Some(400),
        };
        assert_eq!(classify("CreateFunction", other, false), Class::Final);
    }

    #[test]
    fn in_use_conflicts_and_settling_addresses_wait() {
        assert_eq!(
            classify("DeleteSubnet", failure("DependencyViolation", 400), false),
            Class::InUse
        );
        let in_use = Failure {
            code: Some("InvalidParameterValue"),
            message: Some("Network interface 'eni-1' is currently in use."),
            status: Some(400),
        };
        assert_eq!(
            classify("DeleteNetworkInterface", in_use, false),
            Class::InUse
        );
        assert_eq!(
            classify(
                "UpdateFunctionCode",
                failure("ResourceConflictException", 409),
                false
            ),
            Class::Conflict
        );
        for code in ["AuthFailure", "InvalidNetworkInterfaceID.NotFound"] {
            assert_eq!(
                classify("ReleaseAddress", failure(code, 400), false),
                Class::AddressSettling
            );
            assert_eq!(
                classify("AssociateAddress", failure(code, 400), false),
                Class::AddressSettling
            );
        }
        assert_eq!(
            classify("DescribeVpcs", failure("AuthFailure", 401), false),
            Class::Final
        );
    }

    #[test]
    fn budgets_are_time_based_and_final_errors_have_none() {
        let timeouts = Timeouts::default();
        assert_eq!(timeouts.budget(Class::Final), None);
        let visible = timeouts.budget(Class::NotVisibleYet).unwrap();
        assert_eq!(
            visible.first,
            Duration::from_millis(500),
            "sooner than a poll"
        );
        assert_eq!(
            visible.cap,
            Duration::from_secs(1),
            "doubling to a second: one probe for every step naming the id"
        );
        assert_eq!(
            visible.total,
            Duration::from_secs(300),
            "AWS: up to five minutes"
        );
        assert_eq!(
            timeouts.budget(Class::InUse).unwrap().total,
            Duration::from_secs(45 * 60),
            "Lambda's interfaces: P99 about 35 minutes"
        );
        assert!(timeouts.budget(Class::Throttled).unwrap().total >= Duration::from_secs(120));
        // Throttling backs off further than what ends within seconds.
        assert_eq!(
            timeouts.budget(Class::Propagating).unwrap().cap,
            timeouts.poll_first
        );
        assert_eq!(
            timeouts.budget(Class::Throttled).unwrap().cap,
            timeouts.poll_max
        );
    }

    #[test]
    fn pauses_double_up_to_the_cap_with_jitter_and_stop_at_the_total() {
        let budget = Budget {
            first: Duration::from_millis(100),
            cap: Duration::from_millis(400),
            total: Duration::from_secs(3600),
        };
        let mut retries = Retries::new();
        let pauses: Vec<Duration> = (0..5)
            .map(|_| retries.next_pause(budget).unwrap())
            .collect();
        for (pause, base) in pauses.iter().zip([100, 200, 400, 400, 400]) {
            let base = Duration::from_millis(base);
            assert!(
                *pause >= base / 2 && *pause <= base,
                "{pause:?} for {base:?}"
            );
        }
        let spent = Budget {
            total: Duration::ZERO,
            ..budget
        };
        assert_eq!(Retries::new().next_pause(spent), None);
    }
}
