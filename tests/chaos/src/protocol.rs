//! Which AWS operation a request is, from the wire alone: fixedip-core's classifier (`operation.rs`,
//! shared with the CLI's call counter and the end-to-end tests, so that all three agree on what a
//! call is and whether it mutates), fed from hyper's request parts; plus what only the proxy needs
//! (Query parameters, the function a Lambda path names).

use http::{HeaderMap, Method};

pub use fixedip_core::operation::{is_mutating, Operation, Protocol};

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
    fixedip_core::operation::credential_scope(auth)
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

/// The tags a Query request lists under `prefix` (`Tag`, `TagSpecification.1.Tag`,
/// `Tags.member`), as (key, value) in their order: `{prefix}.N.Key` and `{prefix}.N.Value` from 1.
pub fn tags_under(params: &[(String, String)], prefix: &str) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for n in 1.. {
        let Some(key) = param(params, &format!("{prefix}.{n}.Key")) else {
            break;
        };
        let value = param(params, &format!("{prefix}.{n}.Value")).unwrap_or("");
        tags.push((key.to_owned(), value.to_owned()));
    }
    tags
}

/// The `TagSpecification.N` prefixes of a Query request and the resource type each names.
pub fn tag_specifications(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .filter_map(|(key, kind)| {
            let spec = key.strip_suffix(".ResourceType")?;
            spec.starts_with("TagSpecification.")
                .then(|| (spec.to_owned(), kind.clone()))
        })
        .collect()
}

/// Identify the operation of a request; `None` for what is not an AWS call (moto's own API).
pub fn identify(view: &RequestView<'_>) -> Option<Operation> {
    let header = |name| view.headers.get(name).and_then(|v| v.to_str().ok());
    fixedip_core::operation::identify(&fixedip_core::operation::Request {
        method: view.method.as_str(),
        path: view.path,
        query: view.query,
        authorization: header(http::header::AUTHORIZATION.as_str()),
        target: header("x-amz-target"),
        body: view.body,
    })
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

    // The classification itself is tested in fixedip-core; these check that hyper's parts reach it.

    #[test]
    fn headers_and_body_reach_the_classifier() {
        let create = op(Method::POST, "/", &signed("ec2"), b"Action=CreateVpc").unwrap();
        assert_eq!(
            (
                create.service.as_str(),
                create.region.as_str(),
                create.name.as_str()
            ),
            ("ec2", "eu-west-1", "CreateVpc")
        );
        assert!(create.mutating);
        let mut h = signed("ssm");
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonSSM.PutParameter"),
        );
        let put = op(Method::POST, "/", &h, b"{}").unwrap();
        assert_eq!(
            (put.name.as_str(), put.protocol),
            ("PutParameter", Protocol::Json11)
        );
        let invoke = op(
            Method::POST,
            "/2015-03-31/functions/f/invocations",
            &signed("lambda"),
            b"",
        )
        .unwrap();
        assert_eq!((invoke.name.as_str(), invoke.mutating), ("Invoke", false));
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
