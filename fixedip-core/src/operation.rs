//! Which AWS operation a request is, and whether it changes the account.
//!
//! One answer for the three places that ask: the CLI's call counter (`cargo-fixedip/src/aws/calls.rs`,
//! which has the operation's name from the SDK), the chaos proxy (`tests/chaos`, which sees requests
//! on the wire) and the end-to-end tests (which read moto's request recording). A read-only command
//! refuses a mutating call, the chaos layer crashes the CLI after its k-th one, and the tests assert
//! that a no-op deploy makes none: all three must agree on what "mutating" means.
//!
//! On the wire every service reaches one `AWS_ENDPOINT_URL`, so the service comes from the SigV4
//! credential scope (`Credential=AKID/20260101/us-east-1/ec2/aws4_request`) and the operation from
//! the service's protocol: Query (`Action=` in the form body) for EC2, IAM and STS, JSON 1.1
//! (`X-Amz-Target: AmazonSSM.PutParameter`) for SSM, and REST-JSON (method and path) for Lambda.

/// The wire protocol of a service: it decides how an operation is named and how errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// EC2's dialect of Query: errors are `<Response><Errors><Error>`.
    Ec2Query,
    /// IAM and STS: errors are `<ErrorResponse><Error>`.
    AwsQuery,
    /// Lambda: errors carry `x-amzn-ErrorType` and a JSON body.
    RestJson,
    /// SSM: errors are `{"__type": ...}`.
    Json11,
}

/// One identified AWS call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// The SigV4 signing name: `ec2`, `iam`, `sts`, `lambda`, `ssm`...
    pub service: String,
    /// The API operation name, as in the AWS API reference (`CreateVpc`, `UpdateFunctionCode`).
    pub name: String,
    /// Whether the call can change the account ([`is_mutating`]).
    pub mutating: bool,
    pub protocol: Protocol,
    /// The region of the credential scope (empty when unsigned).
    pub region: String,
}

/// The parts of an HTTP request that identify the AWS call it is.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The query string, without the `?`.
    pub query: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `X-Amz-Target` header (JSON protocols).
    pub target: Option<&'a str>,
    pub body: &'a [u8],
}

/// Whether an operation can change the account. Reads are `Describe*`, `Get*` and `List*`; so are
/// the calls that only use what exists without changing it: assuming a role (a session is not a
/// resource), decoding an authorization message, and invoking a function (`verify --probe`: it
/// runs the function's code, and changes no resource or setting of the account).
pub fn is_mutating(operation: &str) -> bool {
    const READS: [&str; 3] = ["Describe", "Get", "List"];
    const USES: [&str; 4] = [
        "AssumeRole",
        "AssumeRoleWithWebIdentity",
        "DecodeAuthorizationMessage",
        "Invoke",
    ];
    !(READS.iter().any(|read| operation.starts_with(read)) || USES.contains(&operation))
}

/// Identifies a request; `None` for what is not an AWS call (moto's own `/moto-api/`, say).
pub fn identify(request: &Request<'_>) -> Option<Operation> {
    if request.path.starts_with("/moto-api") || request.path.starts_with("/_chaos") {
        return None;
    }
    let (region, service) = request
        .authorization
        .and_then(credential_scope)
        .unwrap_or_default();
    let (service, name, protocol) = if let Some(target) = request.target {
        // JSON 1.0/1.1: `AmazonSSM.PutParameter`.
        let name = target.rsplit('.').next().unwrap_or(target).to_owned();
        (or(service, "ssm"), name, Protocol::Json11)
    } else if service == "lambda" || request.path.starts_with("/20") {
        let name = lambda_operation(request.method, request.path);
        (or(service, "lambda"), name, Protocol::RestJson)
    } else {
        let form = if request.body.is_empty() {
            request.query.unwrap_or("")
        } else {
            std::str::from_utf8(request.body).ok()?
        };
        let name = query_action(form)?;
        let protocol = if service == "ec2" {
            Protocol::Ec2Query
        } else {
            Protocol::AwsQuery
        };
        (service, name, protocol)
    };
    Some(Operation {
        mutating: is_mutating(&name),
        service,
        name,
        protocol,
        region,
    })
}

fn or(service: String, default: &str) -> String {
    if service.is_empty() {
        default.to_owned()
    } else {
        service
    }
}

/// The region and service named by a SigV4 `Authorization` header's credential scope.
pub fn credential_scope(authorization: &str) -> Option<(String, String)> {
    let credential = authorization.split("Credential=").nth(1)?;
    let credential = credential.split([',', ' ']).next()?;
    // AKID/date/region/service/aws4_request
    match credential.split('/').collect::<Vec<_>>().as_slice() {
        [_, _, region, service, "aws4_request"] => Some((region.to_string(), service.to_string())),
        _ => None,
    }
}

/// The `Action` of a Query-protocol form (EC2, IAM, STS). Operation names are plain ASCII, so the
/// value needs no decoding.
fn query_action(form: &str) -> Option<String> {
    form.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

/// Lambda's REST routes (`/2015-03-31/functions/{name}/...`), named as in the Lambda API reference;
/// an unknown route is named by its method and path.
fn lambda_operation(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // segments[0] is the API version date; what follows names the resource.
    let name = match (method, segments.get(1..).unwrap_or_default()) {
        ("POST", ["functions"]) => "CreateFunction",
        ("GET", ["functions"]) => "ListFunctions",
        ("GET", ["functions", _]) => "GetFunction",
        ("DELETE", ["functions", _]) => "DeleteFunction",
        ("GET", ["functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", ["functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", ["functions", _, "code"]) => "UpdateFunctionCode",
        ("POST", ["functions", _, "invocations"]) => "Invoke",
        ("POST", ["functions", _, "versions"]) => "PublishVersion",
        ("GET", ["functions", _, "versions"]) => "ListVersionsByFunction",
        ("POST", ["functions", _, "policy"]) => "AddPermission",
        ("GET", ["functions", _, "policy"]) => "GetPolicy",
        ("DELETE", ["functions", _, "policy", _]) => "RemovePermission",
        ("PUT", ["functions", _, "concurrency"]) => "PutFunctionConcurrency",
        ("GET", ["functions", _, "concurrency"]) => "GetFunctionConcurrency",
        ("DELETE", ["functions", _, "concurrency"]) => "DeleteFunctionConcurrency",
        ("POST", ["functions", _, "aliases"]) => "CreateAlias",
        ("GET", ["functions", _, "aliases"]) => "ListAliases",
        ("GET", ["functions", _, "aliases", _]) => "GetAlias",
        ("PUT", ["functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", ["functions", _, "aliases", _]) => "DeleteAlias",
        ("POST", ["functions", _, "url"]) => "CreateFunctionUrlConfig",
        ("GET", ["functions", _, "url"]) => "GetFunctionUrlConfig",
        ("PUT", ["functions", _, "url"]) => "UpdateFunctionUrlConfig",
        ("DELETE", ["functions", _, "url"]) => "DeleteFunctionUrlConfig",
        ("GET", ["tags", ..]) => "ListTags",
        ("POST", ["tags", ..]) => "TagResource",
        ("DELETE", ["tags", ..]) => "UntagResource",
        ("GET", ["account-settings"]) => "GetAccountSettings",
        _ => return format!("{method} {path}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=00"
        )
    }

    fn op(method: &str, path: &str, auth: &str, target: Option<&str>, body: &str) -> Operation {
        identify(&Request {
            method,
            path,
            query: None,
            authorization: Some(auth),
            target,
            body: body.as_bytes(),
        })
        .unwrap_or_else(|| panic!("{method} {path} is an AWS call"))
    }

    #[test]
    fn reads_and_uses_do_not_mutate() {
        for read in [
            "DescribeNatGateways",
            "GetFunction",
            "ListTags",
            "GetCallerIdentity",
            "AssumeRole",
            "Invoke",
        ] {
            assert!(!is_mutating(read), "{read}");
        }
        for write in [
            "CreateNatGateway",
            "UpdateFunctionCode",
            "AllocateAddress",
            "PutParameter",
            "TagResource",
            "RunInstances",
            // A prefix of a read name is not a read.
            "AssumeRoleAndDelete",
        ] {
            assert!(is_mutating(write), "{write}");
        }
    }

    #[test]
    fn ec2_query_is_named_by_action() {
        let create = op(
            "POST",
            "/",
            &signed("ec2"),
            None,
            "Action=CreateVpc&Version=2016-11-15",
        );
        assert_eq!(
            (create.service.as_str(), create.region.as_str()),
            ("ec2", "eu-west-1")
        );
        assert_eq!(
            (create.name.as_str(), create.mutating, create.protocol),
            ("CreateVpc", true, Protocol::Ec2Query)
        );
        let read = op(
            "POST",
            "/",
            &signed("ec2"),
            None,
            "Action=DescribeNatGateways",
        );
        assert!(!read.mutating);
    }

    #[test]
    fn a_get_query_is_named_from_its_query_string() {
        let request = Request {
            method: "GET",
            path: "/",
            query: Some("Action=GetCallerIdentity&Version=2011-06-15"),
            authorization: Some(&signed("sts")),
            target: None,
            body: b"",
        };
        assert_eq!(identify(&request).unwrap().name, "GetCallerIdentity");
    }

    #[test]
    fn iam_and_sts_use_aws_query() {
        let role = op("POST", "/", &signed("iam"), None, "Action=CreateRole");
        assert_eq!((role.protocol, role.mutating), (Protocol::AwsQuery, true));
        let assume = op("POST", "/", &signed("sts"), None, "Action=AssumeRole");
        assert!(!assume.mutating);
    }

    #[test]
    fn ssm_is_named_by_target() {
        let put = op(
            "POST",
            "/",
            &signed("ssm"),
            Some("AmazonSSM.PutParameter"),
            "{}",
        );
        assert_eq!(
            (put.name.as_str(), put.mutating, put.protocol),
            ("PutParameter", true, Protocol::Json11)
        );
    }

    #[test]
    fn lambda_routes_name_operations() {
        let cases = [
            ("POST", "/2015-03-31/functions", "CreateFunction", true),
            ("GET", "/2015-03-31/functions/f", "GetFunction", false),
            ("DELETE", "/2015-03-31/functions/f", "DeleteFunction", true),
            (
                "PUT",
                "/2015-03-31/functions/f/configuration",
                "UpdateFunctionConfiguration",
                true,
            ),
            (
                "GET",
                "/2015-03-31/functions/f/configuration",
                "GetFunctionConfiguration",
                false,
            ),
            (
                "PUT",
                "/2015-03-31/functions/f/code",
                "UpdateFunctionCode",
                true,
            ),
            (
                "POST",
                "/2015-03-31/functions/f/invocations",
                "Invoke",
                false,
            ),
            (
                "POST",
                "/2017-03-31/tags/arn%3Aaws%3Alambda",
                "TagResource",
                true,
            ),
            (
                "GET",
                "/2017-03-31/tags/arn%3Aaws%3Alambda",
                "ListTags",
                false,
            ),
        ];
        for (method, path, name, mutating) in cases {
            let o = op(method, path, &signed("lambda"), None, "");
            assert_eq!((o.name.as_str(), o.mutating), (name, mutating), "{path}");
            assert_eq!(o.protocol, Protocol::RestJson);
        }
    }

    #[test]
    fn an_unknown_lambda_route_is_named_by_method_and_path() {
        let o = op("PATCH", "/2015-03-31/whatever", &signed("lambda"), None, "");
        assert_eq!(o.name, "PATCH /2015-03-31/whatever");
    }

    #[test]
    fn moto_api_is_not_an_aws_call() {
        let request = Request {
            method: "POST",
            path: "/moto-api/reset",
            query: None,
            authorization: None,
            target: None,
            body: b"",
        };
        assert!(identify(&request).is_none());
    }
}
