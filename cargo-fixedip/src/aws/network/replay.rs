//! Moto's recorded answers played back to the CLI's own SDK clients, for the reader tests
//! (`network_tests.rs`, `stack_tests.rs`; fixtures recorded by
//! `cargo run -p fixedip-tests --bin record-network-answers`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use fixedip_core::operation;

use crate::aws::Aws;

/// An HTTP client that answers each request with moto's recorded answer to the same operation:
/// the SDK's own serialization, signing and parsing run, only the network is replaced.
#[derive(Debug, Clone)]
struct Replay(Arc<Mutex<BTreeMap<String, VecDeque<String>>>>);

impl Replay {
    fn new(answers: &BTreeMap<String, Vec<String>>) -> Replay {
        let queues = answers
            .iter()
            .map(|(operation, bodies)| (operation.clone(), bodies.iter().cloned().collect()))
            .collect();
        Replay(Arc::new(Mutex::new(queues)))
    }
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri = request.uri();
        let after_host = uri.split_once("://").map_or(uri, |(_, rest)| rest);
        let target = after_host.find('/').map_or("/", |i| &after_host[i..]);
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let called = operation::identify(&operation::Request {
            method: request.method(),
            path,
            query,
            authorization: request.headers().get("authorization"),
            target: request.headers().get("x-amz-target"),
            body: request.body().bytes().unwrap_or_default(),
        })
        .expect("the reader calls AWS operations");
        let mut queues = self.0.lock().unwrap();
        let queue = queues.get_mut(&called.name).unwrap_or_else(|| {
            panic!(
                "the reader called {} and no answer to it was recorded: record the fixtures again",
                called.name
            )
        });
        // A call naming an attribute (DescribeVpcAttribute, sent for two attributes at once, so
        // in either order) gets the answer about that attribute; any other call the next answer,
        // and the last answer to an operation stands for any further call of it.
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default());
        let attribute = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Attribute="))
            .map(|name| format!("<{name}>"));
        let position = match &attribute {
            Some(element) => queue.iter().position(|answer| answer.contains(element)),
            None => Some(0),
        }
        .expect("a recorded answer");
        let body = if queue.len() > 1 {
            queue.remove(position)
        } else {
            queue.get(position).cloned()
        }
        .expect("a recorded answer");
        let status = StatusCode::try_from(200).expect("a status");
        HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(body))))
    }
}

impl HttpClient for Replay {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// The CLI's clients, answering each operation from `answers` (bodies by operation, in the order
/// the reader received them).
pub(super) async fn replaying(answers: &BTreeMap<String, Vec<String>>) -> Aws {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "replay"))
        .http_client(Replay::new(answers))
        .load()
        .await;
    Aws::from_config(config)
}
