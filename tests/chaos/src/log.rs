//! The record of every AWS call that went through the proxy: what it was, when, and what happened to it.
//! Tests assert on it (`ChaosProxy::log()`), benchmarks time with it, and `GET /_chaos/log` shows it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::iam::Authorization;
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
    /// What IAM authorizes for the call (`authorization.rs`), read before moto applied it: the
    /// suites judge every call against `cargo fixedip iam-policy` with it.
    pub authorizations: Vec<Authorization>,
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
    pub fn record(
        &self,
        operation: Operation,
        authorizations: Vec<Authorization>,
        started_at: Instant,
        outcome: Outcome,
    ) -> u64 {
        let ended_at = Instant::now();
        let mut entries = self.entries.lock().expect("log lock");
        let seq = entries.len() as u64 + 1;
        entries.push(LogEntry {
            seq,
            operation,
            start: started_at.duration_since(self.origin),
            end: ended_at.duration_since(self.origin),
            outcome,
            authorizations,
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

/// Figures of a run, for benchmarks: how much of the wall time was spent waiting on calls one after the
/// other, and how much concurrency the client used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogSummary {
    pub calls: usize,
    pub mutating_calls: usize,
    /// From the first call's start to the last call's end.
    #[serde(serialize_with = "as_millis")]
    pub wall: Duration,
    /// The sum of every call's duration: the wall time of the same calls made one at a time.
    #[serde(serialize_with = "as_millis")]
    pub sequential: Duration,
    /// The most calls in flight at once.
    pub max_in_flight: usize,
    /// Round trips deep: the longest chain of calls each started after the one before it ended
    /// ([`LogQueries::deepest_chain`]). Calls made together count once; a call that had to wait
    /// for another's answer counts again.
    pub depth: usize,
}

/// Counting helpers for assertions.
pub trait LogQueries {
    /// Figures for benchmarks (all zero for an empty log).
    fn summary(&self) -> LogSummary;
    /// Calls of this operation that moto applied (answered or lost), whatever the client saw.
    fn applied(&self, operation: &str) -> usize;
    /// Mutating calls that moto applied.
    fn mutating_applied(&self) -> usize;
    /// The longest chain of calls each started after the one before it ended: what a run waited
    /// on one after the other, in order. Its length is [`LogSummary::depth`].
    fn deepest_chain(&self) -> Vec<&LogEntry>;
}

impl LogQueries for [LogEntry] {
    fn summary(&self) -> LogSummary {
        let start = self.iter().map(|e| e.start).min().unwrap_or_default();
        let end = self.iter().map(|e| e.end).max().unwrap_or_default();
        // Sweep over starts (+1) and ends (-1); at equal instants an end comes first.
        let mut edges: Vec<(Duration, i64)> = self
            .iter()
            .flat_map(|e| [(e.start, 1), (e.end, -1)])
            .collect();
        edges.sort();
        let (mut in_flight, mut max_in_flight) = (0i64, 0i64);
        for (_, step) in edges {
            in_flight += step;
            max_in_flight = max_in_flight.max(in_flight);
        }
        LogSummary {
            calls: self.len(),
            mutating_calls: self.iter().filter(|e| e.operation.mutating).count(),
            wall: end.saturating_sub(start),
            sequential: self.iter().map(|e| e.end - e.start).sum(),
            max_in_flight: max_in_flight as usize,
            depth: self.deepest_chain().len(),
        }
    }

    fn deepest_chain(&self) -> Vec<&LogEntry> {
        let mut by_start: Vec<&LogEntry> = self.iter().collect();
        by_start.sort_by_key(|e| e.start);
        // chain[i]: the length of the longest chain ending with call i, and the call before it.
        let mut chain: Vec<(usize, Option<usize>)> = Vec::with_capacity(by_start.len());
        for (i, call) in by_start.iter().enumerate() {
            let before = (0..i)
                .filter(|&j| by_start[j].end <= call.start)
                .max_by_key(|&j| chain[j].0);
            chain.push((before.map_or(0, |j| chain[j].0) + 1, before));
        }
        let mut at = (0..chain.len()).max_by_key(|&i| chain[i].0);
        let mut calls = Vec::new();
        while let Some(i) = at {
            calls.push(by_start[i]);
            at = chain[i].1;
        }
        calls.reverse();
        calls
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    fn entry(name: &str, start_ms: u64, end_ms: u64) -> LogEntry {
        let now = Instant::now();
        LogEntry {
            seq: 0,
            operation: Operation {
                service: "ec2".into(),
                name: name.into(),
                mutating: name.starts_with("Create"),
                protocol: Protocol::Ec2Query,
                region: "us-east-1".into(),
            },
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            outcome: Outcome::Answered { status: 200 },
            authorizations: Vec::new(),
            started_at: now,
            ended_at: now,
        }
    }

    #[test]
    fn the_summary_tells_concurrency_from_sequence() {
        let log = [
            entry("CreateVpc", 0, 100),
            entry("CreateSubnet", 100, 200),
            entry("CreateSubnet", 100, 200),
            entry("DescribeSubnets", 150, 250),
        ];
        let s = log.summary();
        assert_eq!((s.calls, s.mutating_calls, s.max_in_flight), (4, 3, 3));
        assert_eq!(s.wall, Duration::from_millis(250));
        assert_eq!(s.sequential, Duration::from_millis(400));
        assert_eq!(log.applied("CreateSubnet"), 2);
        // CreateVpc, then any of the three calls made after its answer, which overlap.
        assert_eq!(s.depth, 2);
        let chain = log.deepest_chain();
        assert_eq!(chain[0].operation.name, "CreateVpc");
        let alone = [entry("CreateVpc", 0, 100), entry("CreateSubnet", 100, 200)];
        assert_eq!(alone.summary().depth, 2);
        assert_eq!(alone[..1].summary().depth, 1);
    }
}
