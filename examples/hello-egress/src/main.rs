//! hello-egress: a Lambda function that answers with the IP address it reaches the internet from.
//!
//! Deployed with `cargo fixedip deploy`, that address is one of the stack's fixed egress IPs, which
//! is what `cargo fixedip verify --probe` checks: it invokes the function with the probe event
//! `{"fixedip": "probe"}`. This function gives every event, the probe included, the same answer:
//!
//! ```json
//! {"ip": "203.0.113.7", "url": "http://checkip.amazonaws.com/"}
//! ```
//!
//! The address comes from a what-is-my-IP service: `FIXEDIP_WHATISMYIP_URL`, by default
//! `http://checkip.amazonaws.com/`. It is fetched over plain HTTP: the answer is public anyway, and
//! leaving out a TLS stack keeps the binary small and quick to build.

use std::net::IpAddr;
use std::time::Duration;

use fixedip_macros::fixed_egress;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// The environment variable naming the what-is-my-IP service.
const URL_VARIABLE: &str = "FIXEDIP_WHATISMYIP_URL";
const DEFAULT_URL: &str = "http://checkip.amazonaws.com/";
/// Without a route to the internet a request hangs until the Lambda timeout; failing sooner says why.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// An address is a few dozen bytes; a bigger answer is not one.
const MAX_ANSWER_BYTES: usize = 1024;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

#[fixed_egress(azs = 2)]
#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = whatismyip_url(std::env::var(URL_VARIABLE).ok().as_deref())?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        answer(&client, &url, event)
    }))
    .await
}

/// Every event, the probe `{"fixedip": "probe"}` included, gets `{"ip": …, "url": …}`.
async fn answer(
    client: &HttpClient,
    url: &Uri,
    _event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let ip = public_ip(client, url).await?;
    Ok(json!({ "ip": ip.to_string(), "url": url.to_string() }))
}

/// The configured URL, or the default; `https` is refused up front rather than failing per request.
fn whatismyip_url(configured: Option<&str>) -> Result<Uri, Error> {
    let text = configured
        .filter(|url| !url.trim().is_empty())
        .unwrap_or(DEFAULT_URL)
        .trim();
    let url: Uri = text
        .parse()
        .map_err(|e| format!("{URL_VARIABLE}={text:?} is not a URL: {e}"))?;
    match url.scheme_str() {
        Some("http") => Ok(url),
        Some("https") => Err(format!(
            "{URL_VARIABLE}={text:?} uses https, but hello-egress speaks plain HTTP only (it carries \
             no TLS stack); use an http:// service such as {DEFAULT_URL}"
        )
        .into()),
        _ => Err(format!("{URL_VARIABLE}={text:?} must be an http:// URL, e.g. {DEFAULT_URL}").into()),
    }
}

/// Asks the service at `url` which address the request came from.
async fn public_ip(client: &HttpClient, url: &Uri) -> Result<IpAddr, Error> {
    let response = tokio::time::timeout(FETCH_TIMEOUT, client.get(url.clone()))
        .await
        .map_err(|_| {
            format!(
                "no answer from {url} within {FETCH_TIMEOUT:?}: the function may have no route to \
                 the internet (check its subnets' NAT gateway)"
            )
        })?
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered {status}").into());
    }
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    text.trim().parse().map_err(|_| {
        format!(
            "{url} answered {:?}, which is not an IP address",
            text.trim()
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use hyper::server::conn::http1;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use lambda_runtime::Context;
    use tokio::net::TcpListener;

    use super::*;

    /// A what-is-my-IP service on 127.0.0.1 that gives every request `status` and `body`.
    async fn service(status: StatusCode, body: &'static str) -> Uri {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let reply = hyper::service::service_fn(move |_request| async move {
                    let mut response = Response::new(body.to_owned());
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), reply));
            }
        });
        format!("http://{address}/").parse().unwrap()
    }

    fn client() -> HttpClient {
        Client::builder(TokioExecutor::new()).build_http()
    }

    #[tokio::test]
    async fn the_probe_gets_the_ip_the_service_saw() {
        let url = service(StatusCode::OK, "203.0.113.7\n").await;
        let probe = LambdaEvent::new(json!({"fixedip": "probe"}), Context::default());
        let answer = answer(&client(), &url, probe).await.unwrap();
        assert_eq!(answer, json!({"ip": "203.0.113.7", "url": url.to_string()}));
    }

    #[tokio::test]
    async fn ipv6_answers_are_addresses_too() {
        let url = service(StatusCode::OK, "2001:db8::7").await;
        assert_eq!(
            public_ip(&client(), &url).await.unwrap(),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn garbage_answers_are_errors() {
        for garbage in ["<html>captive portal</html>", "", "203.0.113.300"] {
            let url = service(StatusCode::OK, garbage).await;
            let err = public_ip(&client(), &url).await.unwrap_err().to_string();
            assert!(err.contains("is not an IP address"), "{garbage:?}: {err}");
        }
    }

    #[tokio::test]
    async fn error_statuses_and_oversized_answers_are_errors() {
        let url = service(StatusCode::SERVICE_UNAVAILABLE, "203.0.113.7").await;
        let err = public_ip(&client(), &url).await.unwrap_err().to_string();
        assert!(err.ends_with("answered 503 Service Unavailable"), "{err}");

        let url = service(StatusCode::OK, "1".repeat(MAX_ANSWER_BYTES + 1).leak()).await;
        let err = public_ip(&client(), &url).await.unwrap_err().to_string();
        assert!(err.starts_with("reading the answer of"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_service_is_named() {
        // Bind, then close: nothing listens on the port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let err = public_ip(&client(), &url).await.unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot reach {url}")), "{err}");
    }

    #[test]
    fn the_url_defaults_and_must_be_plain_http() {
        assert_eq!(whatismyip_url(None).unwrap(), DEFAULT_URL);
        assert_eq!(whatismyip_url(Some("  ")).unwrap(), DEFAULT_URL);
        assert_eq!(
            whatismyip_url(Some("http://127.0.0.1:8080/ip")).unwrap(),
            "http://127.0.0.1:8080/ip"
        );
        let err = whatismyip_url(Some("https://checkip.amazonaws.com/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("uses https, but hello-egress speaks plain HTTP only"),
            "{err}"
        );
        let err = whatismyip_url(Some("checkip.amazonaws.com"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be an http:// URL"), "{err}");
    }
}
