//! The proxy's own API under `/_chaos/`: the log, the scenario, and the pause point (see docs/chaos.md).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::proxy::{Shared, MAX_HOLD};
use crate::scenario::Scenario;

/// The control API: `/_chaos/log`, `/_chaos/scenario`, `/_chaos/paused`, `/_chaos/resume`.
pub(crate) async fn answer(
    shared: &Shared,
    method: &Method,
    uri: &http::Uri,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let json = |status: StatusCode, value: Value| {
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(value.to_string())))
            .expect("static response parts are valid")
    };
    match (method, uri.path()) {
        (&Method::GET, "/_chaos/log") => json(
            StatusCode::OK,
            serde_json::to_value(shared.log.entries()).unwrap_or_default(),
        ),
        (&Method::DELETE, "/_chaos/log") => {
            shared.log.clear();
            json(StatusCode::OK, serde_json::json!({"cleared": true}))
        }
        (&Method::GET, "/_chaos/scenario") => json(
            StatusCode::OK,
            serde_json::to_value(&shared.lock().scenario).unwrap_or_default(),
        ),
        (&Method::PUT, "/_chaos/scenario") => match serde_json::from_slice::<Scenario>(body) {
            Ok(scenario) => {
                shared.set_scenario(scenario);
                json(StatusCode::OK, serde_json::json!({"scenario": "replaced"}))
            }
            Err(error) => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": format!("not a scenario: {error}; see docs/chaos.md")}),
            ),
        },
        (&Method::GET, "/_chaos/paused") => {
            // Long poll: `?timeout_ms=N` (default 30 s, at most 10 min).
            let timeout_ms = uri
                .query()
                .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "timeout_ms"))
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(30_000)
                .min(MAX_HOLD.as_millis() as u64);
            let paused = shared.wait_paused(Duration::from_millis(timeout_ms)).await;
            json(StatusCode::OK, serde_json::json!({"paused": paused}))
        }
        (&Method::POST, "/_chaos/resume") => {
            shared.resume();
            json(StatusCode::OK, serde_json::json!({"paused": false}))
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "unknown control endpoint; see docs/chaos.md"}),
        ),
    }
}
