//! `fixedip-acceptance`: the acceptance suite (tests/src/acceptance, docs/acceptance/README.md).
//!
//! ```text
//! fixedip-acceptance run [--region REGION] [--yes] [--out DIR] [--emulator URL] [--scale X]
//! fixedip-acceptance sweep [--run ID] [--region REGION] [--yes] [--emulator URL] [--budget SECONDS]
//! fixedip-acceptance estimate --region REGION
//! fixedip-acceptance prepare
//! ```
//!
//! `estimate` prints what a run against AWS would create, cost and take, and does nothing else.
//! `prepare` builds the functions' dependencies once (scripts/test.sh runs it before the tests, so
//! that no test's timeout pays for it).
//!
//! Without `FIXEDIP_ACC=1` it runs on the emulator: moto behind the chaos proxy's `aws_like`
//! scenario, started here (times `--scale`, default 0.05), or the one at `--emulator URL`. With
//! `FIXEDIP_ACC=1` it runs against the AWS account of the environment's credentials in `--region`,
//! after saying what it creates and costs and getting `--yes` or a typed yes.
//!
//! Exit codes: 0 every scenario passed (run) or nothing left (sweep); 1 a scenario failed or
//! something could not be swept; 2 refused to start (bad arguments, no region, no credentials, not
//! confirmed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fixedip_tests::acceptance::report::Report;
use fixedip_tests::acceptance::scenarios::Run;
use fixedip_tests::acceptance::{aws_target, safety, sweep, RunId, Runs, Target, ACC_VARIABLE};

/// The sweep waits this long for what AWS removes slowly: Lambda's interfaces, up to 45 minutes.
const AWS_SWEEP_BUDGET: Duration = Duration::from_secs(2700);
const EMULATOR_SWEEP_BUDGET: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Args {
    command: String,
    region: Option<String>,
    yes: bool,
    out: Option<PathBuf>,
    emulator: Option<String>,
    scale: Option<f64>,
    run: Option<String>,
    budget: Option<u64>,
}

fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        command: words
            .next()
            .ok_or("usage: fixedip-acceptance run|sweep [OPTIONS]")?,
        ..Args::default()
    };
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or(format!("{word} needs a value"));
        match word.as_str() {
            "--region" => args.region = Some(value()?),
            "--yes" => args.yes = true,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "--emulator" => args.emulator = Some(value()?),
            "--scale" => args.scale = Some(value()?.parse().map_err(|e| format!("--scale: {e}"))?),
            "--run" => args.run = Some(value()?),
            "--budget" => {
                args.budget = Some(value()?.parse().map_err(|e| format!("--budget: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// The emulator this process started, kept alive while it runs.
struct OwnEmulator {
    _moto: fixedip_moto::Moto,
    _proxy: fixedip_chaos::ChaosProxy,
}

/// Where the run goes, and the emulator started for it when none was given.
async fn target(args: &Args) -> Result<(Target, Option<OwnEmulator>), String> {
    let acc = std::env::var(ACC_VARIABLE).ok();
    if let Some(target) = aws_target(acc.as_deref(), args.region.as_deref())? {
        if args.emulator.is_some() {
            return Err(format!(
                "--emulator and {ACC_VARIABLE}=1 contradict each other"
            ));
        }
        check_credentials(&target).await?;
        return Ok((target, None));
    }
    if let Some(endpoint) = &args.emulator {
        return Ok((
            Target::Emulator {
                endpoint: endpoint.clone(),
            },
            None,
        ));
    }
    let moto = tokio::task::spawn_blocking(fixedip_moto::Moto::start)
        .await
        .map_err(|e| e.to_string())?;
    let scenario = fixedip_chaos::Scenario::aws_like(args.scale.unwrap_or(0.05));
    let proxy = fixedip_chaos::ChaosProxy::start(&moto.url(), scenario)
        .await
        .map_err(|e| format!("the chaos proxy: {e}"))?;
    let endpoint = proxy.url();
    Ok((
        Target::Emulator { endpoint },
        Some(OwnEmulator {
            _moto: moto,
            _proxy: proxy,
        }),
    ))
}

/// Refuses a run whose credentials AWS does not accept, before anything is created; the account
/// is printed, the credentials never.
async fn check_credentials(target: &Target) -> Result<(), String> {
    let sts = aws_sdk_sts::Client::new(&target.sdk_config().await);
    let identity = sts.get_caller_identity().send().await.map_err(|e| {
        format!(
            "no usable AWS credentials ({}): configure them as for the AWS CLI, or run without \
             {ACC_VARIABLE}=1 on the emulator",
            cargo_fixedip::aws::error_chain(&e)
        )
    })?;
    eprintln!("AWS account {}", identity.account().unwrap_or("?"));
    Ok(())
}

async fn run(args: &Args, target: &Target) -> Result<bool, String> {
    let id = RunId::new();
    if let Target::Aws { region } = target {
        let estimate = safety::estimate(region)?;
        eprint!("{}", safety::announcement(region, &id.stack(), &estimate));
        safety::confirmed(args.yes)?;
    }
    eprintln!("acceptance run {id} on {}", describe(target));
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut run = Run::new(target.clone(), id.clone())?;
    run.all().await;
    // Whatever happened, the run's own resources go.
    let swept = sweep::sweep(target, &Runs::One(id.clone()), sweep_budget(args, target)).await;
    let report = Report {
        format_version: 1,
        run: id.0.clone(),
        target: if target.is_aws() { "aws" } else { "emulator" }.to_owned(),
        region: target.region().to_owned(),
        fixedip: env!("CARGO_PKG_VERSION").to_owned(),
        started_unix,
        wall_s: started.elapsed().as_secs_f64(),
        scenarios: run.results,
        swept: swept.removed,
        sweep_errors: swept.errors,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/acceptance/reports"));
    let (json, markdown) = report.write(&out)?;
    print!("{}", report.markdown());
    eprintln!("report: {} and {}", json.display(), markdown.display());
    Ok(report.passed())
}

fn sweep_budget(args: &Args, target: &Target) -> Duration {
    match (args.budget, target) {
        (Some(seconds), _) => Duration::from_secs(seconds),
        (None, Target::Aws { .. }) => AWS_SWEEP_BUDGET,
        (None, Target::Emulator { .. }) => EMULATOR_SWEEP_BUDGET,
    }
}

fn describe(target: &Target) -> String {
    match target {
        Target::Aws { region } => format!("AWS, {region}"),
        Target::Emulator { endpoint } => format!("the emulator at {endpoint}"),
    }
}

async fn sweep_command(args: &Args, target: &Target) -> Result<bool, String> {
    let runs = match &args.run {
        Some(id) => Runs::One(RunId(id.clone())),
        None => Runs::All,
    };
    if target.is_aws() {
        eprintln!(
            "sweeping {} in {}: everything tagged by the acceptance suite, Elastic IPs included",
            match &runs {
                Runs::One(id) => format!("run {id}"),
                Runs::All => "every run".into(),
            },
            target.region()
        );
        safety::confirmed(args.yes)?;
    }
    let swept = sweep::sweep(target, &runs, sweep_budget(args, target)).await;
    for removed in &swept.removed {
        println!("removed {removed}");
    }
    for error in &swept.errors {
        eprintln!("left: {error}");
    }
    Ok(swept.errors.is_empty())
}

/// What a run against AWS would create, cost and take: no AWS call.
fn estimate_command(args: &Args) -> Result<bool, String> {
    let region = args.region.as_deref().ok_or("estimate needs --region")?;
    let estimate = safety::estimate(region)?;
    print!(
        "{}",
        safety::announcement(region, "fixedip-acc-<run>", &estimate)
    );
    Ok(true)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("fixedip-acceptance: {e}");
            return ExitCode::from(2);
        }
    };
    let offline = match args.command.as_str() {
        "estimate" => Some(estimate_command(&args)),
        "prepare" => Some(Run::prepare().map(|()| true)),
        _ => None,
    };
    if let Some(outcome) = offline {
        return match outcome {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fixedip-acceptance: {e}");
                ExitCode::from(2)
            }
        };
    }
    let (target, _emulator) = match target(&args).await {
        Ok(target) => target,
        Err(e) => {
            eprintln!("fixedip-acceptance: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.command.as_str() {
        "run" => run(&args, &target).await,
        "sweep" => sweep_command(&args, &target).await,
        other => Err(format!("unknown command {other}: run or sweep")),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fixedip-acceptance: {e}");
            ExitCode::from(2)
        }
    }
}
