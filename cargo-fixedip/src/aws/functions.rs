//! What the commands ask Lambda about a function beyond its network (aws/network.rs reads that):
//! the stack its `fixedip:stack` tag names, and its answer to `verify --probe`'s event.

use aws_sdk_lambda::primitives::Blob;
use fixedip_core::requirements::StackName;
use fixedip_core::tags;

use super::{Aws, AwsError};

/// The stack a function's `fixedip:stack` tag names; `None` for a function fixedip did not deploy.
pub async fn function_stack(aws: &Aws, name: &str) -> Result<Option<StackName>, AwsError> {
    let answer = aws
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .map_err(|e| AwsError::call("GetFunction", e))?;
    Ok(answer
        .tags()
        .and_then(|tags| tags.get(tags::STACK))
        .and_then(|stack| StackName::parse(stack).ok()))
}

/// What a function answered to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub payload: Vec<u8>,
    /// Lambda's `FunctionError` (`Unhandled`, ...): the function failed, `payload` says how.
    pub function_error: Option<String>,
}

/// Invokes the function synchronously with `event` (a read: it changes no resource).
pub async fn invoke(aws: &Aws, name: &str, event: &str) -> Result<Answer, AwsError> {
    let answer = aws
        .lambda
        .invoke()
        .function_name(name)
        .payload(Blob::new(event))
        .send()
        .await
        .map_err(|e| AwsError::call("Invoke", e))?;
    Ok(Answer {
        payload: answer
            .payload()
            .map(|p| p.as_ref().to_vec())
            .unwrap_or_default(),
        function_error: answer.function_error().map(str::to_owned),
    })
}
