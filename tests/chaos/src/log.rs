//! The record of every AWS call that went through the proxy: what it was, when, and what happened to it.
//! Tests assert on it (`ChaosProxy::log()`), benchmarks time with it, and `GET /_chaos/log` shows it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::protocol::Operation;
use crate::scenario::Fault;

/// What became of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// moto answered and the answer was sent (perhaps rewritten), with this HTTP status.
    Answered { status: u16 },
    /// The proxy answered with an injected fault; moto never saw the call.
    Injected { fault: Fault, status: Option<u16> },
    /// moto applied the call, then the proxy closed the connection without an answer.
    Lost { status: u16 },
    /// A dependency rule moto skips refused the call (e.g. `DependencyViolation`).
    Refused { code: String, status: u16 },
    /// Arrived after the pause point: held (never forwarded to moto), then dropped on `resume`.
    Held,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Answered { status } => write!(f, "answered {status}"),
            Outcome::Injected {
                fault,
                status: Some(status),
            } => write!(f, "injected {fault:?} ({status})"),
            Outcome::Injected {
                fault,
                status: None,
            } => write!(f, "injected {fault:?}"),
            Outcome::Lost { status } => write!(f, "LOST after moto answered {status}"),
            Outcome::Refused { code, status } => write!(f, "refused {code} ({status})"),
            Outcome::Held => write!(f, "held at the pause point"),
        }
    }
}

/// One call.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Order of arrival, from 1.
    pub seq: u64,
    #[serde(flatten)]
    pub operation: Operation,
    /// Since the proxy started.
    #[serde(rename = "start_ms", serialize_with = "as_millis")]
    pub start: Duration,
    #[serde(rename = "end_ms", serialize_with = "as_millis")]
    pub end: Duration,
    pub outcome: Outcome,
    /// The same instants, for Rust callers that compare with their own clock.
    #[serde(skip)]
    pub started_at: Instant,
    #[serde(skip)]
    pub ended_at: Instant,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// The shared, append-only log.
pub struct RequestLog {
    origin: Instant,
    entries: Mutex<Vec<LogEntry>>,
}

impl RequestLog {
    pub fn new() -> Self {
        RequestLog {
            origin: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Records a finished call and returns its sequence number.
    pub fn record(&self, operation: Operation, started_at: Instant, outcome: Outcome) -> u64 {
        let ended_at = Instant::now();
        let mut entries = self.entries.lock().expect("log lock");
        let seq = entries.len() as u64 + 1;
        entries.push(LogEntry {
            seq,
            operation,
            start: started_at.duration_since(self.origin),
            end: ended_at.duration_since(self.origin),
            outcome,
            started_at,
            ended_at,
        });
        seq
    }

    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries.lock().expect("log lock").clone()
    }

    pub fn clear(&self) {
        self.entries.lock().expect("log lock").clear();
    }
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::new()
    }
}

/// Counting helpers for assertions.
pub trait LogQueries {
    /// Calls of this operation that moto applied (answered or lost), whatever the client saw.
    fn applied(&self, operation: &str) -> usize;
    /// Mutating calls that moto applied.
    fn mutating_applied(&self) -> usize;
}

impl LogQueries for [LogEntry] {
    fn applied(&self, operation: &str) -> usize {
        self.iter()
            .filter(|e| e.operation.name == operation && reached_moto(&e.outcome))
            .count()
    }

    fn mutating_applied(&self) -> usize {
        self.iter()
            .filter(|e| e.operation.mutating && reached_moto(&e.outcome))
            .count()
    }
}

fn reached_moto(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Answered { status } | Outcome::Lost { status } if *status < 300
    )
}
