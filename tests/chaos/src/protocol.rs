//! Which AWS operation a request is, from the wire alone.
//!
//! Every service reaches the proxy through one `AWS_ENDPOINT_URL`, so the service comes from the SigV4
//! credential scope (`Credential=AKID/20260101/us-east-1/ec2/aws4_request`) and the operation from the
//! service's protocol: Query (`Action=` in the form body) for EC2, IAM and STS, JSON 1.1
//! (`X-Amz-Target: AmazonSSM.PutParameter`) for SSM, and REST-JSON (method + path) for Lambda.

use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

/// The wire protocol of a service: it decides how an operation is named and how errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Not an AWS call the proxy understands (e.g. moto's own `/moto-api`).
    Unknown,
}

/// One identified AWS call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The SigV4 signing name: `ec2`, `iam`, `sts`, `lambda`, `ssm`...
    pub service: String,
    /// The API operation name, as in the AWS API reference (`CreateVpc`, `UpdateFunctionCode`).
    pub name: String,
    /// Whether the call can change resources (everything but reads, see [`is_read_only`]).
    pub mutating: bool,
    pub protocol: Protocol,
    /// The region of the credential scope (empty when unsigned).
    pub region: String,
}

/// The pieces of a signed request that identify it.
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The region and service named by the SigV4 credential scope, if the request is signed.
pub fn credential_scope(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let credential = credential.split([',', ' ']).next()?;
    // AKID/date/region/service/aws4_request
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [_, _, region, service, "aws4_request"] => Some((region.to_string(), service.to_string())),
        _ => None,
    }
}

/// The form parameters of a Query request (body, or query string for GET).
pub fn query_params(view: &RequestView<'_>) -> Vec<(String, String)> {
    let source = if view.body.is_empty() {
        view.query.unwrap_or("").as_bytes()
    } else {
        view.body
    };
    form_urlencoded::parse(source).into_owned().collect()
}

/// The first value of a Query parameter.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Identify the operation of a request; `None` for what is not an AWS call (moto's own API).
pub fn identify(view: &RequestView<'_>) -> Option<Operation> {
    if view.path.starts_with("/moto-api") || view.path.starts_with("/_chaos") {
        return None;
    }
    let (region, service) = credential_scope(view.headers).unwrap_or_default();
    let target = view
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let (service, name, protocol) = if let Some(target) = target {
        // JSON 1.0/1.1: `AmazonSSM.PutParameter`.
        let name = target.rsplit('.').next().unwrap_or(target).to_string();
        let service = if service.is_empty() {
            "ssm".into()
        } else {
            service
        };
        (service, name, Protocol::Json11)
    } else if service == "lambda" || view.path.starts_with("/20") {
        let service = if service.is_empty() {
            "lambda".into()
        } else {
            service
        };
        (
            service,
            lambda_operation(view.method, view.path),
            Protocol::RestJson,
        )
    } else {
        let params = query_params(view);
        let name = param(&params, "Action")?.to_string();
        let protocol = if service == "ec2" {
            Protocol::Ec2Query
        } else {
            Protocol::AwsQuery
        };
        (service, name, protocol)
    };
    let mutating = !is_read_only(&name);
    Some(Operation {
        service,
        name,
        mutating,
        protocol,
        region,
    })
}

/// Reads change nothing: `Describe*`, `Get*`, `List*`, plus calls that only use resources (assuming a role,
/// invoking a function) without changing what exists, so they are not "mutating calls" of a deploy.
pub fn is_read_only(operation: &str) -> bool {
    const READ_PREFIXES: [&str; 3] = ["Describe", "Get", "List"];
    READ_PREFIXES.iter().any(|p| operation.starts_with(p))
        || matches!(
            operation,
            "AssumeRole" | "AssumeRoleWithWebIdentity" | "DecodeAuthorizationMessage" | "Invoke"
        )
}

/// Lambda's REST routes (`/2015-03-31/functions/{name}/...`), named as in the Lambda API reference.
fn lambda_operation(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = method.as_str();
    // segments[0] is the API version date; what follows names the resource.
    let name = match (m, &segments[1..]) {
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
        _ => return format!("{m} {path}"),
    };
    name.to_string()
}

/// The function name in a Lambda path (`/2015-03-31/functions/{name}/...`), URL-decoded; an ARN is
/// reduced to its name so that both spellings refer to the same function.
pub fn lambda_function_name(path: &str) -> Option<String> {
    let mut segments = path.trim_matches('/').split('/').skip(1);
    if segments.next()? != "functions" {
        return None;
    }
    let raw = segments.next()?;
    let decoded: String = form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(function_name_of(&decoded))
}

/// `arn:aws:lambda:us-east-1:123456789012:function:name[:qualifier]` → `name`; a plain name is kept.
pub fn function_name_of(name_or_arn: &str) -> String {
    if let Some(rest) = name_or_arn.split(":function:").nth(1) {
        rest.split(':').next().unwrap_or(rest).to_string()
    } else {
        name_or_arn.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=00"
        );
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&auth).unwrap(),
        );
        headers
    }

    fn op(method: Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Option<Operation> {
        identify(&RequestView {
            method: &method,
            path,
            query: None,
            headers,
            body,
        })
    }

    #[test]
    fn ec2_query_is_named_by_action_and_reads_are_not_mutating() {
        let h = signed("ec2");
        let create = op(
            Method::POST,
            "/",
            &h,
            b"Action=CreateVpc&Version=2016-11-15",
        )
        .unwrap();
        assert_eq!(create.service, "ec2");
        assert_eq!(create.region, "eu-west-1");
        assert_eq!(create.name, "CreateVpc");
        assert!(create.mutating);
        assert_eq!(create.protocol, Protocol::Ec2Query);
        let read = op(Method::POST, "/", &h, b"Action=DescribeNatGateways").unwrap();
        assert!(!read.mutating);
    }

    #[test]
    fn iam_and_sts_use_aws_query() {
        let role = op(Method::POST, "/", &signed("iam"), b"Action=CreateRole").unwrap();
        assert_eq!(role.protocol, Protocol::AwsQuery);
        assert!(role.mutating);
        let who = op(
            Method::POST,
            "/",
            &signed("sts"),
            b"Action=GetCallerIdentity",
        )
        .unwrap();
        assert!(!who.mutating);
    }

    #[test]
    fn ssm_is_named_by_target() {
        let mut h = signed("ssm");
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonSSM.PutParameter"),
        );
        let put = op(Method::POST, "/", &h, b"{}").unwrap();
        assert_eq!((put.name.as_str(), put.mutating), ("PutParameter", true));
        assert_eq!(put.protocol, Protocol::Json11);
    }

    #[test]
    fn lambda_routes_name_operations() {
        let h = signed("lambda");
        let cases = [
            (
                Method::POST,
                "/2015-03-31/functions",
                "CreateFunction",
                true,
            ),
            (Method::GET, "/2015-03-31/functions/f", "GetFunction", false),
            (
                Method::DELETE,
                "/2015-03-31/functions/f",
                "DeleteFunction",
                true,
            ),
            (
                Method::PUT,
                "/2015-03-31/functions/f/configuration",
                "UpdateFunctionConfiguration",
                true,
            ),
            (
                Method::GET,
                "/2015-03-31/functions/f/configuration",
                "GetFunctionConfiguration",
                false,
            ),
            (
                Method::PUT,
                "/2015-03-31/functions/f/code",
                "UpdateFunctionCode",
                true,
            ),
            (
                Method::POST,
                "/2015-03-31/functions/f/invocations",
                "Invoke",
                false,
            ),
            (
                Method::POST,
                "/2017-03-31/tags/arn%3Aaws%3Alambda",
                "TagResource",
                true,
            ),
            (
                Method::GET,
                "/2017-03-31/tags/arn%3Aaws%3Alambda",
                "ListTags",
                false,
            ),
        ];
        for (method, path, name, mutating) in cases {
            let o = op(method, path, &h, b"").unwrap();
            assert_eq!((o.name.as_str(), o.mutating), (name, mutating), "{path}");
        }
    }

    #[test]
    fn function_names_are_decoded_from_paths_and_arns() {
        let arn = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahello/configuration";
        assert_eq!(lambda_function_name(arn).as_deref(), Some("hello"));
        assert_eq!(
            lambda_function_name("/2015-03-31/functions/hello").as_deref(),
            Some("hello")
        );
    }

    #[test]
    fn moto_api_is_not_an_aws_call() {
        assert!(op(Method::POST, "/moto-api/reset", &HeaderMap::new(), b"").is_none());
    }
}
