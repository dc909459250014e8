//! Talking to moto: forwarding the client's calls, and the proxy's own EC2 calls (to check dependency
//! rules and to create Lambda's ENIs) made on behalf of the same caller.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// Why moto could not be reached or understood.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("moto at {url} did not answer: {source}; is `scripts/emulator.sh start` running?")]
    Unreachable {
        url: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error("moto's answer could not be read: {0}")]
    Body(#[from] hyper::Error),
    #[error("moto answered {action} with HTTP {status}: {body}")]
    Refused {
        action: String,
        status: u16,
        body: String,
    },
    #[error("moto's XML answer to {action} is malformed: {source}")]
    Xml {
        action: String,
        source: roxmltree::Error,
    },
}

/// Who made a call: the proxy's own calls reuse it, so that they see the same account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub region: String,
    access_key: String,
    /// moto's `x-moto-account-id`, when the test picks its account that way.
    account_header: Option<String>,
}

impl Caller {
    pub fn from_headers(headers: &HeaderMap, region: &str) -> Caller {
        let access_key = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').next())
            .unwrap_or("chaos")
            .to_string();
        let account_header = headers
            .get("x-moto-account-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Caller {
            region: region.to_string(),
            access_key,
            account_header,
        }
    }

    /// One key per account: moto maps an access key (or the header) to an account.
    pub fn account_key(&self) -> &str {
        self.account_header.as_deref().unwrap_or(&self.access_key)
    }

    /// Headers that make moto treat a proxy call as this caller's call to `service`. moto does not check
    /// signatures, only reads the credential scope, so the signature is a placeholder.
    fn headers(&self, service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{}/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=0",
            self.access_key, self.region
        );
        if let Ok(v) = HeaderValue::from_str(&auth) {
            headers.insert(AUTHORIZATION, v);
        }
        headers.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
        if let Some(account) = self
            .account_header
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert("x-moto-account-id", account);
        }
        headers
    }
}

/// The moto server behind the proxy.
#[derive(Clone)]
pub struct Upstream {
    base: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Upstream {
    pub fn new(base: Uri) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Upstream { base, client }
    }

    pub fn url(&self) -> String {
        self.base.to_string()
    }

    /// Sends a client's request to moto as it is, and reads the whole answer (it may be rewritten).
    pub async fn forward(
        &self,
        mut parts: http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = self.uri(path_and_query);
        // The body is complete already: nothing to wait for (and moto's 100 Continue would only confuse).
        parts.headers.remove(http::header::EXPECT);
        if let Some(authority) = self.base.authority() {
            if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(HOST, host);
            }
        }
        self.send(Request::from_parts(parts, Full::new(body))).await
    }

    /// An EC2 Query call as `caller`; returns the XML answer, or `Refused` for an error status.
    pub async fn ec2(
        &self,
        caller: &Caller,
        params: &[(&str, &str)],
    ) -> Result<String, UpstreamError> {
        let action = params
            .iter()
            .find(|(k, _)| *k == "Action")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().copied())
            .append_pair("Version", "2016-11-15")
            .finish();
        let mut request = Request::post(self.uri("/"))
            .body(Full::new(Bytes::from(body)))
            .expect("static request parts are valid");
        *request.headers_mut() = caller.headers("ec2");
        request.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let response = self.send(request).await?;
        let text = String::from_utf8_lossy(response.body()).into_owned();
        if response.status().is_success() {
            Ok(text)
        } else {
            Err(UpstreamError::Refused {
                action,
                status: response.status().as_u16(),
                body: text,
            })
        }
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<Bytes>, UpstreamError> {
        let response =
            self.client
                .request(request)
                .await
                .map_err(|source| UpstreamError::Unreachable {
                    url: self.url(),
                    source,
                })?;
        let (mut parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        // The body may be rewritten: hyper sets the length of what is finally sent.
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.remove(TRANSFER_ENCODING);
        Ok(Response::from_parts(parts, body))
    }

    fn uri(&self, path_and_query: &str) -> Uri {
        let base = self.base.to_string();
        format!("{}{}", base.trim_end_matches('/'), path_and_query)
            .parse()
            .unwrap_or_else(|_| self.base.clone())
    }
}

/// The text of every element named `name` in an XML answer (e.g. every `networkInterfaceId`).
pub fn xml_texts(xml: &str, name: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name(name))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

/// The text of a direct child element.
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
}
