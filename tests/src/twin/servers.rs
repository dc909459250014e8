//! The twin's servers, each listening inside its namespace: the what-is-my-IP service on "the
//! internet", an AWS service behind a gateway endpoint, and the Lambda runtime API the function
//! polls. Sockets are opened from a thread that has entered the namespace (`setns`); a socket keeps
//! the namespace it was made in, so the servers then run on the test's own runtime.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A TCP listener on `address` inside the network namespace `namespace` (`/run/netns/<name>`).
pub fn listen_in(namespace: &str, address: SocketAddr) -> Result<TcpListener, String> {
    let path = format!("/run/netns/{namespace}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: setns on a file descriptor of a namespace, on this short-lived thread only.
        let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if entered != 0 {
            return Err(format!(
                "setns into {path}: {} (the twin needs CAP_SYS_ADMIN: run the tests as root)",
                std::io::Error::last_os_error()
            ));
        }
        let listener = TcpListener::bind(address).map_err(|e| format!("bind {address}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(listener)
    })
    .join()
    .expect("the namespace thread")
}

/// Serves every connection of `listener` with `answer(peer, request)` until the task is aborted
/// (which closes the listener).
fn serve<F, Fut>(listener: TcpListener, answer: F) -> JoinHandle<()>
where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            connections.spawn(async move {
                let service = service_fn(move |request| {
                    let answer = answer.clone();
                    async move { Ok::<_, Infallible>(answer(peer, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .expect("a response")
}

/// Answers every request with the address it came from, as checkip.amazonaws.com does.
pub fn what_is_my_ip(listener: TcpListener) -> JoinHandle<()> {
    serve(listener, |peer: SocketAddr, _request| async move {
        text(StatusCode::OK, format!("{}\n", peer.ip()))
    })
}

/// An AWS service reached through a gateway endpoint: it too answers with the address the request
/// came from (the function's own private address when the endpoint, not a NAT, carried it).
pub fn aws_service(listener: TcpListener) -> JoinHandle<()> {
    what_is_my_ip(listener)
}

/// What the function answered to its one invocation: its response, or the error it reported.
pub type Outcome = Result<serde_json::Value, String>;

/// The Lambda runtime API for one invocation of `event`
/// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html): `next` hands out the event
/// once, then holds every further poll open; the function's `response` or `error` ends it.
/// The server's task, to abort when the invocation is over, and its outcome.
pub fn runtime_api(
    listener: TcpListener,
    event: serde_json::Value,
) -> (JoinHandle<()>, oneshot::Receiver<Outcome>) {
    let (send, outcome) = oneshot::channel();
    let send = Arc::new(Mutex::new(Some(send)));
    let handed_out = Arc::new(Mutex::new(false));
    let server = serve(listener, move |_peer, request: Request<Incoming>| {
        let (send, handed_out, event) = (send.clone(), handed_out.clone(), event.clone());
        async move {
            let path = request.uri().path().to_owned();
            if path.ends_with("/runtime/invocation/next") {
                if std::mem::replace(&mut *handed_out.lock().unwrap(), true) {
                    std::future::pending::<()>().await;
                }
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                return Response::builder()
                    .header("lambda-runtime-aws-request-id", "twin-1")
                    .header("lambda-runtime-deadline-ms", deadline.to_string())
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:twin",
                    )
                    .body(Full::new(Bytes::from(event.to_string())))
                    .expect("a response");
            }
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            let outcome = if path.ends_with("/response") {
                serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
            } else {
                Err(body)
            };
            if let Some(send) = send.lock().unwrap().take() {
                let _ = send.send(outcome);
            }
            text(StatusCode::ACCEPTED, "")
        }
    });
    (server, outcome)
}
