//! The suite's own calls (the network it builds, the sweeper) wait out what AWS makes them wait
//! for, as fixedip's executor does: a fresh id not visible yet, a subnet still holding Lambda's
//! interfaces, an address a deleted NAT gateway still holds. Within a budget, pausing 1 s doubling
//! to 15 s.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_ec2::error::ProvideErrorMetadata;

/// Error codes (a code containing one of these) worth another try.
pub const NOT_YET: [&str; 5] = [
    "NotFound",
    "DependencyViolation",
    "InUse",
    "AuthFailure",
    "IncorrectState",
];

/// Calls `call` until it succeeds, its error's code contains none of `retry_on`, or `budget` is
/// spent; the error then says what was called and AWS's code and message.
pub async fn patiently<T, E, F, Fut>(
    what: &str,
    budget: Duration,
    retry_on: &[&str],
    mut call: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let error = match call().await {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        let code = error.code().unwrap_or_default().to_owned();
        let again = retry_on.iter().any(|c| code.contains(c));
        if !again || started.elapsed() + pause > budget {
            let message = error
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| cargo_fixedip::aws::error_chain(&error));
            return Err(format!("{what}: {code} {message}"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}
