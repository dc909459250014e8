//! fixedip 0.1 gave a stack one role for every region (`fixedip-<stack>-lambda`); deploy now moves
//! each region's functions to a role of that region's own, and destroy says when the old one is
//! still there (it is never deleted from one region while another may use it).

use fixedip_core::requirements::StackName;
use fixedip_core::tags;

use super::Aws;

/// The name of the stack's 0.1 role when it still exists. Only for a note: a failed lookup
/// (throttled, denied) is `None` and must not stop anything.
pub async fn legacy_role(aws: &Aws, stack: &StackName) -> Option<String> {
    let name = tags::legacy_role_name(stack);
    aws.iam.get_role().role_name(&name).send().await.ok()?;
    Some(name)
}
