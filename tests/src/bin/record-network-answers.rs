//! Records moto's answers to the calls the network reader makes, into cargo-fixedip's reader
//! fixtures:
//!
//! - for every breakage of the console network (`fixedip_tests::console::BREAKAGES`), the answers
//!   to `verify`'s reader (by VPC id): `cargo-fixedip/tests/fixtures/network/<breakage>.json`;
//! - for stacks that `cargo fixedip deploy` built (one per mode, [`STACKS`]), the answers to the
//!   planner's reader (by the stack's tags): `cargo-fixedip/tests/fixtures/stack/<stack>.json`.
//!
//! ```text
//! cargo build -p fixedip-tests --bins                                  # the CLI it deploys with
//! cargo run -p fixedip-tests --bin record-network-answers             # everything
//! cargo run -p fixedip-tests --bin record-network-answers -- nat-instance stack:endpoints
//! ```
//!
//! Each network is built in a private moto, then the reader itself (`cargo_fixedip::aws::network`)
//! runs against it with an interceptor that keeps each answer's body. The reader tests
//! (cargo-fixedip/src/aws/network_tests.rs, stack_tests.rs) replay them: the reader is tested on
//! moto's real answers without starting moto. Run it again after a change to the reader's calls or
//! to moto's pin, and commit the fixtures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use cargo_fixedip::aws::network::{
    describe_stack, function_attachment, observe_network, Leftovers,
};
use cargo_fixedip::aws::Aws;
use fixedip_core::requirements::{AllocationId, StackName};
use fixedip_tests::console::{allocate_address, break_network, build_console_network, BREAKAGES};
use fixedip_tests::{deploy_fixture, workspace_root, Emulator, REGION};

/// The stacks recorded for the by-tag reader: (fixture function, its stack), one per mode.
const STACKS: [(&str, &str); 4] = [
    ("egress-one", "default"),       // a NAT gateway per AZ, azs = 1
    ("egress-one-nat", "default"),   // azs = 2, nats = 1
    ("nat-instance", "default"),     // NAT instances
    ("endpoints-four", "endpoints"), // gateway and interface endpoints
];

/// Keeps the body of every answer, by operation, in the order they came.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<BTreeMap<String, Vec<String>>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "record-network-answers"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().expect("operation metadata").name();
        let response = context.response();
        assert!(
            response.status().is_success(),
            "{operation} failed: the reader must only see successful answers"
        );
        // A non-streaming answer has been read into memory before it is deserialized.
        let body = response.body().bytes().expect("a buffered answer");
        self.0
            .lock()
            .unwrap()
            .entry(operation.to_owned())
            .or_default()
            .push(String::from_utf8(body.to_vec()).expect("a text answer"));
        Ok(())
    }
}

/// The SDK clients of the CLI, with every EC2 and Lambda answer kept by `recorder`.
async fn recording_aws(emulator: &Emulator, recorder: &Recorder) -> Aws {
    let config = emulator.sdk_config().await;
    Aws {
        region: REGION.to_owned(),
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&config)
                .interceptor(recorder.clone())
                .build(),
        ),
        lambda: aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .interceptor(recorder.clone())
                .build(),
        ),
        ..Aws::from_config(config)
    }
}

fn write_fixture(path: &std::path::Path, fixture: serde_json::Value) {
    std::fs::create_dir_all(path.parent().expect("a directory")).expect("the fixtures directory");
    std::fs::write(path, serde_json::to_string_pretty(&fixture).unwrap() + "\n")
        .expect("the fixture");
}

const RECORDED: &str =
    "moto 5.2.5 (scripts/emulator.sh), by `cargo run -p fixedip-tests --bin record-network-answers`";

async fn record_breakage(name: &str) {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let network = build_console_network(&emulator).await;
    let target = break_network(&emulator, &network, name).await;

    let recorder = Recorder::default();
    let aws = recording_aws(&emulator, &recorder).await;
    let attachment = function_attachment(&aws, &target.function)
        .await
        .expect("the function's configuration");
    observe_network(&aws, &attachment)
        .await
        .expect("the function's network");

    let answers = recorder.0.lock().unwrap().clone();
    let path = workspace_root().join(format!("cargo-fixedip/tests/fixtures/network/{name}.json"));
    write_fixture(
        &path,
        serde_json::json!({
            "breakage": name,
            "recorded": RECORDED,
            "function": target.function,
            "allowed": target.allowed,
            "answers": answers,
        }),
    );
    eprintln!("{name}: {} operations -> {}", answers.len(), path.display());
}

/// Deploys a fixture function with the CLI (the `cargo-fixedip-under-test` next to this binary),
/// allocates one more address that is not the stack's, and records the by-tag reader's answers
/// with that address as adopted (`ips = [...]`).
async fn record_stack(fixture: &str, stack: &str) {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    deploy_fixture(&emulator, fixture);
    let (adopted, adopted_ip) = allocate_address(&emulator.ec2().await).await;

    let recorder = Recorder::default();
    let aws = recording_aws(&emulator, &recorder).await;
    let stack_name = StackName::parse(stack).expect("a stack name");
    describe_stack(
        &aws,
        &stack_name,
        &[AllocationId::parse(&adopted).expect("an allocation id")],
        Leftovers::default(),
    )
    .await
    .expect("the stack's resources");

    let answers = recorder.0.lock().unwrap().clone();
    let path = workspace_root().join(format!("cargo-fixedip/tests/fixtures/stack/{fixture}.json"));
    write_fixture(
        &path,
        serde_json::json!({
            "fixture": fixture,
            "stack": stack,
            "recorded": RECORDED,
            "adopted": adopted,
            "adopted_ip": adopted_ip,
            "answers": answers,
        }),
    );
    eprintln!(
        "stack:{fixture}: {} operations -> {}",
        answers.len(),
        path.display()
    );
}

#[tokio::main]
async fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    for name in BREAKAGES {
        if wanted(name) {
            record_breakage(name).await;
        }
    }
    for (fixture, stack) in STACKS {
        if wanted(&format!("stack:{fixture}")) {
            record_stack(fixture, stack).await;
        }
    }
}
