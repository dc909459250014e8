//! The suites' IAM check: every call the CLI makes is judged against the document
//! `cargo fixedip iam-policy` prints, conditions included. The calls come from a chaos proxy's log
//! (`fixedip_chaos::authorization` records what IAM authorizes for each call, with its resources'
//! tags at that moment); `fixedip_chaos::iam::evaluate` judges them.
//!
//! [`Emulator`](crate::Emulator) puts a proxy that only watches in front of moto for every CLI
//! run and makes this check when it is dropped; the chaos labs make it on their own proxy's log.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::OnceLock;

use fixedip_chaos::{ChaosProxy, LogEntry, Scenario};

/// The document `cargo fixedip iam-policy` prints, read once per test process.
pub fn policy_document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let output = Command::new(crate::cargo_fixedip_bin())
            .args(["fixedip", "iam-policy"])
            .output()
            .expect("cargo-fixedip runs");
        assert!(output.status.success(), "iam-policy runs");
        let document: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("iam-policy prints JSON");
        assert_eq!(document["Version"], "2012-10-17");
        document
    })
}

/// Every authorization of every call in the log must be allowed by the policy document.
pub fn assert_allowed_by_iam_policy(log: &[LogEntry]) {
    assert_allowed_by(policy_document(), log);
}

/// Every authorization of every call in the log must be allowed by `document`.
pub fn assert_allowed_by(document: &serde_json::Value, log: &[LogEntry]) {
    assert!(
        log.iter().all(|entry| !entry.authorizations.is_empty()),
        "every logged call carries what IAM authorizes for it"
    );
    let denied: BTreeSet<String> = log
        .iter()
        .flat_map(|entry| {
            entry
                .authorizations
                .iter()
                .filter_map(move |authorization| {
                    fixedip_chaos::iam::evaluate(document, authorization)
                        .err()
                        .map(|why| format!("{} → {authorization}: {why}", entry.operation.name))
                })
        })
        .collect();
    assert!(
        denied.is_empty(),
        "calls the iam-policy document denies:\n{}",
        denied.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// A chaos proxy with the default scenario (it changes nothing, only identifies and logs), on a
/// runtime of its own so that sync and async tests alike can start and drop it.
pub struct Watcher {
    proxy: Option<ChaosProxy>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Watcher {
    pub fn start(upstream: &str) -> Watcher {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the watching proxy");
        let (sender, receiver) = std::sync::mpsc::channel();
        let upstream = upstream.to_owned();
        runtime.spawn(async move {
            let _ = sender.send(ChaosProxy::start(&upstream, Scenario::default()).await);
        });
        let proxy = receiver
            .recv()
            .expect("the watching proxy's start answers")
            .expect("the watching proxy starts");
        Watcher {
            proxy: Some(proxy),
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        self.proxy.as_ref().expect("running").url()
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.proxy.as_ref().expect("running").log()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.proxy.take());
        if let Some(runtime) = self.runtime.take() {
            // Allowed inside an async test too, unlike dropping the runtime.
            runtime.shutdown_background();
        }
    }
}
