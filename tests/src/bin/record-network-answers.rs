//! Records moto's answers to the calls `verify`'s network reader makes, for every breakage of the
//! console network (`fixedip_tests::console::BREAKAGES`), into cargo-fixedip's reader fixtures:
//!
//! ```text
//! cargo run -p fixedip-tests --bin record-network-answers             # every breakage
//! cargo run -p fixedip-tests --bin record-network-answers -- nat-instance
//! ```
//!
//! Each breakage is built in a private moto through the SDK, then the reader itself
//! (`cargo_fixedip::aws::network`) runs against it with an interceptor that keeps each answer's
//! body. The reader tests (cargo-fixedip/src/aws/network_tests.rs) replay them: the reader and
//! the egress rules are tested on moto's real answers without starting moto. Run it again after a
//! change to the reader's calls or to moto's pin, and commit the fixtures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use cargo_fixedip::aws::calls::CallLog;
use cargo_fixedip::aws::network::{function_attachment, observe_network};
use cargo_fixedip::aws::Aws;
use fixedip_tests::console::{break_network, build_console_network, BREAKAGES};
use fixedip_tests::{workspace_root, Emulator, REGION};

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

#[tokio::main]
async fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let dir = workspace_root().join("cargo-fixedip/tests/fixtures/network");
    std::fs::create_dir_all(&dir).expect("the fixtures directory");
    for name in BREAKAGES {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
        let network = build_console_network(&emulator).await;
        let target = break_network(&emulator, &network, name).await;

        let recorder = Recorder::default();
        let config = emulator.sdk_config().await;
        let aws = Aws {
            region: REGION.to_owned(),
            account: String::new(),
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
            iam: aws_sdk_iam::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            calls: CallLog::default(),
            config,
        };
        let attachment = function_attachment(&aws, &target.function)
            .await
            .expect("the function's configuration");
        observe_network(&aws, &attachment)
            .await
            .expect("the function's network");

        let answers = recorder.0.lock().unwrap().clone();
        let fixture = serde_json::json!({
            "breakage": name,
            "recorded": "moto 5.2.5 (scripts/emulator.sh), by `cargo run -p fixedip-tests --bin record-network-answers`",
            "function": target.function,
            "allowed": target.allowed,
            "answers": answers,
        });
        let path = dir.join(format!("{name}.json"));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&fixture).unwrap() + "\n",
        )
        .expect("the fixture");
        eprintln!("{name}: {} operations -> {}", answers.len(), path.display());
    }
}
