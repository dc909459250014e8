//! The stack's lease: one deploy or destroy changes a stack at a time.
//!
//! Two runs that plan from the same observed account and then both execute would create two VPCs,
//! two sets of NAT gateways and, worst, two sets of Elastic IPs. The tool keeps no state of its own,
//! so the lock lives in the account: an SSM parameter `/fixedip/<stack>/lease` in the stack's
//! region, created with `Overwrite=false`, which SSM creates for exactly one caller. Its value says
//! who holds it, for what and until when:
//!
//! ```json
//! {"holder":"build-7:4242:5f3a9c1e","command":"deploy","started":1795000000,"expires":1795000600}
//! ```
//!
//! - Taken after the read-only checks (observe, plan) and only when the plan changes something, so a
//!   no-op deploy still makes no mutating call; whoever takes it observes and plans again, since the
//!   account may have changed while it waited.
//! - Renewed while held ([`RENEW_EVERY`]), so that a NAT gateway's minutes of `pending` never let it
//!   expire; released at the end, also on error and (best effort) on Ctrl-C.
//! - Held by another: wait, polling, with progress on stderr, up to `--lock-timeout`; then fail
//!   naming the holder and its expiry.
//! - Expired (a killed run never released it), or held by a process of this machine that no longer
//!   runs (`host:pid` of the holder, looked up in `/proc`): taken over by delete-if-unchanged, then a normal
//!   create. SSM has no conditional delete, so two runs taking over the same expired lease at the
//!   same moment can both succeed: the second's delete can remove the first's fresh lease in the
//!   few milliseconds between its re-read and its delete. That needs two runs waiting on a holder
//!   that died, within one poll of each other; the takeover re-reads just before deleting to keep
//!   the window that small.
//!
//! Expiry compares wall clocks of different machines: a skew of minutes against [`LEASE_TTL`]'s ten
//! is tolerated, a larger one shortens or lengthens the lease by as much.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::types::{ParameterType, Tag};
use fixedip_core::requirements::StackName;
use fixedip_core::tags;
use serde::{Deserialize, Serialize};

use super::{Aws, AwsError};

/// How long a lease lasts without renewal: longer than any single wait of a run between renewals.
pub const LEASE_TTL: Duration = Duration::from_secs(600);
/// How often a held lease is pushed forward by another [`LEASE_TTL`].
pub const RENEW_EVERY: Duration = Duration::from_secs(60);

/// The SSM parameter holding the lease of `stack` (SSM is regional: one per stack and region).
pub fn parameter_name(stack: &StackName) -> String {
    format!("/fixedip/{stack}/lease")
}

/// What the parameter says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// `host:pid:random`: unique per run.
    pub holder: String,
    /// `deploy` or `destroy`.
    pub command: String,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds; after it, anyone may take the lease over.
    pub expires: u64,
}

impl LeaseRecord {
    fn expired(&self, now: u64) -> bool {
        self.expires <= now
    }

    /// Whether the holder was a process of this machine that no longer runs: a deploy killed here
    /// (a CI step cancelled, a terminal closed) need not block the next run until its lease
    /// expires. Only where processes can be looked up (`/proc`); elsewhere the lease must expire.
    fn holder_died_here(&self) -> bool {
        let mut parts = self.holder.rsplitn(3, ':');
        let (Some(_random), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        host == host_name()
            && pid != std::process::id()
            && cfg!(target_os = "linux")
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    /// "deploy by build-7:4242:5f3a9c1e since 12:01:07 UTC, expires 12:11:07 UTC".
    pub fn describe(&self) -> String {
        format!(
            "{} by {} since {}, expires {}",
            self.command,
            self.holder,
            utc_time(self.started),
            utc_time(self.expires)
        )
    }
}

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LeaseError {
    #[error("stack `{stack}` is being changed by another run: {}; waited {waited_s} s", .record.describe())]
    #[diagnostic(
        code(fixedip::lease::held),
        help(
            "nothing was changed. Wait for that run to finish and run again (or pass a longer \
             --lock-timeout). If no run is going on (it was killed), the lease frees itself when it \
             expires, or remove it now with `cargo fixedip unlock --stack {stack}`"
        )
    )]
    Held {
        stack: String,
        record: LeaseRecord,
        waited_s: u64,
    },

    #[error("stack `{stack}` changed while this run waited for its lease: {what}")]
    #[diagnostic(
        code(fixedip::lease::changed),
        help("nothing was changed by this run: run it again to see and confirm the stack as it is now")
    )]
    ChangedWhileWaiting { stack: String, what: String },

    #[error("interrupted: the lease of stack `{stack}` was released")]
    #[diagnostic(
        code(fixedip::lease::interrupted),
        help("calls already sent may still take effect: run the same command again, it continues from where it stopped")
    )]
    Interrupted { stack: String },

    #[error("the lease of stack `{stack}` was lost while it ran: {reason}")]
    #[diagnostic(
        code(fixedip::lease::lost),
        help("another run may have changed the stack meanwhile: run the same command again, it observes the account afresh")
    )]
    Lost { stack: String, reason: String },

    /// Rendered as `CliError::Aws` (see its `From<LeaseError>`), with the AWS error's own help.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// How long to wait for a lease held by another run, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct LeaseWait {
    pub timeout: Duration,
    pub poll: Duration,
}

/// A lease this run holds. Renewed in the background until [`HeldLease::release`].
#[derive(Debug)]
pub struct HeldLease {
    lease: Lease,
    renewer: tokio::task::JoinHandle<()>,
    /// Set by the renewer when the parameter no longer holds our value.
    lost: Arc<Mutex<Option<String>>>,
    /// Whether the run had to wait for another holder first.
    pub waited: bool,
}

/// The stack's lease parameter, as one run sees it.
#[derive(Debug, Clone)]
pub struct Lease {
    ssm: aws_sdk_ssm::Client,
    stack: StackName,
    name: String,
    /// The value this run writes (changes at each renewal).
    ours: Arc<Mutex<String>>,
    record: Arc<Mutex<LeaseRecord>>,
}

impl Lease {
    /// The lease of `stack` for `command`, not taken yet.
    pub fn new(aws: &Aws, stack: &StackName, command: &str) -> Lease {
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&aws.config)
                .interceptor(aws.calls.interceptor())
                .build(),
        );
        Lease::with_client(ssm, stack, command)
    }

    fn with_client(ssm: aws_sdk_ssm::Client, stack: &StackName, command: &str) -> Lease {
        let now = unix_now();
        let record = LeaseRecord {
            holder: holder_id(),
            command: command.to_owned(),
            started: now,
            expires: now + LEASE_TTL.as_secs(),
        };
        Lease {
            ssm,
            stack: stack.clone(),
            name: parameter_name(stack),
            ours: Arc::new(Mutex::new(encode(&record))),
            record: Arc::new(Mutex::new(record)),
        }
    }

    /// Takes the lease, waiting for another holder up to `wait.timeout`. `waiting` is told about
    /// each holder waited for (once per holder), for progress on stderr.
    pub async fn acquire(
        self,
        wait: LeaseWait,
        waiting: impl Fn(&LeaseRecord),
    ) -> Result<HeldLease, LeaseError> {
        let started = Instant::now();
        let mut last_seen: Option<LeaseRecord> = None;
        loop {
            // A fresh expiry for every attempt: the wait must not eat into our own lease.
            let value = {
                let mut record = self.record.lock().expect("lease lock");
                let now = unix_now();
                record.expires = now + LEASE_TTL.as_secs();
                encode(&record)
            };
            if self.create(&value).await? {
                *self.ours.lock().expect("lease lock") = value;
                return Ok(self.start_renewing(last_seen.is_some()));
            }
            let holder = self.record.lock().expect("lease lock").holder.clone();
            match self.read().await? {
                // Released between our create and our read: try again at once.
                None => continue,
                // Our own create, its answer lost and the call retried by the SDK: the lease is
                // ours already (the holder is this run's host, pid and random part).
                Some((record, raw)) if record.holder == holder => {
                    *self.ours.lock().expect("lease lock") = raw;
                    return Ok(self.start_renewing(last_seen.is_some()));
                }
                Some((record, raw)) if record.expired(unix_now()) || record.holder_died_here() => {
                    self.take_over(&raw).await?;
                    continue;
                }
                Some((record, _)) => {
                    // Once per holder, not at each of its renewals.
                    if last_seen.as_ref().map(|r| &r.holder) != Some(&record.holder) {
                        waiting(&record);
                    }
                    let waited = started.elapsed();
                    if waited >= wait.timeout {
                        return Err(LeaseError::Held {
                            stack: self.stack.to_string(),
                            record,
                            waited_s: waited.as_secs(),
                        });
                    }
                    last_seen = Some(record);
                    tokio::time::sleep(wait.poll.min(wait.timeout - waited)).await;
                }
            }
        }
    }

    /// PutParameter without overwrite: `true` when this call created it.
    async fn create(&self, value: &str) -> Result<bool, AwsError> {
        let tag = |key: &str, value: String| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .expect("key and value are set")
        };
        let put = self
            .ssm
            .put_parameter()
            .name(&self.name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(false)
            .description(
                "fixedip: which run is changing this stack (cargo fixedip unlock removes it)",
            )
            .tags(tag(tags::STACK, self.stack.to_string()))
            .tags(tag(tags::COMPONENT, "lease".to_owned()))
            .tags(tag(tags::NAME, format!("fixedip-{}-lease", self.stack)))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_already_exists()) =>
            {
                Ok(false)
            }
            Err(error) => Err(AwsError::call("PutParameter", error)),
        }
    }

    /// The current value, parsed, and as stored; `None` when there is no lease.
    async fn read(&self) -> Result<Option<(LeaseRecord, String)>, AwsError> {
        read_parameter(&self.ssm, &self.name).await
    }

    /// Deletes an expired lease if it still reads `seen`.
    async fn take_over(&self, seen: &str) -> Result<(), AwsError> {
        match self.read().await? {
            Some((_, raw)) if raw == seen => delete_parameter(&self.ssm, &self.name).await,
            // Renewed, released or taken by someone else meanwhile: look again.
            _ => Ok(()),
        }
    }

    fn start_renewing(self, waited: bool) -> HeldLease {
        let lost = Arc::new(Mutex::new(None));
        let renewer = tokio::spawn({
            let lease = self.clone();
            let lost = lost.clone();
            async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Err(reason) = lease.renew().await {
                        *lost.lock().expect("lease lock") = Some(reason);
                        return;
                    }
                }
            }
        });
        HeldLease {
            lease: self,
            renewer,
            lost,
            waited,
        }
    }

    /// Pushes the expiry forward, if the parameter still holds our value. A failed call is tried
    /// again at the next renewal: the lease lasts ten renewals.
    async fn renew(&self) -> Result<(), String> {
        let ours = self.ours.lock().expect("lease lock").clone();
        match self.read().await {
            Ok(Some((_, raw))) if raw == ours => {}
            Ok(Some((record, _))) => return Err(format!("now held: {}", record.describe())),
            Ok(None) => return Err("it was removed (cargo fixedip unlock?)".to_owned()),
            Err(_) => return Ok(()),
        }
        let value = {
            let mut record = self.record.lock().expect("lease lock");
            record.expires = unix_now() + LEASE_TTL.as_secs();
            encode(&record)
        };
        let put = self
            .ssm
            .put_parameter()
            .name(&self.name)
            .value(&value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await;
        if put.is_ok() {
            *self.ours.lock().expect("lease lock") = value;
        }
        Ok(())
    }
}

impl HeldLease {
    /// Stops renewing and deletes the lease if it is still ours. Reports a lease lost meanwhile.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.renewer.abort();
        let lost = self.lost.lock().expect("lease lock").take();
        let ours = self.lease.ours.lock().expect("lease lock").clone();
        if let Some((_, raw)) = self.lease.read().await? {
            if raw == ours {
                delete_parameter(&self.lease.ssm, &self.lease.name).await?;
            }
        }
        match lost {
            Some(reason) => Err(LeaseError::Lost {
                stack: self.lease.stack.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Runs `work` under the lease and releases it whatever happens: after success, after an
    /// error, and on Ctrl-C (best effort: the work is dropped, then the lease is deleted). After
    /// success the release runs in the background ([`Releasing`]), so that what follows and needs
    /// no lease (deploy's verification, destroy's list of kept addresses) overlaps its two round
    /// trips; the caller must [`Releasing::finish`] it on every path.
    pub async fn run_releasing<T, E>(
        self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<(T, Releasing), E>
    where
        E: From<LeaseError>,
    {
        let stack = self.lease.stack.to_string();
        let outcome = tokio::select! {
            outcome = work => outcome,
            _ = tokio::signal::ctrl_c() => Err(E::from(LeaseError::Interrupted { stack })),
        };
        match outcome {
            Ok(value) => Ok((value, Releasing(Some(tokio::spawn(self.release()))))),
            Err(error) => {
                // The work's error is the one to report; a lease lost meanwhile is secondary.
                let _ = self.release().await;
                Err(error)
            }
        }
    }
}

/// A lease being released in the background ([`HeldLease::run_releasing`]), or none to release.
pub struct Releasing(Option<tokio::task::JoinHandle<Result<(), LeaseError>>>);

impl Releasing {
    /// Nothing to release: the run took no lease.
    pub fn none() -> Releasing {
        Releasing(None)
    }

    /// Waits for the release; an error if the lease was no longer this run's.
    pub async fn finish(self) -> Result<(), LeaseError> {
        let Some(release) = self.0 else {
            return Ok(());
        };
        match release.await {
            Ok(released) => released,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

/// `cargo fixedip unlock`: the lease as it stands, then removed whoever holds it.
pub async fn remove(aws: &Aws, stack: &StackName) -> Result<Option<LeaseRecord>, AwsError> {
    let lease = Lease::new(aws, stack, "unlock");
    let current = lease.read().await?;
    if current.is_some() {
        delete_parameter(&lease.ssm, &lease.name).await?;
    }
    Ok(current.map(|(record, _)| record))
}

async fn read_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<Option<(LeaseRecord, String)>, AwsError> {
    let got = ssm.get_parameter().name(name).send().await;
    let parameter = match got {
        Ok(answer) => answer.parameter,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            return Ok(None)
        }
        Err(error) => return Err(AwsError::call("GetParameter", error)),
    };
    let Some(parameter) = parameter else {
        return Ok(None);
    };
    let raw = parameter.value.unwrap_or_default();
    // A value we cannot read (written by hand, or by a future version) is held by "unknown" and
    // expires one TTL after it was last written, so that it never blocks a stack for ever.
    let record = serde_json::from_str(&raw).unwrap_or_else(|_| {
        let written = parameter
            .last_modified_date
            .map(|d| d.secs().max(0) as u64)
            .unwrap_or(0);
        LeaseRecord {
            holder: "unknown".to_owned(),
            command: "unknown".to_owned(),
            started: written,
            expires: written + LEASE_TTL.as_secs(),
        }
    });
    Ok(Some((record, raw)))
}

async fn delete_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<(), AwsError> {
    match ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(())
        }
        Err(error) => Err(AwsError::call("DeleteParameter", error)),
    }
}

fn encode(record: &LeaseRecord) -> String {
    serde_json::to_string(record).expect("a lease record serializes")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `host:pid:random`: the host and pid tell a person where the run is; the random part tells two
/// runs apart even in containers that all run as pid 1 on a host called `localhost`.
fn holder_id() -> String {
    format!(
        "{}:{}:{:08x}",
        host_name(),
        std::process::id(),
        random_u32()
    )
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Randomness without a dependency: the standard library's hasher is seeded randomly per process.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish() as u32
}

/// `2026-11-21 12:01:07 UTC` from Unix seconds (civil-from-days, proleptic Gregorian).
fn utc_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn the_record_round_trips_and_expires() {
        let record = LeaseRecord {
            holder: "h:1:00000001".into(),
            command: "deploy".into(),
            started: 100,
            expires: 700,
        };
        let back: LeaseRecord = serde_json::from_str(&encode(&record)).unwrap();
        assert_eq!(back, record);
        assert!(!record.expired(699));
        assert!(record.expired(700));
    }

    #[test]
    fn a_dead_holder_on_this_machine_is_recognised() {
        let record = |holder: String| LeaseRecord {
            holder,
            command: "deploy".into(),
            started: 0,
            expires: u64::MAX,
        };
        // This process is alive; pid 0 is never a user process; another host is never judged.
        assert!(!record(holder_id()).holder_died_here());
        assert!(!record(format!("{}:{}:1", host_name(), std::process::id())).holder_died_here());
        if cfg!(target_os = "linux") {
            assert!(record(format!("{}:4294967295:1", host_name())).holder_died_here());
        }
        assert!(!record("elsewhere:4294967295:1".into()).holder_died_here());
        assert!(!record("garbage".into()).holder_died_here());
    }

    #[test]
    fn holders_differ_between_runs() {
        assert_ne!(holder_id(), holder_id());
        assert_eq!(
            parameter_name(&StackName::parse("billing").unwrap()),
            "/fixedip/billing/lease"
        );
    }
}
