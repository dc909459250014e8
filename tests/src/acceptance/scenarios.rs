//! The scenarios, in the order a run takes them, all in one stack (`fixedip-acc-<run>`): a NAT
//! gateway per AZ, a no-op redeploy, a code change, `nats = 1`, NAT instances, `azs` 2 → 3 with the
//! new IP held back then allowed, isolated with an S3 endpoint (each mode probed live), destroy
//! keeping the IPs, a redeploy reusing them, destroy `--release-ips`, and a network the suite built
//! itself (`vpc = "vpc-..."`). One stack rather than one per mode: AWS's default quota is five
//! Elastic IPs per region, and mode switches are what a user does anyway.
//!
//! Isolated comes after the NAT modes, not before: a switch from isolated back to a NAT in the
//! same VPC creates the public route table again with the client token of the first one, and AWS
//! answers with that first, deleted table (found by this suite on the emulator; reported, not yet
//! fixed in the executor).
//!
//! A scenario that fails stops the run (the next ones start from its end state); the rest are
//! reported as not run, and the run's own sweep follows whatever happened.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use super::cli::{self, CliRun};
use super::functions::{FunctionPackage, Functions};
use super::probe::{self, Expect};
use super::report::ScenarioResult;
use super::{existing, RunId, Target};

/// On the emulator the stack's AZs are pinned to three that offer t4g.nano (moto, as AWS, lacks
/// it in use1-az3). Left to the planner, they follow a hash of the stack's name, which holds the
/// random run id: one run in three or so then moved a slot out of use1-az3 for the NAT instances and
/// back for `azs = 3`, and that second creation of the slot's route table met the first one's
/// client token (a fixedip bug this suite found, reported; AWS answers with the first, deleted
/// table). A test must not pass or fail by the draw of a run id; on AWS the planner chooses.
const EMULATOR_AZ_IDS: &str = "[\"use1-az1\", \"use1-az2\", \"use1-az4\"]";

/// The exit code of a deploy that holds a new IP back (`cargo_fixedip::exit_code`).
const NEW_IPS_HELD_BACK: i32 = 10;

/// Every scenario's name, in order: the report lists the ones a failure left unrun.
pub const SCENARIOS: [&str; 16] = [
    "deploy: a NAT gateway per AZ",
    "probe: a NAT gateway per AZ",
    "redeploy with no change makes 0 mutating calls",
    "deploy: a code change",
    "deploy: nats = 1",
    "probe: nats = 1",
    "deploy: NAT instances",
    "probe: NAT instances",
    "azs 2 → 3: the new IP is held back",
    "azs 2 → 3: the new IP allowed, and probed",
    "deploy: isolated, with an S3 gateway endpoint",
    "probe: isolated (no internet, S3 through its endpoint)",
    "destroy keeps the IPs",
    "redeploy reuses the kept IPs",
    "destroy --release-ips",
    "deploy and probe: an existing VPC built by the suite",
];

/// What a scenario saw.
struct Seen {
    calls: (u64, u64),
    detail: String,
}

impl Seen {
    fn of(run: &CliRun, detail: String) -> Seen {
        Seen {
            calls: run.calls(),
            detail,
        }
    }

    fn probe(detail: String) -> Seen {
        Seen {
            calls: (0, 0),
            detail,
        }
    }
}

/// A run in progress: where it goes, its functions, and the IPs the partner would have been given.
pub struct Run {
    pub target: Target,
    pub run: RunId,
    functions: Functions,
    /// The binary last built of each package (the twin runs it).
    binaries: std::collections::BTreeMap<&'static str, PathBuf>,
    ips: BTreeSet<String>,
    pub results: Vec<ScenarioResult>,
}

impl Run {
    pub fn new(target: Target, run: RunId) -> Result<Run, String> {
        let az_ids = match target {
            Target::Emulator { .. } => Some(EMULATOR_AZ_IDS),
            Target::Aws { .. } => None,
        };
        Ok(Run {
            functions: Functions::create(&run, az_ids)?,
            target,
            run,
            binaries: Default::default(),
            ips: BTreeSet::new(),
            results: Vec::new(),
        })
    }

    /// Every package the run deploys (the existing VPC's gets its `vpc` when it is built).
    fn packages(&self) -> Vec<FunctionPackage> {
        let run = &self.run;
        let mut packages = vec![
            FunctionPackage::main(run, "gateway", "azs = 2"),
            FunctionPackage::main(run, "one-nat", "azs = 2, nats = 1"),
            FunctionPackage::main(run, "instance", "azs = 2, nat = \"instance\""),
            FunctionPackage::main(run, "three", "azs = 3"),
            FunctionPackage::main(run, "existing", "azs = 2"),
        ];
        packages.extend(self.isolated_packages());
        packages
    }

    /// Isolated with an S3 gateway endpoint, and a second function whose what-is-my-IP URL is
    /// S3's: on AWS, the endpoint-reached call of the probe.
    fn isolated_packages(&self) -> [FunctionPackage; 2] {
        let run = &self.run;
        let arguments = "azs = 3, nat = \"none\", endpoints = [\"s3\"]";
        let s3 = FunctionPackage {
            function_name: format!("{}-s3", run.stack()),
            url: Some(format!("http://s3.{}.amazonaws.com/", self.target.region())),
            ..FunctionPackage::main(run, "isolated-s3", arguments)
        };
        [FunctionPackage::main(run, "isolated", arguments), s3]
    }

    /// Builds every package of a run once, so that the dependencies are built before any run.
    pub fn prepare() -> Result<(), String> {
        let run = Run::new(
            Target::Emulator {
                endpoint: String::new(),
            },
            RunId("prepare".into()),
        )?;
        for package in run.packages() {
            run.functions.write(&package)?;
        }
        run.functions.build_all()
    }

    /// Runs every scenario until one fails; the results are in `self.results`. On the emulator
    /// every package is built first, in one cargo run (in parallel, and out of the scenarios'
    /// wall times).
    pub async fn all(&mut self) {
        if let Target::Emulator { .. } = self.target {
            for package in self.packages() {
                if let Err(e) = self.functions.write(&package) {
                    eprintln!("acceptance: {e}");
                }
            }
            if let Err(e) = self.functions.build_all() {
                eprintln!("acceptance: {e}");
            }
        }
        let _ = self.sequence().await;
        for name in SCENARIOS.iter().skip(self.results.len()) {
            self.results.push(ScenarioResult {
                scenario: (*name).to_owned(),
                passed: false,
                wall_s: 0.0,
                calls: 0,
                mutating_calls: 0,
                error: Some("not run: an earlier scenario failed".into()),
                detail: String::new(),
            });
        }
    }

    async fn sequence(&mut self) -> Result<(), ()> {
        let run = self.run.clone();
        let gateway = FunctionPackage::main(&run, "gateway", "azs = 2");
        let started = Instant::now();
        let seen = self.first_deploy(&gateway).await;
        self.record(started, seen)?;
        let started = Instant::now();
        let seen = self.probe_egress("gateway").await;
        self.record(started, seen)?;
        let started = Instant::now();
        let seen = self.no_op(&gateway).await;
        self.record(started, seen)?;
        let started = Instant::now();
        let changed = FunctionPackage {
            revision: 2,
            ..gateway
        };
        let seen = self.code_change(&changed).await;
        self.record(started, seen)?;
        for (package, arguments) in [
            ("one-nat", "azs = 2, nats = 1"),
            ("instance", "azs = 2, nat = \"instance\""),
        ] {
            let started = Instant::now();
            let seen = self
                .mode(&FunctionPackage::main(&run, package, arguments))
                .await;
            self.record(started, seen)?;
            let started = Instant::now();
            let seen = self.probe_egress(package).await;
            self.record(started, seen)?;
        }
        self.three_azs().await?;
        let started = Instant::now();
        let seen = self.isolated().await;
        self.record(started, seen)?;
        let started = Instant::now();
        let seen = self.probe_isolated().await;
        self.record(started, seen)?;
        self.teardown_and_reuse().await?;
        let started = Instant::now();
        let seen = self.existing_vpc().await;
        self.record(started, seen)
    }

    async fn three_azs(&mut self) -> Result<(), ()> {
        let three = FunctionPackage::main(&self.run, "three", "azs = 3");
        let started = Instant::now();
        let seen = self.new_ip_held_back(&three).await;
        self.record(started, seen)?;
        let started = Instant::now();
        let seen = self.new_ip_allowed(&three).await;
        self.record(started, seen)
    }

    async fn teardown_and_reuse(&mut self) -> Result<(), ()> {
        let three = FunctionPackage::main(&self.run, "three", "azs = 3");
        let started = Instant::now();
        let seen = self.destroy_keeping_ips().await;
        self.record(started, seen)?;
        let started = Instant::now();
        let seen = self.redeploy_reusing(&three).await;
        self.record(started, seen)?;
        let started = Instant::now();
        let seen = self.destroy_releasing().await;
        self.record(started, seen)
    }

    /// Records the next scenario's outcome; `Err` stops the sequence.
    fn record(&mut self, started: Instant, seen: Result<Seen, String>) -> Result<(), ()> {
        let scenario = SCENARIOS[self.results.len()].to_owned();
        let wall_s = started.elapsed().as_secs_f64();
        let passed = seen.is_ok();
        eprintln!(
            "acceptance: {scenario}: {} in {wall_s:.1} s",
            if passed { "pass" } else { "FAIL" }
        );
        let (calls, detail, error) = match seen {
            Ok(seen) => (seen.calls, seen.detail, None),
            Err(error) => ((0, 0), String::new(), Some(error)),
        };
        self.results.push(ScenarioResult {
            scenario,
            passed,
            wall_s,
            calls: calls.0,
            mutating_calls: calls.1,
            error,
            detail,
        });
        passed.then_some(()).ok_or(())
    }

    /// `cargo fixedip deploy` of `package` from its directory: on the emulator with the zip of
    /// its host build (the twin runs that binary), on AWS built for Lambda by deploy itself.
    async fn deploy(
        &mut self,
        package: &FunctionPackage,
        extra: &[&str],
    ) -> Result<CliRun, String> {
        let dir = self.functions.write(package)?;
        let mut args: Vec<String> = vec!["deploy".into()];
        if let Target::Emulator { .. } = self.target {
            let (zip, binary) = self.functions.build_zip(package.package)?;
            self.binaries.insert(package.package, binary);
            args.extend(["--zip".into(), zip.display().to_string()]);
            args.extend(["--poll-interval".into(), "0.5".into()]);
        }
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Ok(cli::run(&self.target, &dir, &args).await)
    }

    async fn destroy(&mut self, extra: &[&str]) -> Result<CliRun, String> {
        let mut args: Vec<String> = ["destroy", "--yes", "--force-detach-others", "--stack"]
            .map(String::from)
            .to_vec();
        args.push(self.run.stack());
        if let Target::Emulator { .. } = self.target {
            args.extend(["--poll-interval".into(), "0.5".into()]);
        }
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Ok(cli::run(&self.target, &self.functions.dir, &args).await)
    }

    async fn first_deploy(&mut self, gateway: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(gateway, &[]).await?.expect(0)?;
        let ips = deployed.ips("ips");
        if ips.len() != 2 {
            return Err(format!("2 IPs expected, deploy printed {ips:?}"));
        }
        self.ips = ips.into_iter().collect();
        Ok(Seen::of(&deployed, format!("IPs {:?}", self.ips)))
    }

    async fn probe_egress(&mut self, package: &str) -> Result<Seen, String> {
        let binary = self.binaries.get(package).cloned().unwrap_or_default();
        let expect = Expect::FromIps(self.ips.clone());
        let function = self.run.stack();
        probe::probe(&self.target, &function, &binary, &expect)
            .await
            .map(Seen::probe)
    }

    async fn no_op(&mut self, gateway: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(gateway, &[]).await?.expect(0)?;
        match deployed.calls() {
            (_, 0) => Ok(Seen::of(&deployed, "no mutating call".into())),
            (_, mutating) => Err(format!(
                "{mutating} mutating calls, 0 expected; what deploy said:\n{}",
                deployed.stderr_tail(40)
            )),
        }
    }

    async fn code_change(&mut self, changed: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(changed, &[]).await?.expect(0)?;
        match deployed.calls() {
            (_, 0) => Err("the code changed and deploy changed nothing".into()),
            (_, mutating) => Ok(Seen::of(&deployed, format!("{mutating} mutating calls"))),
        }
    }

    /// A mode switch of the stack: the same IPs must stay the stack's.
    async fn mode(&mut self, package: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(package, &[]).await?.expect(0)?;
        let ips: BTreeSet<String> = deployed.ips("ips").into_iter().collect();
        if !ips.is_superset(&self.ips) {
            return Err(format!("IPs {ips:?}: one of {:?} was lost", self.ips));
        }
        Ok(Seen::of(&deployed, format!("IPs {ips:?}")))
    }

    async fn isolated(&mut self) -> Result<Seen, String> {
        let [isolated, s3] = self.isolated_packages();
        let first = self.mode(&isolated).await?;
        let second = self.deploy(&s3, &[]).await?.expect(0)?;
        let (total, mutating) = second.calls();
        Ok(Seen {
            calls: (first.calls.0 + total, first.calls.1 + mutating),
            detail: first.detail,
        })
    }

    async fn probe_isolated(&mut self) -> Result<Seen, String> {
        let binary = self.binaries.get("isolated").cloned().unwrap_or_default();
        let expect = Expect::Isolated {
            s3_function: format!("{}-s3", self.run.stack()),
        };
        let function = self.run.stack();
        probe::probe(&self.target, &function, &binary, &expect)
            .await
            .map(Seen::probe)
    }

    async fn new_ip_held_back(&mut self, three: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(three, &[]).await?.expect(NEW_IPS_HELD_BACK)?;
        let pending = deployed.json["stacks"][0]["pending_ips"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        if pending != 1 {
            return Err(format!("1 pending IP expected, deploy listed {pending}"));
        }
        Ok(Seen::of(&deployed, "1 IP held back (exit code 10)".into()))
    }

    async fn new_ip_allowed(&mut self, three: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(three, &["--allow-new-ips"]).await?.expect(0)?;
        let ips: BTreeSet<String> = deployed.ips("ips").into_iter().collect();
        if ips.len() != 3 || !ips.is_superset(&self.ips) {
            return Err(format!(
                "3 IPs keeping {:?} expected, got {ips:?}",
                self.ips
            ));
        }
        self.ips = ips;
        let probed = self.probe_egress("three").await?;
        Ok(Seen::of(&deployed, probed.detail))
    }

    async fn destroy_keeping_ips(&mut self) -> Result<Seen, String> {
        let destroyed = self.destroy(&[]).await?.expect(0)?;
        let kept: BTreeSet<String> = destroyed.ips("kept_ips").into_iter().collect();
        if kept != self.ips {
            return Err(format!("kept {kept:?}, expected {:?}", self.ips));
        }
        Ok(Seen::of(&destroyed, format!("kept {kept:?}")))
    }

    async fn redeploy_reusing(&mut self, three: &FunctionPackage) -> Result<Seen, String> {
        let deployed = self.deploy(three, &[]).await?.expect(0)?;
        let ips: BTreeSet<String> = deployed.ips("ips").into_iter().collect();
        if ips != self.ips {
            return Err(format!("IPs {ips:?}, the kept ones were {:?}", self.ips));
        }
        Ok(Seen::of(&deployed, "the same IPs".into()))
    }

    async fn destroy_releasing(&mut self) -> Result<Seen, String> {
        let destroyed = self.destroy(&["--release-ips"]).await?.expect(0)?;
        let released: BTreeSet<String> = destroyed.json["stacks"][0]["released_ips"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|ip| ip["ip"].as_str().map(str::to_owned))
            .collect();
        if released != self.ips {
            return Err(format!("released {released:?}, expected {:?}", self.ips));
        }
        Ok(Seen::of(&destroyed, format!("released {released:?}")))
    }

    /// A network the suite builds (tagged with the run), the function attached with
    /// `vpc = "vpc-..."`, probed against the network's own NAT addresses, then destroyed (the
    /// network itself is the sweep's).
    async fn existing_vpc(&mut self) -> Result<Seen, String> {
        let network = existing::build(&self.target, &self.run).await?;
        let package = FunctionPackage {
            vpc: Some(network.vpc.clone()),
            ..FunctionPackage::main(&self.run, "existing", "azs = 2")
        };
        let deployed = self.deploy(&package, &[]).await?.expect(0)?;
        self.ips = network.ips.iter().cloned().collect();
        let probed = self.probe_egress("existing").await?;
        let destroyed = self.destroy(&["--delete-function"]).await?.expect(0)?;
        let calls = (
            deployed.calls().0 + destroyed.calls().0,
            deployed.calls().1 + destroyed.calls().1,
        );
        Ok(Seen {
            calls,
            detail: format!("{}; {}", network.vpc, probed.detail),
        })
    }
}
