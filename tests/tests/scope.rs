//! Every command acts on the stack, region and account of the function it is run for, and never on
//! anyone else's (guarantee 4). The CLI runs as a user runs it: from a function's own directory of
//! a workspace with several packages and two stacks (tests/fixtures/scope: `alpha` in the default
//! stack, `billing` in stack `billing`, `billing-eu` in stack `billing` with `region =
//! "eu-west-1"`), with no `--stack` where a user would give none.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fixedip_tests::{count, scope_manifest, scope_zip, Emulator, REGION};

/// The other region of the fixtures (`billing-eu`'s `region` setting).
const EUROPE: &str = "eu-west-1";

/// A function's directory in the scope fixtures, or the workspace root for `""`.
fn dir(function: &str) -> PathBuf {
    scope_manifest().parent().unwrap().join(function)
}

/// `cargo fixedip ARGS` from `cwd`, stdin closed as in CI.
fn fixedip_in(emulator: &Emulator, cwd: &Path, args: &[&str]) -> Command {
    let mut command = emulator.cargo_fixedip();
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(emulator: &Emulator, cwd: &Path, args: &[&str]) -> Output {
    fixedip_in(emulator, cwd, args)
        .output()
        .expect("cargo-fixedip runs")
}

/// Runs and checks the exit code; returns stdout.
fn expect(emulator: &Emulator, cwd: &Path, args: &[&str], code: i32) -> String {
    let output = run(emulator, cwd, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "`cargo fixedip {}` in {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        cwd.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn json(emulator: &Emulator, cwd: &Path, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = expect(emulator, cwd, &args, 0);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `cargo fixedip deploy --zip <its zip>` from the function's own directory; its report.
fn deploy(emulator: &Emulator, function: &str, extra: &[&str]) -> serde_json::Value {
    let zip = scope_zip(function);
    let mut args = vec!["deploy", "--zip", zip.to_str().unwrap()];
    args.extend_from_slice(extra);
    json(emulator, &dir(function), &args)
}

/// The IPs a report lists (`ips --json`, `deploy --json`).
fn ips_of(list: &serde_json::Value) -> Vec<String> {
    let mut ips: Vec<String> = list
        .as_array()
        .expect("a list of addresses")
        .iter()
        .map(|a| a["ip"].as_str().unwrap().to_owned())
        .collect();
    ips.sort();
    ips
}

#[test]
fn commands_act_on_the_stack_and_region_of_the_function_they_run_for() {
    let emulator = Emulator::start();
    let alpha = ips_of(&deploy(&emulator, "alpha", &[])["stacks"][0]["ips"]);
    let billing = ips_of(&deploy(&emulator, "billing", &[])["stacks"][0]["ips"]);
    let europe = deploy(&emulator, "billing-eu", &[]);
    assert_eq!(
        europe["stacks"][0]["region"], EUROPE,
        "the package's region"
    );
    let europe = ips_of(&europe["stacks"][0]["ips"]);
    for ips in [&alpha, &billing, &europe] {
        assert_eq!(ips.len(), 1, "azs = 1: one IP");
    }
    assert_ne!(billing, europe, "one stack, two regions, two networks");

    // From each function's directory, the plain list is that function's stack in its region.
    for (function, expected) in [
        ("alpha", &alpha),
        ("billing", &billing),
        ("billing-eu", &europe),
    ] {
        let listed = expect(&emulator, &dir(function), &["ips"], 0);
        let listed: Vec<String> = listed.lines().map(str::to_owned).collect();
        assert_eq!(&listed, expected, "`ips` in {function}/");
    }
    let europe_json = json(&emulator, &dir("billing-eu"), &["ips"]);
    assert_eq!(europe_json["stacks"][0]["stack"], "billing");
    assert_eq!(europe_json["stacks"][0]["region"], EUROPE);
    assert_eq!(europe_json["ips"][0]["region"], EUROPE);

    // The workspace root: every stack, each named with its region.
    let all = json(&emulator, &dir(""), &["ips", "--workspace"]);
    let stacks: Vec<(String, String)> = all["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stack"].as_str().unwrap().to_owned(),
                s["region"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stacks,
        [
            ("billing".to_owned(), EUROPE.to_owned()),
            ("billing".to_owned(), REGION.to_owned()),
            ("default".to_owned(), REGION.to_owned()),
        ]
    );
    let mut every: Vec<String> = [alpha.clone(), billing.clone(), europe.clone()].concat();
    every.sort();
    assert_eq!(ips_of(&all["ips"]), every);
    let picked = json(&emulator, &dir(""), &["ips", "-p", "billing"]);
    assert_eq!(ips_of(&picked["ips"]), billing, "-p picks one package");
    let csv = expect(
        &emulator,
        &dir(""),
        &["ips", "--workspace", "--format", "csv"],
        0,
    );
    assert!(
        csv.starts_with("ip,allocation_id,use,slot,stack,region\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // status and verify name the stack and region they looked at.
    let status = json(&emulator, &dir("billing-eu"), &["status"]);
    assert_eq!(status["stacks"][0]["stack"], "billing");
    assert_eq!(status["stacks"][0]["region"], EUROPE);
    let verified = json(&emulator, &dir("alpha"), &["verify"]);
    assert_eq!(verified["stacks"][0]["stack"], "default");
    assert_eq!(verified["stacks"][0]["region"], REGION);
    assert_eq!(verified["stacks"][0]["functions"][0]["function"], "alpha");
    assert_eq!(verified["stacks"][0]["functions"][0]["passed"], true);
    let allowed: Vec<String> = verified["stacks"][0]["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(allowed, alpha, "verify holds alpha to its own stack's IPs");

    // `--stack` and `--region` are overrides a user may give from anywhere.
    let named = json(
        &emulator,
        &dir("alpha"),
        &["ips", "--stack", "billing", "--region", EUROPE],
    );
    assert_eq!(ips_of(&named["ips"]), europe);

    // A manifest that does not exist is an error, not the current directory's stack.
    let output = run(
        &emulator,
        &dir("alpha"),
        &["ips", "--manifest-path", "/nonexistent/Cargo.toml"],
    );
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "no IP printed on a failure");
}

#[test]
fn a_stack_with_nothing_in_the_region_is_an_error_not_an_empty_list() {
    let emulator = Emulator::start();
    // The default stack exists; billing's does not.
    deploy(&emulator, "alpha", &[]);
    for args in [
        &["ips"][..],
        &["ips", "--json"],
        &["ips", "--format", "cidr"],
        &["status"],
        &["verify"],
    ] {
        let output = run(&emulator, &dir("billing"), args);
        assert_eq!(
            output.status.code(),
            Some(12),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
        let message = stderr(&output);
        assert!(
            message.contains("stack `billing` has nothing in us-east-1"),
            "{args:?}: {message}"
        );
    }
}

// Blocking calls (the CLI as a subprocess) run on the test's own runtime threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_in_one_region_keeps_the_role_its_functions_in_another_region_run_on() {
    let emulator = Emulator::start();
    deploy(&emulator, "billing", &[]);
    deploy(&emulator, "billing-eu", &[]);
    let iam = emulator.iam().await;
    let ours = "fixedip-billing-us-east-1-lambda";
    let theirs = "fixedip-billing-eu-west-1-lambda";
    for name in [ours, theirs] {
        let found = iam.get_role().role_name(name).send().await;
        assert!(found.is_ok(), "one role per region: {name}");
    }

    expect(
        &emulator,
        &dir("billing-eu"),
        &["destroy", "--yes", "--delete-function"],
        0,
    );
    let gone = iam.get_role().role_name(theirs).send().await;
    assert!(gone.is_err(), "the destroyed region's role is gone");
    let kept = iam
        .get_role()
        .role_name(ours)
        .send()
        .await
        .expect("the other region's role stays")
        .role
        .unwrap();
    let lambda = emulator.lambda().await;
    let function = lambda
        .get_function_configuration()
        .function_name("billing")
        .send()
        .await
        .unwrap();
    assert_eq!(function.role(), Some(kept.arn.as_str()));
    let verified = json(&emulator, &dir("billing"), &["verify"]);
    assert_eq!(verified["stacks"][0]["functions"][0]["passed"], true);
    // The destroyed region keeps its IP, retained, for the partner's allowlist.
    let kept = json(&emulator, &dir("billing-eu"), &["ips"]);
    assert_eq!(kept["ips"][0]["use"], "retained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_shows_what_goes_and_needs_a_yes() {
    let emulator = Emulator::start();
    deploy(&emulator, "alpha", &[]);
    // The role fixedip 0.1 made for every region of a stack: never deleted, named.
    lambda_role(&emulator, "fixedip-default-lambda").await;
    let iam = emulator.iam().await;
    let mark = emulator.mark();

    // Off a terminal, without --yes: refused before any change.
    let output = run(&emulator, &dir("alpha"), &["destroy"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("--yes") && message.contains("--dry-run"),
        "{message}"
    );
    assert!(
        message.contains("function alpha leaves the VPC"),
        "the preview is shown before the refusal: {message}"
    );
    // A dry run prints the same, as its result.
    let preview = expect(&emulator, &dir("alpha"), &["destroy", "--dry-run"], 0);
    assert!(
        preview.contains("Stack `default` in us-east-1"),
        "{preview}"
    );
    assert!(preview.contains("- delete"), "{preview}");
    assert!(
        preview.contains("function alpha leaves the VPC"),
        "{preview}"
    );
    assert!(preview.contains("is kept (retained"), "{preview}");
    assert!(
        preview.contains("the role fixedip-default-lambda, made by fixedip 0.1"),
        "{preview}"
    );
    let preview = json(&emulator, &dir("alpha"), &["destroy", "--dry-run"]);
    assert_eq!(
        preview["stacks"][0]["functions_leaving_vpc"],
        serde_json::json!(["alpha"])
    );
    let (_, mutating) = count(&emulator.requests_since(mark));
    assert_eq!(mutating, 0, "refusal and dry runs change nothing");

    expect(&emulator, &dir("alpha"), &["destroy", "--yes"], 0);
    let output = run(&emulator, &dir("alpha"), &["ips"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the IP is retained, still listed"
    );
    let legacy = iam
        .get_role()
        .role_name("fixedip-default-lambda")
        .send()
        .await;
    assert!(
        legacy.is_ok(),
        "the 0.1 role is left for the user to delete"
    );
}

// Blocking calls (the CLI as a subprocess) run on the test's own runtime threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_fixedip_did_not_create_is_refused_until_adopted() {
    let emulator = Emulator::start();
    let hand_made = lambda_role(&emulator, "hand-made").await;
    hand_made_function(&emulator, "alpha", &hand_made, None).await;
    let lambda = emulator.lambda().await;
    let mark = emulator.mark();

    let zip = scope_zip("alpha");
    let output = run(
        &emulator,
        &dir("alpha"),
        &["deploy", "--zip", zip.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("alpha") && message.contains("--adopt"),
        "names the function and the way to adopt it: {message}"
    );
    let (_, mutating) = count(&emulator.requests_since(mark));
    assert_eq!(mutating, 0, "refused before the first change");
    let unchanged = lambda
        .get_function_configuration()
        .function_name("alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.role(), Some(hand_made.as_str()));
    assert!(unchanged
        .vpc_config()
        .is_none_or(|v| v.subnet_ids().is_empty()));

    let output = run(
        &emulator,
        &dir("alpha"),
        &["deploy", "--adopt", "--zip", zip.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("adopting the function alpha")
            && message.contains(&format!("its role changes from {hand_made}")),
        "the adoption says what changes: {message}"
    );
    let adopted = lambda
        .get_function()
        .function_name("alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(
        adopted
            .tags()
            .and_then(|t| t.get("fixedip:stack"))
            .map(String::as_str),
        Some("default")
    );
    let configuration = adopted.configuration().unwrap();
    assert_eq!(configuration.vpc_config().unwrap().subnet_ids().len(), 1);
    // Adopted, it is the stack's: a redeploy goes ahead without the flag.
    expect(
        &emulator,
        &dir("alpha"),
        &["deploy", "--zip", zip.to_str().unwrap()],
        0,
    );
}

// Blocking calls (the CLI as a subprocess) run on the test's own runtime threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_removes_only_the_lease_of_its_own_stack() {
    let emulator = Emulator::start();
    let ssm = emulator.ssm().await;
    let lease = r#"{"holder":"elsewhere:1:x","command":"deploy","started":1,"expires":4102444800}"#;
    for stack in ["default", "billing"] {
        ssm.put_parameter()
            .name(format!("/fixedip/{stack}/lease"))
            .value(lease)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    let report = json(&emulator, &dir("alpha"), &["unlock"]);
    assert_eq!(report["stacks"][0]["stack"], "default");
    assert_eq!(report["stacks"][0]["removed"]["holder"], "elsewhere:1:x");
    let mut left = Vec::new();
    for stack in ["default", "billing"] {
        let name = format!("/fixedip/{stack}/lease");
        if ssm.get_parameter().name(name).send().await.is_ok() {
            left.push(stack);
        }
    }
    assert_eq!(
        left,
        ["billing"],
        "alpha's stack is unlocked; another stack's live lease is left alone"
    );
}

// Blocking calls (the CLI as a subprocess) run on the test's own runtime threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_function_of_no_stack_holds_it_to_its_own_nats() {
    let emulator = Emulator::start();
    // A fixedip stack in the region: its IPs must not be borrowed.
    let stack_ips = ips_of(&deploy(&emulator, "alpha", &[])["stacks"][0]["ips"]);
    let hand = hand_built_network(&emulator).await;
    let nowhere = tempfile::tempdir().unwrap();

    let report = json(
        &emulator,
        nowhere.path(),
        &["verify", "--function", "partner-sync"],
    );
    let stack = &report["stacks"][0];
    assert_eq!(stack["stack"], serde_json::Value::Null, "no fixedip stack");
    assert_eq!(stack["allowed_from"], "nats");
    assert_eq!(stack["allowed"], serde_json::json!([hand.nat_ip]));
    assert_ne!(vec![hand.nat_ip.clone()], stack_ips);
    assert_eq!(stack["functions"][0]["passed"], true, "{report}");

    // The same function in the public subnet leaves from no NAT: verify fails and says why.
    let lambda = emulator.lambda().await;

    lambda
        .update_function_configuration()
        .function_name("partner-sync")
        .vpc_config(
            aws_sdk_lambda::types::VpcConfig::builder()
                .subnet_ids(&hand.public_subnet)
                .security_group_ids(&hand.security_group)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let output = run(
        &emulator,
        nowhere.path(),
        &["verify", "--function", "partner-sync"],
    );
    assert_eq!(output.status.code(), Some(9), "{}", stderr(&output));
}

#[test]
fn a_named_profile_wins_over_keys_in_the_environment() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let used = home.path().join("profile-was-used");
    let script = home.path().join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIAPROFILE\", \"SecretAccessKey\": \"profile\"}}'\n",
            used.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = home.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile prod]\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    let with_config = |args: &[&str], profile_env: Option<&str>| {
        let mut command = fixedip_in(&emulator, &dir("alpha"), args);
        command.env("AWS_CONFIG_FILE", &config);
        if let Some(profile) = profile_env {
            command.env("AWS_PROFILE", profile);
        }
        command.output().unwrap()
    };

    // The environment's keys, without a profile.
    let output = with_config(&["unlock"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!used.exists(), "no profile named: the environment's keys");

    for (args, profile_env) in [
        (&["unlock", "--profile", "prod"][..], None),
        (&["unlock"][..], Some("prod")),
    ] {
        let _ = std::fs::remove_file(&used);
        let output = with_config(args, profile_env);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            used.exists(),
            "{args:?} AWS_PROFILE={profile_env:?}: the profile's credentials, not the environment's keys"
        );
        assert!(
            stderr(&output).contains("AWS_ACCESS_KEY_ID"),
            "says the environment's keys are not used: {}",
            stderr(&output)
        );
    }

    let output = with_config(&["unlock", "--profile", "nope"], None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("`nope` is not defined")
            && message.contains(&config.display().to_string()),
        "names the profile and the files read: {message}"
    );
}

/// A network built by hand, as a user without fixedip builds it: a VPC, an internet gateway, a
/// public subnet with a NAT gateway and its Elastic IP, a private subnet routed to it, and the
/// function `partner-sync` in the private subnet.
struct HandBuilt {
    nat_ip: String,
    public_subnet: String,
    security_group: String,
}

async fn hand_built_network(emulator: &Emulator) -> HandBuilt {
    let ec2 = emulator.ec2().await;
    let vpc = ec2
        .create_vpc()
        .cidr_block("172.16.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway
        .unwrap()
        .internet_gateway_id
        .unwrap();
    ec2.attach_internet_gateway()
        .vpc_id(&vpc)
        .internet_gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let subnet = |cidr: &'static str| {
        let ec2 = ec2.clone();
        let vpc = vpc.clone();
        async move {
            ec2.create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .availability_zone("us-east-1a")
                .send()
                .await
                .unwrap()
                .subnet
                .unwrap()
                .subnet_id
                .unwrap()
        }
    };
    let public = subnet("172.16.0.0/24").await;
    let private = subnet("172.16.1.0/24").await;
    let address = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&public)
        .allocation_id(address.allocation_id().unwrap())
        .send()
        .await
        .unwrap()
        .nat_gateway
        .unwrap()
        .nat_gateway_id
        .unwrap();
    let table = |target: &'static str| {
        let (ec2, vpc, igw, nat) = (ec2.clone(), vpc.clone(), igw.clone(), nat.clone());
        async move {
            let table = ec2
                .create_route_table()
                .vpc_id(vpc)
                .send()
                .await
                .unwrap()
                .route_table
                .unwrap()
                .route_table_id
                .unwrap();
            let route = ec2
                .create_route()
                .route_table_id(&table)
                .destination_cidr_block("0.0.0.0/0");
            let route = match target {
                "igw" => route.gateway_id(igw),
                _ => route.nat_gateway_id(nat),
            };
            route.send().await.unwrap();
            table
        }
    };
    let public_table = table("igw").await;
    let private_table = table("nat").await;
    for (table, subnet) in [(&public_table, &public), (&private_table, &private)] {
        ec2.associate_route_table()
            .route_table_id(table)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap();
    }
    let group = ec2
        .create_security_group()
        .group_name("partner-sync")
        .description("partner-sync")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();

    let role = lambda_role(emulator, "partner-sync-role").await;
    hand_made_function(emulator, "partner-sync", &role, Some((&private, &group))).await;
    HandBuilt {
        nat_ip: address.public_ip().unwrap().to_owned(),
        public_subnet: public,
        security_group: group,
    }
}

/// A role Lambda may assume, made by hand (not fixedip's); its ARN.
async fn lambda_role(emulator: &Emulator, name: &str) -> String {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let iam = emulator.iam().await;
    let created = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(policy)
        .send()
        .await
        .unwrap();
    created.role.unwrap().arn
}

/// A function made by hand (not fixedip's), outside any VPC or in `(subnet, security group)`.
async fn hand_made_function(
    emulator: &Emulator,
    name: &str,
    role: &str,
    network: Option<(&str, &str)>,
) {
    let code = aws_sdk_lambda::types::FunctionCode::builder()
        .zip_file(aws_sdk_lambda::primitives::Blob::new(
            std::fs::read(scope_zip("alpha")).unwrap(),
        ))
        .build();
    let vpc = network.map(|(subnet, group)| {
        aws_sdk_lambda::types::VpcConfig::builder()
            .subnet_ids(subnet)
            .security_group_ids(group)
            .build()
    });
    let lambda = emulator.lambda().await;
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(code)
        .set_vpc_config(vpc)
        .send()
        .await
        .unwrap();
}
