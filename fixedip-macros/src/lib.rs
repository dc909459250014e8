//! The `#[fixed_egress]` attribute. The stages are separate modules, read in order: `args`
//! (the arguments as written), `valid` (fixedip-requirements' rules, pointed at the tokens), `expand`
//! (the function unchanged, plus the record).

mod args;
mod errors;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Declares that this Lambda function reaches the internet from a fixed set of IP addresses, and
/// what network that takes. `cargo fixedip deploy` reads the declaration back from the built
/// binary and provisions the network; the attribute changes nothing in what the function does.
///
/// It goes on a free function (not a method or an associated function), normally the `main` that
/// starts the Lambda runtime; one per binary.
///
/// # Arguments
///
/// All are optional; `#[fixed_egress]` alone means all the defaults.
///
/// - `azs = N`: the number of availability zones the function runs in, 1 to 6. By default each AZ
///   has its own NAT gateway and Elastic IP, so `N` is also the number of IPs to allowlist (see
///   `nats`). Default: `2` (one AZ can fail without the function losing the internet).
/// - `stack = "name"`: the egress stack, i.e. the network and its IPs. Functions that name the same
///   stack share one network and the same IPs; every stack costs one NAT gateway per AZ. 1 to 32
///   lowercase letters, digits and hyphens, starting with a letter. Default: `"default"`, shared
///   by every function that names no stack in the account and region.
/// - `ips = ["eipalloc-…", …]`: Elastic IPs you already own (their allocation ids) to use instead of
///   allocating new ones, e.g. addresses a partner has already allowlisted. At most one per AZ,
///   no duplicates. fixedip never releases these. Default: none (new addresses are allocated).
///   With `nats` fewer than `azs`, at most one per NAT.
/// - `nat = "gateway" | "instance" | "none"`: how the private subnets reach the internet.
///   `"gateway"` (default): managed NAT gateways. `"instance"`: one small EC2 instance per NAT, about
///   a tenth of the cost, without a gateway's bandwidth or managed failover. `"none"`: no route
///   out at all, only AWS services through `endpoints`; then `nats` and `ips` are errors.
///   `"regional"` is refused: the emulator fixedip is tested against cannot create regional NAT
///   gateways, and fixedip ships no untested path.
/// - `nats = N`: how many NATs (and fixed IPs) serve the `azs` AZs, 1 to `azs`; an AZ without its
///   own NAT routes through another AZ's. Default: `azs` (one per AZ). `nats = 1` is the
///   cheapest: one NAT, one IP.
/// - `endpoints = ["s3", "logs", …]`: VPC endpoints, by the AWS service's short name. `"s3"` and
///   `"dynamodb"` are gateway endpoints (free; their traffic skips the NAT); the others are
///   interface endpoints (billed per hour per AZ). A misspelt service is an error with a "did you
///   mean". Default: none. An empty list is an error: leave the argument out.
/// - `egress = ["CIDR:PORT", "CIDR:FROM-TO", …]`: exactly what the function's security group lets
///   out, TCP unless the entry ends in `/udp`: `"0.0.0.0/0:443"`, `"198.51.100.0/24:5432-5433"`,
///   `"10.0.0.2/32:53/udp"`. IPv4 only. Default: all traffic. An empty list is an error: leave the
///   argument out.
///
/// # Example
///
/// On a Lambda function, the attribute goes above `#[tokio::main]` (not compiled here: this
/// crate does not depend on tokio):
///
/// ```text
/// use fixedip_macros::fixed_egress;
///
/// #[fixed_egress(azs = 2, stack = "payments", ips = ["eipalloc-0123abcd"])]
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     lambda_runtime::run(lambda_runtime::service_fn(handler)).await
/// }
/// ```
///
/// Any function will do; the one that starts the runtime is where readers look for it:
///
/// ```
/// use fixedip_macros::fixed_egress;
///
/// #[fixed_egress] // two AZs, the "default" stack, new addresses
/// fn main() {}
/// ```
///
/// The cheapest fixed IP: two AZs behind one NAT instance, reaching S3 without the NAT, and
/// only HTTPS out:
///
/// ```
/// use fixedip_macros::fixed_egress;
///
/// #[fixed_egress(azs = 2, nat = "instance", nats = 1, endpoints = ["s3"], egress = ["0.0.0.0/0:443"])]
/// fn main() {}
/// ```
///
/// A mistake is an error at the argument, and all the mistakes are reported together:
///
/// ```compile_fail
/// # use fixedip_macros::fixed_egress;
/// #[fixed_egress(azs = 7, stak = "payments")] // `azs` must be between 1 and 6; did you mean `stack`?
/// fn main() {}
/// ```
///
/// # What it adds to the binary
///
/// A few hundred bytes of text in the link section `.fixedip` (`__DATA,__fixedip` on Apple
/// platforms), in the versioned format of `fixedip_requirements::record`; no code.
#[proc_macro_attribute]
pub fn fixed_egress(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::fixed_egress(args.into(), item.into()).into()
}
