//! The proxy itself: accepts the SDK's calls on 127.0.0.1, applies the scenario, forwards to moto, and
//! rewrites what comes back. Also serves the control API under `/_chaos/`.
//!
//! A call goes through, in order: identification → pause point → latency → fault → AWS's rules that moto
//! skips (dependencies, Lambda conflicts, role propagation) → moto → timing rewrites and Hyperplane ENIs →
//! log. Locks are never held across an await.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::authorization;
use crate::consistency::{self, FreshIds};
use crate::control;
use crate::dependencies;
use crate::enis::{self, Hyperplane, VpcAttachment};
use crate::faults::{self, FaultPlan};
use crate::iam::Authorization;
use crate::launch;
use crate::log::{LogEntry, Outcome, RequestLog};
use crate::nat_boot;
use crate::protocol::{self, Operation, Protocol, RequestView};
use crate::scenario::{Fault, Latency, Scenario};
use crate::timing::{self, Clocks, FunctionPhase};
use crate::tokens::{self, Replay, Tokens};
use crate::upstream::{xml_texts, Caller, Upstream, UpstreamError};

/// The longest a call is held at a pause point before its connection is dropped anyway.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(600);

/// How the proxy is started.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// moto's base URL, e.g. `http://127.0.0.1:5000`.
    pub upstream: String,
    /// Where to listen; must be a loopback address. Port 0 picks a free port.
    pub listen: SocketAddr,
    pub scenario: Scenario,
    /// Print each call to stderr as it finishes (for watching a deploy by hand).
    pub echo: bool,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the chaos proxy listens on loopback only, not {0}: use 127.0.0.1")]
    NotLoopback(SocketAddr),
    #[error("`{0}` is not a URL of the form http://127.0.0.1:5000")]
    BadUpstream(String),
    #[error("cannot listen on {addr}: {source}; pick another port")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running chaos proxy. Dropping it stops it.
pub struct ChaosProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// Whether the world is stopped after the scenario's pause point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PauseState {
    Running,
    /// The k-th mutating call was answered; every later call is held.
    Paused,
}

pub(crate) struct Shared {
    upstream: Upstream,
    pub(crate) log: RequestLog,
    state: Mutex<State>,
    pause: watch::Sender<PauseState>,
    /// Wakes held calls when the test resumes (they are then dropped, see `hold`).
    release: Notify,
    echo: bool,
}

/// Everything the scenario changes, under one lock.
pub(crate) struct State {
    pub(crate) scenario: Scenario,
    faults: FaultPlan,
    clocks: Clocks,
    hyperplane: Hyperplane,
    /// When each EC2 id was created (`consistency.rs`).
    fresh: FreshIds,
    /// The first answer to each client token (`tokens.rs`).
    tokens: Tokens,
    /// fixedip's NAT instances and their boot (`nat_boot.rs`).
    nat_instances: nat_boot::NatInstances,
    /// Self-healing NATs' group instances and their fixed interfaces (`nat_group.rs`).
    nat_groups: crate::nat_group::GroupInstances,
    /// CreateNatGateway calls answered since the scenario was set (`failures.nat_gateways`).
    nat_creates: u64,
    /// CreateVpcEndpoint calls answered since the scenario was set, and the endpoints that fail
    /// (`failures.endpoints`).
    endpoint_creates: u64,
    failed_endpoints: std::collections::BTreeSet<String>,
    /// CreateFunction calls answered for each function of `failures.functions` since the scenario
    /// was set.
    failed_functions: std::collections::HashMap<String, u32>,
    /// Mutating calls forwarded to moto since the scenario was set.
    mutating_forwarded: u64,
    /// Set when the pause point's call is forwarded: later calls are held from then on.
    holding: bool,
    /// Calls forwarded to moto whose answer is not in the log yet. The world is stopped (and a
    /// test waiting for the pause point is woken) only once this is zero while holding: the k-th
    /// call may end before calls forwarded ahead of it, which moto is still applying.
    in_flight: u64,
}

impl State {
    fn new(scenario: Scenario) -> Self {
        let faults = FaultPlan::new(scenario.faults.clone(), scenario.seed);
        let clocks = Clocks::new(scenario.timing.clone());
        State {
            scenario,
            faults,
            clocks,
            hyperplane: Hyperplane::default(),
            fresh: FreshIds::default(),
            tokens: Tokens::default(),
            nat_instances: Default::default(),
            nat_groups: Default::default(),
            nat_creates: 0,
            endpoint_creates: 0,
            failed_endpoints: Default::default(),
            failed_functions: Default::default(),
            mutating_forwarded: 0,
            holding: false,
            in_flight: 0,
        }
    }

    /// moto was reset: its resources, and so the clocks and ENIs about them, are gone.
    fn forget_resources(&mut self) {
        self.clocks = Clocks::new(self.scenario.timing.clone());
        self.hyperplane = Hyperplane::default();
        self.fresh = FreshIds::default();
        self.tokens = Tokens::default();
        self.nat_instances = Default::default();
        self.nat_groups = Default::default();
    }

    /// A new scenario restarts fault counters and the pause point, but keeps what the clocks and the
    /// Hyperplane book know: resources created under the old scenario still exist.
    fn replace_scenario(&mut self, scenario: Scenario) {
        self.faults = FaultPlan::new(scenario.faults.clone(), scenario.seed);
        self.clocks.timing = scenario.timing.clone();
        self.scenario = scenario;
        self.mutating_forwarded = 0;
        self.holding = false;
        self.nat_creates = 0;
        self.endpoint_creates = 0;
        self.nat_instances.restart_count();
        self.failed_functions.clear();
        // `in_flight` is not the scenario's: calls already forwarded still end.
    }
}

/// The connection is closed without an answer (a dropped connection or a lost response).
#[derive(Debug)]
struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the chaos scenario")
    }
}

impl std::error::Error for ConnectionDropped {}

type Answer = Result<Response<Full<Bytes>>, ConnectionDropped>;

impl ChaosProxy {
    /// Starts a proxy in front of `upstream` on a free loopback port.
    pub async fn start(upstream: &str, scenario: Scenario) -> Result<ChaosProxy, StartError> {
        ChaosProxy::start_with(ProxyOptions {
            upstream: upstream.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            scenario,
            echo: false,
        })
        .await
    }

    pub async fn start_with(options: ProxyOptions) -> Result<ChaosProxy, StartError> {
        if !options.listen.ip().is_loopback() {
            return Err(StartError::NotLoopback(options.listen));
        }
        let upstream_uri: http::Uri = options
            .upstream
            .parse()
            .map_err(|_| StartError::BadUpstream(options.upstream.clone()))?;
        if upstream_uri.scheme_str() != Some("http") || upstream_uri.authority().is_none() {
            return Err(StartError::BadUpstream(options.upstream.clone()));
        }
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?;
        let (pause, _) = watch::channel(PauseState::Running);
        let shared = Arc::new(Shared {
            upstream: Upstream::new(upstream_uri),
            log: RequestLog::new(),
            state: Mutex::new(State::new(options.scenario)),
            pause,
            release: Notify::new(),
            echo: options.echo,
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        Ok(ChaosProxy {
            addr,
            shared,
            server,
        })
    }

    /// The URL to give the SDK as `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every AWS call so far, in order of completion.
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared.log.entries()
    }

    pub fn clear_log(&self) {
        self.shared.log.clear();
    }

    pub fn scenario(&self) -> Scenario {
        self.shared.lock().scenario.clone()
    }

    /// Replaces the scenario (fault counters and the pause point restart) and releases held calls.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.shared.set_scenario(scenario);
    }

    /// Waits until the scenario's pause point is reached (the k-th mutating call was answered by moto);
    /// `false` if it was not reached within `timeout`.
    pub async fn wait_paused(&self, timeout: Duration) -> bool {
        self.shared.wait_paused(timeout).await
    }

    /// Releases the calls held at the pause point (they are dropped: nothing after the pause point
    /// reaches moto) and lets new calls through again.
    pub fn resume(&self) {
        self.shared.resume();
    }

    /// Runs until the server task ends (for the command-line proxy).
    pub async fn serve_forever(mut self) {
        let _ = (&mut self.server).await;
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic under the lock (a bug) should not turn every later call into a second panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn set_scenario(&self, scenario: Scenario) {
        self.lock().replace_scenario(scenario);
        self.resume();
    }

    pub(crate) fn resume(&self) {
        self.lock().holding = false;
        self.pause.send_replace(PauseState::Running);
        self.release.notify_waiters();
    }

    pub(crate) async fn wait_paused(&self, timeout: Duration) -> bool {
        let mut rx = self.pause.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s == PauseState::Paused))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Accepts connections until the task is aborted; each connection is served on its own task.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            // A dropped connection ends here with an error, on purpose: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Err(ConnectionDropped);
    };
    if parts.uri.path().starts_with("/_chaos") {
        return Ok(control::answer(&shared, &parts.method, &parts.uri, &body).await);
    }
    let view = RequestView {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let Some(operation) = protocol::identify(&view) else {
        // moto's own API and anything else: passed through untouched and unlogged. After a reset of
        // moto, what the proxy remembers about its resources is stale too.
        if parts.uri.path() == "/moto-api/reset" {
            shared.lock().forget_resources();
        }
        return forward_plain(&shared, parts, body).await;
    };
    let call = Call {
        caller: Caller::from_headers(&parts.headers, &operation.region),
        params: if matches!(operation.protocol, Protocol::Ec2Query | Protocol::AwsQuery) {
            protocol::query_params(&view)
        } else {
            Vec::new()
        },
        function: protocol::lambda_function_name(parts.uri.path()),
        path: parts.uri.path().to_owned(),
        operation,
        started: Instant::now(),
    };
    // A call runs to its end on its own task even if the client goes away (is killed) meanwhile: as on
    // AWS, a call that reached the service takes effect, and the log never misses it.
    let task = tokio::spawn(async move {
        reap_lingering_enis(&shared).await;
        let authorizations = authorizations(&shared, &call, &body).await;
        let mut forwarded = false;
        let answer = process(&shared, &call, parts, body, &mut forwarded).await;
        record(&shared, &call, authorizations, &answer);
        // Signalled once the last forwarded call is in the log, so that a test woken by it sees
        // every call that reached moto there, and moto has applied them all.
        if forwarded {
            let stopped = {
                let mut state = shared.lock();
                state.in_flight -= 1;
                state.holding && state.in_flight == 0
            };
            if stopped {
                shared.pause.send_replace(PauseState::Paused);
            }
        }
        match answer {
            Processed::Send(response, _) => Ok(response),
            Processed::Drop(_) => Err(ConnectionDropped),
            Processed::Hold => {
                hold(&shared).await;
                Err(ConnectionDropped)
            }
        }
    });
    match task.await {
        Ok(Ok(response)) => Ok(response.map(Full::new)),
        Ok(Err(dropped)) => Err(dropped),
        Err(_) => Err(ConnectionDropped),
    }
}

/// What IAM would authorize for the call, with the tags its resources carry before moto applies
/// it. A lookup moto fails is recorded as an authorization no policy grants, so that the suites'
/// policy check fails loudly rather than judging nothing.
async fn authorizations(shared: &Shared, call: &Call, body: &Bytes) -> Vec<Authorization> {
    let json: Value = match call.operation.protocol {
        Protocol::RestJson | Protocol::Json11 => {
            serde_json::from_slice(body).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    authorization::of_call(
        &shared.upstream,
        &call.caller,
        &call.operation,
        &call.params,
        &call.path,
        &json,
    )
    .await
    .unwrap_or_else(|error| {
        vec![Authorization::new(
            "chaos:TagLookupFailed",
            format!("{}: {error}", call.operation.name),
        )]
    })
}

fn record(shared: &Shared, call: &Call, authorizations: Vec<Authorization>, answer: &Processed) {
    let outcome = match answer {
        Processed::Send(_, outcome) | Processed::Drop(outcome) => outcome.clone(),
        Processed::Hold => Outcome::Held,
    };
    let seq = shared.log.record(
        call.operation.clone(),
        authorizations,
        call.started,
        outcome.clone(),
    );
    if shared.echo {
        let kind = if call.operation.mutating {
            "write"
        } else {
            "read"
        };
        eprintln!(
            "#{seq:<4} {:>6} ms  {:<6} {:<5} {:<34} {outcome}",
            call.started.elapsed().as_millis(),
            call.operation.service,
            kind,
            call.operation.name,
        );
    }
}

/// One identified AWS call and what the proxy needs to know about it.
struct Call {
    operation: Operation,
    caller: Caller,
    /// Query parameters (EC2, IAM, STS); empty for JSON protocols.
    params: Vec<(String, String)>,
    /// The function named in a Lambda path.
    function: Option<String>,
    /// The request's path (Lambda names functions and tagged ARNs there).
    path: String,
    started: Instant,
}

impl Call {
    fn function_key(&self, name: &str) -> String {
        format!(
            "{}/{}/{}",
            self.caller.account_key(),
            self.caller.region,
            protocol::function_name_of(name)
        )
    }

    fn is(&self, service: &str, name: &str) -> bool {
        self.operation.service == service && self.operation.name == name
    }
}

enum Processed {
    Send(Response<Bytes>, Outcome),
    Drop(Outcome),
    /// Arrived after the pause point: logged at once (the client may be killed while it waits), held
    /// until resumed, then dropped.
    Hold,
}

async fn process(
    shared: &Arc<Shared>,
    call: &Call,
    parts: http::request::Parts,
    body: Bytes,
    forwarded: &mut bool,
) -> Processed {
    // Latency first: a throttled call is slow too.
    let latency = {
        let mut state = shared.lock();
        match state.scenario.latency.clone() {
            Some(Latency::Fixed { ms }) => ms,
            Some(Latency::Uniform { min_ms, max_ms }) => state.faults.uniform(min_ms, max_ms),
            None => 0,
        }
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let fault = shared.lock().faults.decide(&call.operation);
    match fault {
        Some(Fault::Throttle) => {
            let response = faults::throttle(&call.operation);
            let status = Some(response.status().as_u16());
            return Processed::Send(
                response,
                Outcome::Injected {
                    fault: Fault::Throttle,
                    status,
                },
            );
        }
        Some(fault @ (Fault::InternalError | Fault::ServiceUnavailable)) => {
            let status = if fault == Fault::InternalError {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let response = faults::server_error(&call.operation, status);
            return Processed::Send(
                response,
                Outcome::Injected {
                    fault,
                    status: Some(status.as_u16()),
                },
            );
        }
        Some(Fault::DropConnection) => {
            return Processed::Drop(Outcome::Injected {
                fault: Fault::DropConnection,
                status: None,
            });
        }
        Some(Fault::LostResponse) | None => {}
    }

    let request_json: Value = if call.operation.protocol == Protocol::RestJson {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    match refuse(shared, call, &request_json).await {
        Ok(Some(response)) => {
            let code = response
                .headers()
                .get("x-amzn-ErrorType")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    xml_texts(&String::from_utf8_lossy(response.body()), "Code").join(",")
                });
            let status = response.status().as_u16();
            return Processed::Send(response, Outcome::Refused { code, status });
        }
        Ok(None) => {}
        Err(error) => return upstream_failure(error),
    }

    // The pause point: exactly k mutating calls reach moto, whatever runs concurrently. Counted
    // in flight under the same lock, so that the pause is signalled only after the last of them.
    {
        let mut state = shared.lock();
        if state.holding {
            return Processed::Hold;
        }
        if call.operation.mutating {
            state.mutating_forwarded += 1;
            state.holding = state.scenario.pause_after_mutating == Some(state.mutating_forwarded);
        }
        state.in_flight += 1;
        *forwarded = true;
    }

    let (parts, body) = for_moto(call, parts, body);
    let response = match shared.upstream.forward(parts, body).await {
        Ok(response) => response,
        Err(error) => return upstream_failure(error),
    };
    let status = response.status().as_u16();
    let response = if response.status().is_success() {
        after_moto(shared, call, &request_json, response).await
    } else {
        response
    };
    if fault == Some(Fault::LostResponse) {
        Processed::Drop(Outcome::Lost { status })
    } else {
        Processed::Send(response, Outcome::Answered { status })
    }
}

/// The request as moto gets it: as the client sent it, except for DescribeNetworkInterfaces filters
/// on the fields the proxy rewrites (see `enis::ShownFilters`), which the proxy applies to its answer.
fn for_moto(
    call: &Call,
    mut parts: http::request::Parts,
    body: Bytes,
) -> (http::request::Parts, Bytes) {
    // The SDK sends Query calls as a form body; the Query string form is passed on as it is.
    if !call.is("ec2", "DescribeNetworkInterfaces")
        || body.is_empty()
        || !enis::ShownFilters::named_in(&call.params)
    {
        return (parts, body);
    }
    let (params, _) = enis::ShownFilters::take_from(&call.params);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    // The client's length no longer holds; hyper sets the new one from the body.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    (parts, Bytes::from(body))
}

/// moto could not be reached: the client sees a 502, as behind a real load balancer.
fn upstream_failure(error: UpstreamError) -> Processed {
    eprintln!("fixedip-chaos: {error}");
    let response = Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Bytes::from(error.to_string()))
        .expect("static response parts are valid");
    Processed::Send(response, Outcome::Answered { status: 502 })
}

/// Holds a call after the pause point until resumed (bounded by `MAX_HOLD`); the caller then drops it.
async fn hold(shared: &Shared) {
    let released = shared.release.notified();
    tokio::pin!(released);
    // Registered before checking: a resume between the check and the wait is not missed.
    released.as_mut().enable();
    if !shared.lock().holding {
        return;
    }
    let _ = tokio::time::timeout(MAX_HOLD, released).await;
}

/// AWS's refusals that moto does not make. `Ok(Some(answer))` refuses the call.
async fn refuse(
    shared: &Arc<Shared>,
    call: &Call,
    request_json: &Value,
) -> Result<Option<Response<Bytes>>, UpstreamError> {
    let now = Instant::now();
    // Lambda's interfaces are requester-managed: while Lambda holds one, nobody else deletes it.
    if call.is("ec2", "DeleteNetworkInterface") {
        if let Some(id) = protocol::param(&call.params, "NetworkInterfaceId") {
            if shared.lock().hyperplane.holds(id) {
                return Ok(Some(faults::ec2_error(
                    StatusCode::BAD_REQUEST,
                    enis::IN_USE_CODE,
                    &enis::in_use_message(id),
                )));
            }
        }
    }
    if call.operation.service == "ec2" {
        if let Some(answer) = consistency_refusal(shared, call, now).await? {
            return Ok(Some(answer));
        }
    }
    if call.is("ec2", "CreateSubnet") {
        let refused = shared.lock().scenario.refused_subnet_azs.clone();
        let az = protocol::param(&call.params, "AvailabilityZone");
        if let Some(r) = crate::zones::refuse_subnet(&refused, az) {
            return Ok(Some(faults::ec2_error(r.status, r.code, &r.message)));
        }
    }
    let unsupported = shared.lock().scenario.unsupported_instance_azs.clone();
    if call.is("ec2", "RunInstances") && !unsupported.is_empty() {
        let subnet = protocol::param(&call.params, "SubnetId")
            .or_else(|| protocol::param(&call.params, "NetworkInterface.1.SubnetId"))
            .unwrap_or_default();
        let answer = shared
            .upstream
            .ec2(
                &call.caller,
                &[("Action", "DescribeSubnets"), ("SubnetId.1", subnet)],
            )
            .await?;
        let az = crate::upstream::xml_texts(&answer, "availabilityZone");
        let instance_type = protocol::param(&call.params, "InstanceType").unwrap_or("m1.small");
        if let Some(r) = az
            .first()
            .and_then(|az| crate::zones::refuse_instance(&unsupported, az, instance_type))
        {
            return Ok(Some(faults::ec2_error(r.status, r.code, &r.message)));
        }
    }
    let limits = shared.lock().scenario.quotas.clone();
    if let (Some(limits), "ec2") = (limits, call.operation.service.as_str()) {
        let refusal = crate::quotas::check(
            &limits,
            &shared.upstream,
            &call.caller,
            &call.operation.name,
            &call.params,
        )
        .await?;
        if let Some(r) = refusal {
            return Ok(Some(faults::ec2_error(r.status, r.code, &r.message)));
        }
    }
    if call.operation.service == "ec2" && shared.lock().scenario.dependency_rules {
        let nat_state = |id: &str, moto_state: &str| -> String {
            shared
                .lock()
                .clocks
                .nat_state(id, moto_state, now)
                .to_string()
        };
        let refusal = dependencies::check(
            &shared.upstream,
            &call.caller,
            &call.operation.name,
            &call.params,
            &nat_state,
        )
        .await?;
        return Ok(refusal.map(|r| faults::ec2_error(r.status, r.code, &r.message)));
    }
    if call.operation.service != "lambda" {
        return Ok(None);
    }
    if let Some(refusal) = refuse_function_subnets(shared, call, request_json).await? {
        return Ok(Some(refusal));
    }
    let state = shared.lock();
    // A fresh role is not yet visible to Lambda.
    if call.is("lambda", "CreateFunction") || call.is("lambda", "UpdateFunctionConfiguration") {
        if let Some(role) = request_json.get("Role").and_then(Value::as_str) {
            if !state.clocks.role_assumable(role, now) {
                return Ok(Some(faults::lambda_user_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                )));
            }
        }
    }
    // One change at a time: another update (or an invoke of a pending function) conflicts.
    let changes = [
        "UpdateFunctionConfiguration",
        "UpdateFunctionCode",
        "Invoke",
        "PublishVersion",
    ];
    if let (Some(name), true) = (
        &call.function,
        changes.contains(&call.operation.name.as_str()),
    ) {
        let phase = state.clocks.function_phase(&call.function_key(name), now);
        let message = match phase {
            FunctionPhase::Settled | FunctionPhase::Failed => None,
            FunctionPhase::UpdateInProgress if call.operation.name == "Invoke" => None,
            FunctionPhase::Pending => Some(
                "The operation cannot be performed at this time. The function is currently in the \
                 following state: Pending"
                    .to_string(),
            ),
            FunctionPhase::UpdateInProgress => Some(format!(
                "The operation cannot be performed at this time. An update is in progress for \
                 resource: {name}"
            )),
        };
        if let Some(message) = message {
            return Ok(Some(faults::lambda_user_error(
                StatusCode::CONFLICT,
                "ResourceConflictException",
                &message,
            )));
        }
    }
    Ok(None)
}

/// A CreateFunction or UpdateFunctionConfiguration naming a subnet in an AZ the scenario says
/// Lambda does not support (`zones.rs`), refused as Lambda refuses it.
async fn refuse_function_subnets(
    shared: &Arc<Shared>,
    call: &Call,
    request_json: &Value,
) -> Result<Option<Response<Bytes>>, UpstreamError> {
    let refused = shared.lock().scenario.lambda_refused_azs.clone();
    let changes_vpc =
        call.is("lambda", "CreateFunction") || call.is("lambda", "UpdateFunctionConfiguration");
    let attachment = enis::VpcAttachment::from_request(request_json);
    let (false, true, Some(attachment)) = (refused.is_empty(), changes_vpc, attachment) else {
        return Ok(None);
    };
    if attachment.subnet_ids.is_empty() {
        return Ok(None);
    }
    let keys: Vec<String> = (1..=attachment.subnet_ids.len())
        .map(|n| format!("SubnetId.{n}"))
        .collect();
    let mut params = vec![("Action", "DescribeSubnets")];
    params.extend(
        keys.iter()
            .map(String::as_str)
            .zip(attachment.subnet_ids.iter().map(String::as_str)),
    );
    let answer = shared.upstream.ec2(&call.caller, &params).await?;
    let azs = crate::upstream::xml_texts(&answer, "availabilityZone");
    Ok(crate::zones::refuse_function(&refused, &azs)
        .map(|r| faults::lambda_user_error(r.status, r.code, &r.message)))
}

/// What AWS would have said, and the side effects AWS has that moto lacks.
async fn after_moto(
    shared: &Arc<Shared>,
    call: &Call,
    request_json: &Value,
    response: Response<Bytes>,
) -> Response<Bytes> {
    let now = Instant::now();
    let (parts, body) = response.into_parts();
    let text = || String::from_utf8_lossy(&body).into_owned();
    let new_body: Option<String> = match (
        call.operation.service.as_str(),
        call.operation.name.as_str(),
    ) {
        ("ec2", "CreateNatGateway") => {
            let xml = text();
            let allocations: Vec<String> = protocol::param(&call.params, "AllocationId")
                .into_iter()
                .map(str::to_owned)
                .collect();
            let (answer, fails) = {
                let mut state = shared.lock();
                state.nat_creates += 1;
                let nth = state.nat_creates;
                let failure = state
                    .scenario
                    .failures
                    .nat_gateways
                    .iter()
                    .find(|f| f.nth == nth)
                    .map(|f| (f.failure_code.clone(), f.failure_message.clone()));
                for id in xml_texts(&xml, "natGatewayId") {
                    state
                        .clocks
                        .nat_created(&id, now, allocations.clone(), failure.clone());
                }
                (
                    timing::rewrite_nat_states(&xml, &state.clocks, now, &[]),
                    failure.is_some(),
                )
            };
            if fails {
                // A gateway that failed holds no address (its FailureCode says the address could
                // not be used, or its interface is broken); moto associated it: taken back, so
                // that the address is free for the replacement. (AWS does not document the
                // address of a failed gateway; this is the reading the planner's tests use.)
                for allocation in &allocations {
                    let _ = release_association(&shared.upstream, &call.caller, allocation).await;
                }
            }
            Some(answer)
        }
        ("ec2", "DeleteNatGateway") => {
            if let Some(id) = protocol::param(&call.params, "NatGatewayId") {
                shared.lock().clocks.nat_deleted(id, now);
            }
            None
        }
        ("ec2", "CreateVpcEndpoint") => {
            let xml = text();
            let mut state = shared.lock();
            state.endpoint_creates += 1;
            let nth = state.endpoint_creates;
            if state.scenario.failures.endpoints.contains(&nth) {
                for id in xml_texts(&xml, "vpcEndpointId") {
                    state.failed_endpoints.insert(id);
                }
            }
            Some(timing::rewrite_endpoint_states(
                &xml,
                &state.failed_endpoints,
            ))
        }
        ("ec2", "DescribeVpcEndpoints") => {
            let state = shared.lock();
            Some(timing::rewrite_endpoint_states(
                &text(),
                &state.failed_endpoints,
            ))
        }
        ("ec2", "DescribeNatGateways") => {
            let filter = state_filter(&call.params);
            let state = shared.lock();
            Some(timing::rewrite_nat_states(
                &text(),
                &state.clocks,
                now,
                &filter,
            ))
        }
        ("ec2", "DescribeNetworkInterfaces") => {
            let (_, filters) = enis::ShownFilters::take_from(&call.params);
            let state = shared.lock();
            Some(enis::rewrite_described(
                &text(),
                |id| state.hyperplane.holds(id),
                &filters,
            ))
        }
        ("ec2", "RunInstances") => {
            // Best effort: an interface left untagged shows in the suites' IAM check.
            let _ =
                launch::tag_interfaces(&shared.upstream, &call.caller, &call.params, &text()).await;
            shared.lock().nat_instances.launched(&call.params, &text());
            None
        }
        ("ec2", "GetConsoleOutput") => nat_console(shared, call, &text(), now).await,
        ("ec2", "TerminateInstances") if parts.status.is_success() => {
            // Secondary interfaces first: detached, they keep their Elastic IP, as on AWS; the
            // addresses left on the instance's own interface are then released.
            let detached = crate::nat_group::detach_at_termination(
                &shared.upstream,
                &call.caller,
                &call.params,
            )
            .await;
            if let Ok(instances) = detached {
                shared.lock().nat_groups.terminated(&instances, now);
            }
            // Best effort, as for the tags at launch: a failure shows as the address held.
            let _ =
                crate::termination::release_addresses(&shared.upstream, &call.caller, &call.params)
                    .await;
            None
        }
        ("autoscaling", "DescribeAutoScalingGroups") if parts.status.is_success() => {
            for instance in xml_texts(&text(), "InstanceId") {
                play_group_boot(shared, &call.caller, &instance, now).await;
            }
            None
        }
        ("ec2", "StartInstances" | "RebootInstances") => {
            if parts.status.is_success() {
                let mut state = shared.lock();
                let boot = state.scenario.nat_boot.clone();
                state.nat_instances.restarted(&call.params, &boot, now);
            }
            None
        }
        ("iam", "CreateRole") => {
            if let Some(arn) = xml_texts(&text(), "Arn").first() {
                shared.lock().clocks.role_changed(arn, now);
            }
            None
        }
        // A policy attached moments ago is as fresh to Lambda as a new role.
        ("iam", "AttachRolePolicy" | "PutRolePolicy") => {
            if let Some(name) = protocol::param(&call.params, "RoleName") {
                shared.lock().clocks.role_changed(name, now);
            }
            None
        }
        ("lambda", _) => lambda_after_moto(shared, call, request_json, &body, now).await,
        _ => None,
    };
    if call.operation.service == "ec2" {
        let text = text();
        let mut state = shared.lock();
        state.fresh.created(&call.operation.name, &text, now);
        state.tokens.answered(
            call.caller.account_key(),
            &call.operation.name,
            &call.params,
            new_body.as_deref().unwrap_or(&text),
        );
    }
    let body = new_body.map(Bytes::from).unwrap_or(body);
    Response::from_parts(parts, body)
}

/// A self-healing NAT's group instance does what its user data would (`nat_group.rs`): attach
/// the slot's fixed interface once it may, and count as online once the interface holds its
/// Elastic IP. Best effort: a
/// failure leaves it offline, which shows as a NAT that never gets ready.
async fn play_group_boot(shared: &Arc<Shared>, caller: &Caller, id: &str, now: Instant) {
    let known = shared
        .lock()
        .nat_groups
        .known(id)
        .map(|interface| interface.map(str::to_owned));
    let interface = match known {
        Some(interface) => interface,
        None => {
            let Ok(script) = crate::nat_group::user_data(&shared.upstream, caller, id).await else {
                return;
            };
            let interface = crate::nat_group::fixed_interface(&script);
            let mut state = shared.lock();
            state.nat_groups.learned(id, interface.clone());
            if interface.is_some() {
                state.nat_instances.launched_with(id, &script);
            }
            interface
        }
    };
    let Some(interface) = interface else { return };
    let may = {
        let state = shared.lock();
        let delay = Duration::from_millis(state.scenario.nat_boot.replacement_after_ms);
        state.nat_groups.may_attach(&interface, delay, now)
    };
    if may
        && crate::nat_group::attach(&shared.upstream, caller, &interface, id)
            .await
            .unwrap_or(false)
        && crate::nat_group::holds_address(&shared.upstream, caller, &interface)
            .await
            .unwrap_or(false)
    {
        shared.lock().nat_instances.online(id, now);
    }
}

/// A NAT instance's console as its boot writes it (`nat_boot.rs`); `None`: moto's answer.
async fn nat_console(
    shared: &Arc<Shared>,
    call: &Call,
    answer: &str,
    now: Instant,
) -> Option<String> {
    let id = protocol::param(&call.params, "InstanceId")?;
    play_group_boot(shared, &call.caller, id, now).await;
    let console = |state: &State| {
        state
            .nat_instances
            .console(id, &state.scenario.nat_boot, now)
    };
    let mut shown = console(&shared.lock());
    if shown == nat_boot::Console::Offline {
        if nat_boot::has_public_address(&shared.upstream, &call.caller, id)
            .await
            .unwrap_or(false)
        {
            shared.lock().nat_instances.online(id, now);
        }
        shown = console(&shared.lock());
    }
    match shown {
        nat_boot::Console::NotOurs => None,
        // Just launched, no way out yet: AWS has nothing of the user data to show.
        nat_boot::Console::Offline => Some(nat_boot::rewrite(answer, "")),
        nat_boot::Console::Text(text) => Some(nat_boot::rewrite(answer, &text)),
    }
}

/// EC2's eventual consistency (`consistency.rs`) and its client tokens (`tokens.rs`): what AWS
/// answers before a call would reach moto.
async fn consistency_refusal(
    shared: &Arc<Shared>,
    call: &Call,
    now: Instant,
) -> Result<Option<Response<Bytes>>, UpstreamError> {
    let replay = {
        let state = shared.lock();
        let timing = &state.scenario.timing;
        let window = Duration::from_millis(timing.fresh_id_ms);
        let fresh = if call.operation.mutating {
            state
                .fresh
                .refusal(&call.operation.name, &call.params, window, now)
        } else {
            state
                .fresh
                .describe_refusal(&call.operation.name, &call.params, window, now)
        };
        if let Some((code, message)) = fresh {
            return Ok(Some(faults::ec2_error(
                StatusCode::BAD_REQUEST,
                code,
                &message,
            )));
        }
        if let Some(allocation) = protocol::param(&call.params, "AllocationId") {
            if state.clocks.address_settling(allocation, now) {
                if let Some((code, message)) = consistency::address_refusal(&call.operation.name) {
                    return Ok(Some(faults::ec2_error(
                        StatusCode::BAD_REQUEST,
                        code,
                        message,
                    )));
                }
            }
        }
        if !state.scenario.client_tokens {
            return Ok(None);
        }
        state.tokens.replay(
            call.caller.account_key(),
            &call.operation.name,
            &call.params,
        )
    };
    let answer = match replay {
        None => return Ok(None),
        Some(Replay::Original(answer)) => answer,
        Some(Replay::Refused(code, message)) => {
            return Ok(Some(faults::ec2_error(
                StatusCode::BAD_REQUEST,
                code,
                message,
            )))
        }
        Some(Replay::UnlessTerminated { answer, instances }) => {
            let mut params = vec![("Action", "DescribeInstances")];
            let keys: Vec<String> = (1..=instances.len())
                .map(|i| format!("InstanceId.{i}"))
                .collect();
            params.extend(
                keys.iter()
                    .map(String::as_str)
                    .zip(instances.iter().map(String::as_str)),
            );
            let described = shared.upstream.ec2(&call.caller, &params).await?;
            let doc = roxmltree::Document::parse(&described).ok();
            let terminated = doc.is_some_and(|doc| {
                doc.descendants()
                    .filter(|n| n.has_tag_name("instanceState"))
                    .any(|n| crate::upstream::child_text(n, "name") == Some("terminated"))
            });
            if terminated {
                return Ok(Some(faults::ec2_error(
                    StatusCode::BAD_REQUEST,
                    tokens::TERMINATED.0,
                    tokens::TERMINATED.1,
                )));
            }
            answer
        }
    };
    Ok(Some(faults::ec2_answer(answer)))
}

/// Disassociates an Elastic IP in moto, as the same caller.
async fn release_association(
    upstream: &Upstream,
    caller: &Caller,
    allocation: &str,
) -> Result<(), UpstreamError> {
    let selection = [("AllocationId.1", allocation)];
    crate::termination::disassociate_addresses(upstream, caller, &selection).await
}

/// The `state` values of a DescribeNatGateways `Filter.N.Name=state`.
fn state_filter(params: &[(String, String)]) -> Vec<String> {
    let Some(prefix) = params
        .iter()
        .find(|(k, v)| k.starts_with("Filter.") && k.ends_with(".Name") && v == "state")
        .map(|(k, _)| k.trim_end_matches("Name").to_string())
    else {
        return Vec::new();
    };
    params
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{prefix}Value.")))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Lambda: remember creations and updates, create or release Hyperplane ENIs, and rewrite states.
async fn lambda_after_moto(
    shared: &Arc<Shared>,
    call: &Call,
    request_json: &Value,
    body: &Bytes,
    now: Instant,
) -> Option<String> {
    // DeleteFunction answers with an empty body: no JSON to read, still a side effect to have.
    let mut answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let name = match call.operation.name.as_str() {
        "CreateFunction" => answer
            .get("FunctionName")
            .and_then(Value::as_str)?
            .to_string(),
        "ListFunctions" => {
            let state = shared.lock();
            for function in answer.get_mut("Functions")?.as_array_mut()? {
                let name = function
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let key = call.function_key(name);
                let phase = state.clocks.function_phase(&key, now);
                let failure = state.clocks.function_failure(&key);
                timing::rewrite_function_configuration(function, phase, failure);
            }
            return Some(answer.to_string());
        }
        _ => call.function.clone()?,
    };
    let key = call.function_key(&name);
    match call.operation.name.as_str() {
        "CreateFunction" => {
            {
                let mut state = shared.lock();
                let failure = state
                    .scenario
                    .failures
                    .functions
                    .iter()
                    .find(|f| f.function == name)
                    .map(|f| (f.state_reason_code.clone(), f.state_reason.clone(), f.times));
                let failure = failure.and_then(|(code, reason, times)| {
                    let failed = state.failed_functions.entry(name.clone()).or_default();
                    *failed += 1;
                    (*failed <= times).then_some((code, reason))
                });
                state.clocks.function_created(key.clone(), now, failure);
            }
            if let Some(attachment) = VpcAttachment::from_request(request_json) {
                reattach(shared, call, &key, &name, attachment, now).await;
            }
        }
        "UpdateFunctionConfiguration" | "UpdateFunctionCode" => {
            shared.lock().clocks.function_updated(&key, now);
            if call.operation.name == "UpdateFunctionConfiguration" {
                if let Some(attachment) = VpcAttachment::from_request(request_json) {
                    reattach(shared, call, &key, &name, attachment, now).await;
                }
            }
        }
        "DeleteFunction" => {
            shared.lock().clocks.function_deleted(&key);
            reattach(shared, call, &key, &name, VpcAttachment::default(), now).await;
            return None;
        }
        "GetFunction" | "GetFunctionConfiguration" => {}
        _ => return None,
    }
    if answer.is_null() {
        return None;
    }
    if answer.is_null() {
        return None;
    }
    let (phase, failure) = {
        let state = shared.lock();
        (
            state.clocks.function_phase(&key, now),
            state.clocks.function_failure(&key).cloned(),
        )
    };
    let configuration = if call.operation.name == "GetFunction" {
        answer.get_mut("Configuration")?
    } else {
        &mut answer
    };
    timing::rewrite_function_configuration(configuration, phase, failure.as_ref());
    Some(answer.to_string())
}

/// Moves a function's Hyperplane ENIs to a new attachment: the old ones linger, new ones are created.
async fn reattach(
    shared: &Arc<Shared>,
    call: &Call,
    key: &str,
    function: &str,
    attachment: VpcAttachment,
    now: Instant,
) {
    let linger = {
        let mut state = shared.lock();
        let Some(enis) = state.scenario.hyperplane_enis.clone() else {
            return;
        };
        if state.hyperplane.attachment(key) == attachment {
            return;
        }
        let linger = Duration::from_millis(enis.linger_ms);
        state.hyperplane.release(key, now, linger)
    };
    if let Some(until) = linger {
        let shared = shared.clone();
        // Bounded: one sleep, then one pass over what is due.
        tokio::spawn(async move {
            tokio::time::sleep_until(until.into()).await;
            reap_lingering_enis(&shared).await;
        });
    }
    if !attachment.is_attached() {
        return;
    }
    match enis::create_enis(&shared.upstream, &call.caller, function, &attachment).await {
        Ok(ids) => {
            shared
                .lock()
                .hyperplane
                .attach(key.to_string(), call.caller.clone(), attachment, ids)
        }
        Err(error) => eprintln!("fixedip-chaos: could not create the ENIs of {function}: {error}"),
    }
}

async fn reap_lingering_enis(shared: &Shared) {
    let due = shared.lock().hyperplane.take_due(Instant::now());
    for lingering in &due {
        enis::delete_enis(&shared.upstream, lingering).await;
    }
}

async fn forward_plain(shared: &Shared, parts: http::request::Parts, body: Bytes) -> Answer {
    match shared.upstream.forward(parts, body).await {
        Ok(response) => Ok(response.map(Full::new)),
        Err(error) => match upstream_failure(error) {
            Processed::Send(response, _) => Ok(response.map(Full::new)),
            Processed::Drop(_) | Processed::Hold => Err(ConnectionDropped),
        },
    }
}
