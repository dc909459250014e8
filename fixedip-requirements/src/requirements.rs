//! What a function needs from the network: the arguments of `#[fixed_egress(...)]`, and the rules
//! that make them valid. The macro and the CLI both call these, so they can never disagree.

use std::fmt;

/// Every argument `#[fixed_egress]` accepts.
pub const ARGUMENTS: &[&str] = &["azs", "stack", "ips", "nat", "nats", "endpoints", "egress"];

/// The closest known argument to an unknown one, for "did you mean".
pub fn suggest_argument(unknown: &str) -> Option<&'static str> {
    ARGUMENTS
        .iter()
        .map(|known| (strsim::jaro_winkler(unknown, known), *known))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

/// Why a requirement is invalid. Messages name the argument as the user wrote it.
///
/// `Display` is written out rather than derived with thiserror: the macro compiles this crate into
/// every build of an annotated function, and thiserror's proc macro was half of what the
/// attribute added to a clean build (docs/benchmarks.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementError {
    /// `found` is the number as written, so that `-1` or a number too big for any integer type
    /// is shown as the user typed it.
    AzsOutOfRange {
        found: String,
    },
    AzsNotAnInteger {
        found: String,
    },
    InvalidStackName {
        name: String,
        reason: &'static str,
    },
    MalformedAllocationId {
        id: String,
    },
    DuplicateAllocationId {
        id: String,
    },
    /// Each NAT holds one address: with `nats` fewer than `azs`, the NATs are the limit.
    TooManyIps {
        count: usize,
        azs: u8,
        /// `nats`, when it is given and fewer than `azs`.
        nats: Option<u8>,
    },
    UnknownNat {
        found: String,
    },
    RegionalNatUnsupported,
    NatsNotAnInteger {
        found: String,
    },
    NatsOutOfRange {
        found: String,
        azs: u8,
    },
    NeedsNat {
        argument: &'static str,
    },
    UnknownEndpoint {
        name: String,
    },
    DuplicateEndpoint {
        name: String,
    },
    MalformedEgressRule {
        entry: String,
        reason: String,
    },
    /// `entry` in its canonical form: `0.0.0.0/0:443/tcp` repeats `0.0.0.0/0:443`.
    DuplicateEgressRule {
        entry: String,
    },
    EmptyList {
        list: &'static str,
    },
}

impl fmt::Display for RequirementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RequirementError::*;
        let plural = |n: u8| if n == 1 { "" } else { "s" };
        match self {
            AzsOutOfRange { found } => write!(
                f,
                "`azs` must be between {} and {}, found {found}",
                AzCount::MIN,
                AzCount::MAX
            ),
            AzsNotAnInteger { found } => {
                write!(f, "`azs` expects an integer, e.g. `azs = 2`, found `{found}`")
            }
            InvalidStackName { name, reason } => write!(f, "`stack` {reason}, found {name:?}"),
            MalformedAllocationId { id } => write!(
                f,
                "`{id}` is not an Elastic IP allocation id: expected `eipalloc-` followed by 8 or 17 lowercase hexadecimal digits"
            ),
            DuplicateAllocationId { id } => write!(f, "`{id}` is listed twice in `ips`"),
            TooManyIps {
                count,
                nats: Some(nats),
                ..
            } => write!(
                f,
                "`ips` lists {count} addresses but the stack runs {nats} NAT{} (`nats = {nats}`): at most one address per NAT",
                plural(*nats)
            ),
            TooManyIps {
                count,
                azs,
                nats: None,
            } => write!(
                f,
                "`ips` lists {count} addresses but the function runs in {azs} availability zone{}: at most one address per AZ",
                plural(*azs)
            ),
            UnknownNat { found } => write!(
                f,
                "`nat` must be \"gateway\", \"instance\" or \"none\", found {found:?}"
            ),
            RegionalNatUnsupported => f.write_str(
                "`nat = \"regional\"` is not supported yet: the emulator fixedip is tested against cannot create regional NAT gateways, and fixedip ships no untested path; use \"gateway\"",
            ),
            NatsNotAnInteger { found } => write!(
                f,
                "`nats` expects an integer, e.g. `nats = 1`, found `{found}`"
            ),
            NatsOutOfRange { found, azs } => write!(
                f,
                "`nats` must be between 1 and `azs` ({azs}), found {found}: each NAT serves one AZ or more, and no AZ has two"
            ),
            NeedsNat { argument } => write!(
                f,
                "`{argument}` needs a NAT, but `nat = \"none\"` gives the function no route out: remove one of them"
            ),
            UnknownEndpoint { name } => match suggest_endpoint(name) {
                Some(close) => write!(
                    f,
                    "`{name}` is not an AWS service fixedip knows an endpoint for; did you mean `{close}`?"
                ),
                None => {
                    let known: Vec<&str> =
                        ENDPOINT_SERVICES.iter().map(|(name, _)| *name).collect();
                    write!(
                        f,
                        "`{name}` is not an AWS service fixedip knows an endpoint for; known: {}",
                        known.join(", ")
                    )
                }
            },
            DuplicateEndpoint { name } => write!(f, "`{name}` is listed twice in `endpoints`"),
            MalformedEgressRule { entry, reason } => write!(
                f,
                "`{entry}` is not an egress rule: {reason}; write `CIDR:PORT` or `CIDR:FROM-TO`, e.g. `\"0.0.0.0/0:443\"`, `\"198.51.100.0/24:5432-5433\"`, with `/udp` at the end for UDP"
            ),
            DuplicateEgressRule { entry } => write!(f, "`{entry}` is listed twice in `egress`"),
            EmptyList { list } => write!(
                f,
                "`{list}` must list at least one entry; leave it out for the default"
            ),
        }
    }
}

impl std::error::Error for RequirementError {}

/// Where in the arguments a [`RequirementError`] lies, so the macro can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The value of the named argument as a whole.
    Argument(&'static str),
    /// One element of the `ips` list.
    IpsElement(usize),
    /// One element of the `endpoints` list.
    EndpointsElement(usize),
    /// One element of the `egress` list.
    EgressElement(usize),
}

/// A rule broken by a set of requirements, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub error: RequirementError,
    pub at: Location,
}

/// How many availability zones the function runs in; one NAT gateway and one Elastic IP each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "u64", into = "u8"))]
pub struct AzCount(u8);

impl AzCount {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 6;
    pub const DEFAULT: AzCount = AzCount(2);

    pub fn new(n: u64) -> Result<Self, RequirementError> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&n) {
            Ok(AzCount(n as u8))
        } else {
            Err(RequirementError::AzsOutOfRange {
                found: n.to_string(),
            })
        }
    }

    /// Reads the count as written in source or in a record: decimal digits, perhaps negative,
    /// perhaps too large for any integer type (`-1` and `99999999999999999999` are out of range,
    /// `"2"` or `2.0` are not integers at all).
    pub fn parse(text: &str) -> Result<Self, RequirementError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RequirementError::AzsNotAnInteger {
                found: text.to_owned(),
            });
        }
        match text.parse::<u64>() {
            Ok(n) => AzCount::new(n),
            // Negative, or beyond u64: out of range either way.
            Err(_) => Err(RequirementError::AzsOutOfRange {
                found: text.to_owned(),
            }),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u64> for AzCount {
    type Error = RequirementError;
    fn try_from(n: u64) -> Result<Self, Self::Error> {
        AzCount::new(n)
    }
}

impl From<AzCount> for u8 {
    fn from(n: AzCount) -> u8 {
        n.0
    }
}

impl fmt::Display for AzCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of an egress stack: the network and IPs that every function naming it shares.
///
/// It becomes part of AWS resource names and tags, so it is kept to what every AWS name accepts:
/// 1 to 32 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct StackName(String);

impl StackName {
    pub const MAX_LEN: usize = 32;
    /// Functions that name no stack share this one: one network, one NAT per AZ, one set of IPs for
    /// the whole account and region. Every stack costs a NAT gateway per AZ, so sharing is the default.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(name: &str) -> Result<Self, RequirementError> {
        let invalid = |reason| RequirementError::InvalidStackName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if name.len() > Self::MAX_LEN {
            return Err(invalid("must be at most 32 characters long"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "may contain only lowercase letters, digits and hyphens",
            ));
        }
        if !name.as_bytes()[0].is_ascii_lowercase() {
            return Err(invalid("must start with a lowercase letter"));
        }
        if name.ends_with('-') {
            return Err(invalid("must not end with a hyphen"));
        }
        Ok(StackName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for StackName {
    fn default() -> Self {
        StackName(Self::DEFAULT.to_owned())
    }
}

impl TryFrom<String> for StackName {
    type Error = RequirementError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        StackName::parse(&name)
    }
}

impl From<StackName> for String {
    fn from(name: StackName) -> String {
        name.0
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Elastic IP allocation id, `eipalloc-` and 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct AllocationId(String);

impl AllocationId {
    pub const PREFIX: &'static str = "eipalloc-";

    pub fn parse(id: &str) -> Result<Self, RequirementError> {
        let well_formed = id.strip_prefix(Self::PREFIX).is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if well_formed {
            Ok(AllocationId(id.to_owned()))
        } else {
            Err(RequirementError::MalformedAllocationId { id: id.to_owned() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AllocationId {
    type Error = RequirementError;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        AllocationId::parse(&id)
    }
}

impl From<AllocationId> for String {
    fn from(id: AllocationId) -> String {
        id.0
    }
}

impl fmt::Display for AllocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the private subnets reach the internet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum NatMode {
    /// Managed NAT gateways, one Elastic IP each (the default).
    #[default]
    Gateway,
    /// An EC2 instance per NAT that forwards and masquerades, with an Elastic IP associated:
    /// about a tenth of the price, without a gateway's bandwidth or managed failover.
    Instance,
    /// No route out at all: no internet gateway, no NAT, no public subnet. The function reaches
    /// only AWS services, through VPC endpoints.
    None,
}

impl NatMode {
    pub fn parse(text: &str) -> Result<Self, RequirementError> {
        match text {
            "gateway" => Ok(NatMode::Gateway),
            "instance" => Ok(NatMode::Instance),
            "none" => Ok(NatMode::None),
            "regional" => Err(RequirementError::RegionalNatUnsupported),
            other => Err(RequirementError::UnknownNat {
                found: other.to_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NatMode::Gateway => "gateway",
            NatMode::Instance => "instance",
            NatMode::None => "none",
        }
    }
}

impl fmt::Display for NatMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads `nats` as written (an integer, like `azs`) and checks it against the `azs` it serves:
/// 1 to `azs`. A value beyond any integer type, or negative, is out of range as written.
pub fn parse_nats(text: &str, azs: AzCount) -> Result<u8, RequirementError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequirementError::NatsNotAnInteger {
            found: text.to_owned(),
        });
    }
    match text.parse::<u8>() {
        Ok(n) if (1..=azs.get()).contains(&n) => Ok(n),
        _ => Err(RequirementError::NatsOutOfRange {
            found: text.to_owned(),
            azs: azs.get(),
        }),
    }
}

/// How a VPC endpoint reaches its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum EndpointKind {
    /// A route-table entry to the service's prefix list: free, and its traffic skips the NAT.
    Gateway,
    /// Network interfaces in the private subnets, with private DNS: billed per hour per AZ.
    Interface,
}

/// The services `endpoints = [...]` accepts, by the short name AWS gives them after
/// `com.amazonaws.<region>.`. S3 and DynamoDB are gateway endpoints; the rest are interface ones.
/// Whether the region offers a service is checked by deploy against DescribeVpcEndpointServices.
pub const ENDPOINT_SERVICES: &[(&str, EndpointKind)] = &[
    ("s3", EndpointKind::Gateway),
    ("dynamodb", EndpointKind::Gateway),
    ("athena", EndpointKind::Interface),
    ("ec2", EndpointKind::Interface),
    ("ecr.api", EndpointKind::Interface),
    ("ecr.dkr", EndpointKind::Interface),
    ("events", EndpointKind::Interface),
    ("execute-api", EndpointKind::Interface),
    ("firehose", EndpointKind::Interface),
    ("kinesis-streams", EndpointKind::Interface),
    ("kms", EndpointKind::Interface),
    ("lambda", EndpointKind::Interface),
    ("logs", EndpointKind::Interface),
    ("monitoring", EndpointKind::Interface),
    ("rds", EndpointKind::Interface),
    ("secretsmanager", EndpointKind::Interface),
    ("sns", EndpointKind::Interface),
    ("sqs", EndpointKind::Interface),
    ("ssm", EndpointKind::Interface),
    ("states", EndpointKind::Interface),
    ("sts", EndpointKind::Interface),
    ("xray", EndpointKind::Interface),
];

/// Names people reach for that AWS spells otherwise, for "did you mean".
const ENDPOINT_ALIASES: &[(&str, &str)] = &[
    ("api-gateway", "execute-api"),
    ("apigateway", "execute-api"),
    ("cloudwatch", "monitoring"),
    ("cloudwatch-events", "events"),
    ("cloudwatch-logs", "logs"),
    ("eventbridge", "events"),
    ("kinesis", "kinesis-streams"),
    ("parameter-store", "ssm"),
    ("secrets-manager", "secretsmanager"),
    ("sfn", "states"),
    ("step-functions", "states"),
    ("stepfunctions", "states"),
    ("x-ray", "xray"),
];

/// The known endpoint service an unknown name most likely means, for "did you mean": the same name
/// in another case, the short form of a full service name (`com.amazonaws.us-east-1.s3`), a
/// common other name (`cloudwatch` is `monitoring`), or the closest spelling.
pub fn suggest_endpoint(unknown: &str) -> Option<&'static str> {
    let lower = unknown.to_ascii_lowercase();
    let short = lower
        .strip_prefix("com.amazonaws.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(lower.as_str(), |(_region, name)| name);
    let same_name = ENDPOINT_SERVICES
        .iter()
        .map(|(known, _)| *known)
        .find(|known| *known == short);
    let alias = || {
        ENDPOINT_ALIASES
            .iter()
            .find(|(alias, _)| *alias == short)
            .map(|(_, known)| *known)
    };
    same_name.or_else(alias).or_else(|| {
        ENDPOINT_SERVICES
            .iter()
            .map(|(known, _)| (strsim::jaro_winkler(short, known), *known))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, known)| known)
    })
}

/// One service of `endpoints = [...]`: a name from [`ENDPOINT_SERVICES`], held as its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct Endpoint(usize);

impl Endpoint {
    pub fn parse(name: &str) -> Result<Self, RequirementError> {
        ENDPOINT_SERVICES
            .iter()
            .position(|(known, _)| *known == name)
            .map(Endpoint)
            .ok_or_else(|| RequirementError::UnknownEndpoint {
                name: name.to_owned(),
            })
    }

    /// The short name, `s3` or `secretsmanager`.
    pub fn as_str(&self) -> &'static str {
        ENDPOINT_SERVICES[self.0].0
    }

    pub fn kind(&self) -> EndpointKind {
        ENDPOINT_SERVICES[self.0].1
    }

    /// The full service name in a region: `com.amazonaws.us-east-1.s3`.
    pub fn service_name(&self, region: &str) -> String {
        format!("com.amazonaws.{region}.{}", self.as_str())
    }
}

impl TryFrom<String> for Endpoint {
    type Error = RequirementError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Endpoint::parse(&name)
    }
}

impl From<Endpoint> for String {
    fn from(endpoint: Endpoint) -> String {
        endpoint.as_str().to_owned()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport protocol of an egress rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    /// As the EC2 API writes it in `IpProtocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One entry of `egress = [...]`: traffic the function's security group lets out.
///
/// Written `CIDR:PORT` or `CIDR:FROM-TO`, TCP unless followed by `/udp`:
/// `"0.0.0.0/0:443"`, `"198.51.100.0/24:5432-5433"`, `"10.0.0.2/32:53/udp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct EgressRule {
    /// The network address, with no host bits set.
    pub address: std::net::Ipv4Addr,
    pub prefix_len: u8,
    pub from_port: u16,
    pub to_port: u16,
    pub protocol: Protocol,
}

impl EgressRule {
    pub fn parse(entry: &str) -> Result<Self, RequirementError> {
        let malformed = |reason: &str| RequirementError::MalformedEgressRule {
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        };
        // The network has a `/` of its own, so the protocol is looked for after the port.
        let (cidr, ports_and_protocol) = entry
            .rsplit_once(':')
            .ok_or_else(|| malformed("no `:PORT` after the network"))?;
        let (ports, protocol) = match ports_and_protocol.split_once('/') {
            None => (ports_and_protocol, Protocol::Tcp),
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some((_, other)) => {
                return Err(malformed(&format!(
                    "`/{other}` is not a protocol: TCP is the default, `/udp` selects UDP"
                )))
            }
        };
        let (address, prefix_len) = cidr
            .split_once('/')
            .ok_or_else(|| malformed("the network has no `/prefix`, e.g. `/32` for one address"))?;
        let address: std::net::Ipv4Addr = address.parse().map_err(|_| {
            if address.parse::<std::net::Ipv6Addr>().is_ok() {
                // `::/0:443` reads as IPv6; the functions' traffic leaves through IPv4 NATs.
                malformed(&format!(
                    "`{address}` is an IPv6 address; egress rules are IPv4, like the fixed IPs"
                ))
            } else {
                malformed(&format!("`{address}` is not an IPv4 address"))
            }
        })?;
        let prefix_len: u8 = prefix_len
            .parse()
            .ok()
            .filter(|len| *len <= 32)
            .ok_or_else(|| {
                malformed(&format!(
                    "`/{prefix_len}` is not a prefix length from 0 to 32"
                ))
            })?;
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix_len))
            .unwrap_or(0);
        if u32::from(address) & !mask != 0 {
            let network = std::net::Ipv4Addr::from(u32::from(address) & mask);
            return Err(malformed(&format!(
                "`{cidr}` has host bits set; the network is `{network}/{prefix_len}`"
            )));
        }
        let port = |text: &str| {
            text.parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| malformed(&format!("`{text}` is not a port from 1 to 65535")))
        };
        let (from_port, to_port) = match ports.split_once('-') {
            Some((from, to)) => (port(from)?, port(to)?),
            None => (port(ports)?, port(ports)?),
        };
        if from_port > to_port {
            return Err(malformed(&format!(
                "the port range `{ports}` runs backwards"
            )));
        }
        Ok(EgressRule {
            address,
            prefix_len,
            from_port,
            to_port,
            protocol,
        })
    }

    /// The network as the EC2 API writes it: `203.0.113.10/32`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix_len)
    }
}

impl TryFrom<String> for EgressRule {
    type Error = RequirementError;
    fn try_from(entry: String) -> Result<Self, Self::Error> {
        EgressRule::parse(&entry)
    }
}

impl From<EgressRule> for String {
    fn from(rule: EgressRule) -> String {
        rule.to_string()
    }
}

/// The canonical form, which [`EgressRule::parse`] reads back: `/udp` only for UDP, a range only
/// when it spans more than one port.
impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.cidr(), self.from_port)?;
        if self.to_port != self.from_port {
            write!(f, "-{}", self.to_port)?;
        }
        if self.protocol == Protocol::Udp {
            f.write_str("/udp")?;
        }
        Ok(())
    }
}

/// The validated arguments of one `#[fixed_egress(...)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EgressRequirements {
    pub stack: StackName,
    pub azs: AzCount,
    /// Existing Elastic IPs to use instead of allocating new ones; never released by fixedip.
    pub ips: Vec<AllocationId>,
    /// How the private subnets reach the internet.
    pub nat: NatMode,
    /// How many NATs serve the `azs` private subnets; `None`: one per AZ. With fewer NATs than
    /// AZs, a subnet without its own NAT routes through another AZ's.
    pub nats: Option<u8>,
    /// VPC endpoints in the function's network.
    pub endpoints: Vec<Endpoint>,
    /// What the function's security group lets out; empty: everything (the default).
    pub egress: Vec<EgressRule>,
}

impl Default for EgressRequirements {
    fn default() -> Self {
        EgressRequirements {
            stack: StackName::default(),
            azs: AzCount::DEFAULT,
            ips: Vec::new(),
            nat: NatMode::default(),
            nats: None,
            endpoints: Vec::new(),
            egress: Vec::new(),
        }
    }
}

impl EgressRequirements {
    /// How many NATs (gateways or instances) the stack runs, each with one Elastic IP.
    pub fn nat_count(&self) -> u8 {
        match self.nat {
            NatMode::None => 0,
            NatMode::Gateway | NatMode::Instance => self.nats.unwrap_or(self.azs.get()),
        }
    }

    /// The rules that involve more than one value. Single values are checked by their own types.
    pub fn violations(&self) -> Vec<Violation> {
        let mut found = Vec::new();
        for (index, id) in self.ips.iter().enumerate() {
            if self.ips[..index].contains(id) {
                found.push(Violation {
                    error: RequirementError::DuplicateAllocationId { id: id.to_string() },
                    at: Location::IpsElement(index),
                });
            }
        }
        // Without a NAT, `ips` is refused whatever its length (below).
        let fewer_nats = self.nats.filter(|nats| *nats < self.azs.get());
        let limit = fewer_nats.unwrap_or(self.azs.get());
        if self.nat != NatMode::None && self.ips.len() > usize::from(limit) {
            found.push(Violation {
                error: RequirementError::TooManyIps {
                    count: self.ips.len(),
                    azs: self.azs.get(),
                    nats: fewer_nats,
                },
                at: Location::Argument("ips"),
            });
        }
        if let Some(nats) = self.nats {
            if nats == 0 || nats > self.azs.get() {
                found.push(Violation {
                    error: RequirementError::NatsOutOfRange {
                        found: nats.to_string(),
                        azs: self.azs.get(),
                    },
                    at: Location::Argument("nats"),
                });
            }
        }
        if self.nat == NatMode::None {
            for argument in ["nats", "ips"] {
                let given = match argument {
                    "nats" => self.nats.is_some(),
                    _ => !self.ips.is_empty(),
                };
                if given {
                    found.push(Violation {
                        error: RequirementError::NeedsNat { argument },
                        at: Location::Argument(argument),
                    });
                }
            }
        }
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            if self.endpoints[..index].contains(endpoint) {
                found.push(Violation {
                    error: RequirementError::DuplicateEndpoint {
                        name: endpoint.to_string(),
                    },
                    at: Location::EndpointsElement(index),
                });
            }
        }
        // EC2 refuses a security group rule given twice (InvalidPermission.Duplicate): better
        // at compile time, at the entry, than half-way through a deploy.
        for (index, rule) in self.egress.iter().enumerate() {
            if self.egress[..index].contains(rule) {
                found.push(Violation {
                    error: RequirementError::DuplicateEgressRule {
                        entry: rule.to_string(),
                    },
                    at: Location::EgressElement(index),
                });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn az_count_bounds() {
        assert!(AzCount::new(0).is_err());
        assert_eq!(AzCount::new(1).unwrap().get(), 1);
        assert_eq!(AzCount::new(6).unwrap().get(), 6);
        assert_eq!(
            AzCount::new(7).unwrap_err().to_string(),
            "`azs` must be between 1 and 6, found 7"
        );
    }

    #[test]
    fn az_count_as_written() {
        assert_eq!(AzCount::parse("3").unwrap().get(), 3);
        for (text, message) in [
            ("0", "`azs` must be between 1 and 6, found 0"),
            ("-1", "`azs` must be between 1 and 6, found -1"),
            (
                "99999999999999999999999",
                "`azs` must be between 1 and 6, found 99999999999999999999999",
            ),
            (
                "\"2\"",
                "`azs` expects an integer, e.g. `azs = 2`, found `\"2\"`",
            ),
            (
                "2.0",
                "`azs` expects an integer, e.g. `azs = 2`, found `2.0`",
            ),
            ("", "`azs` expects an integer, e.g. `azs = 2`, found ``"),
            ("-", "`azs` expects an integer, e.g. `azs = 2`, found `-`"),
        ] {
            assert_eq!(
                AzCount::parse(text).unwrap_err().to_string(),
                message,
                "{text:?}"
            );
        }
    }

    #[test]
    fn stack_names() {
        for good in ["default", "a", "payments-eu", "x1"] {
            StackName::parse(good).unwrap();
        }
        for bad in [
            "",
            "Default",
            "1abc",
            "ends-",
            "has_underscore",
            &"a".repeat(33),
        ] {
            assert!(StackName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn allocation_ids() {
        AllocationId::parse("eipalloc-0123abcd").unwrap();
        AllocationId::parse("eipalloc-0123456789abcdef0").unwrap();
        for bad in [
            "eipalloc-123",
            "eni-0123abcd",
            "eipalloc-0123ABCD",
            "eipalloc-0123abcz",
        ] {
            assert!(
                AllocationId::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn too_many_and_duplicate_ips() {
        let id = AllocationId::parse("eipalloc-0123abcd").unwrap();
        let reqs = EgressRequirements {
            azs: AzCount::new(1).unwrap(),
            ips: vec![id.clone(), id],
            ..Default::default()
        };
        let at: Vec<Location> = reqs.violations().into_iter().map(|v| v.at).collect();
        assert_eq!(at, [Location::IpsElement(1), Location::Argument("ips")]);
    }

    #[test]
    fn one_address_per_nat() {
        let ids: Vec<AllocationId> = ["eipalloc-0123abcd", "eipalloc-4567cdef"]
            .map(|id| AllocationId::parse(id).unwrap())
            .to_vec();
        let reqs = |nats| EgressRequirements {
            azs: AzCount::new(3).unwrap(),
            nats,
            ips: ids.clone(),
            ..Default::default()
        };
        assert!(reqs(None).violations().is_empty());
        assert!(reqs(Some(2)).violations().is_empty());
        let violations = reqs(Some(1)).violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].at, Location::Argument("ips"));
        assert_eq!(
            violations[0].error.to_string(),
            "`ips` lists 2 addresses but the stack runs 1 NAT (`nats = 1`): at most one address per NAT"
        );
        // No NAT at all: the error is that `ips` needs one, not that it is too long.
        let isolated = EgressRequirements {
            nat: NatMode::None,
            azs: AzCount::new(1).unwrap(),
            ..reqs(None)
        };
        let errors: Vec<RequirementError> =
            isolated.violations().into_iter().map(|v| v.error).collect();
        assert_eq!(errors, [RequirementError::NeedsNat { argument: "ips" }]);
    }

    #[test]
    fn egress_rules_as_written() {
        for (entry, canonical) in [
            ("0.0.0.0/0:443", "0.0.0.0/0:443"),
            ("203.0.113.10/32:22", "203.0.113.10/32:22"),
            ("198.51.100.0/24:5432-5433", "198.51.100.0/24:5432-5433"),
            ("10.0.0.2/32:53/udp", "10.0.0.2/32:53/udp"),
            ("10.0.0.2/32:53/tcp", "10.0.0.2/32:53"),
            ("10.0.0.0/8:443-443", "10.0.0.0/8:443"),
        ] {
            let rule = EgressRule::parse(entry).unwrap();
            assert_eq!(rule.to_string(), canonical);
            assert_eq!(EgressRule::parse(canonical).unwrap(), rule);
        }
        for (entry, reason) in [
            ("0.0.0.0/0", "no `:PORT`"),
            ("0.0.0.0:443", "no `/prefix`"),
            ("300.0.0.0/8:443", "not an IPv4 address"),
            ("10.0.0.0/33:443", "not a prefix length"),
            (
                "10.0.0.1/24:443",
                "host bits set; the network is `10.0.0.0/24`",
            ),
            ("10.0.0.0/24:0", "not a port"),
            ("10.0.0.0/24:70000", "not a port"),
            ("10.0.0.0/24:443-80", "runs backwards"),
            ("10.0.0.0/24:443/icmp", "`/icmp` is not a protocol"),
            ("10.0.0.0/24:443/UDP", "`/UDP` is not a protocol"),
            ("10.0.0.0/24:/udp", "`` is not a port"),
            ("::/0:443", "`::` is an IPv6 address"),
            ("10.0.0.0/24:https", "`https` is not a port"),
        ] {
            let message = EgressRule::parse(entry).unwrap_err().to_string();
            assert!(message.contains(reason), "{entry}: {message}");
        }
    }

    #[test]
    fn nat_modes_and_counts() {
        assert_eq!(NatMode::parse("instance").unwrap(), NatMode::Instance);
        assert_eq!(
            NatMode::parse("regional").unwrap_err(),
            RequirementError::RegionalNatUnsupported
        );
        assert!(NatMode::parse("Gateway").is_err());
        let reqs = |nat, nats, azs| EgressRequirements {
            nat,
            nats,
            azs: AzCount::new(azs).unwrap(),
            ..Default::default()
        };
        assert_eq!(reqs(NatMode::Gateway, None, 3).nat_count(), 3);
        assert_eq!(reqs(NatMode::Instance, Some(1), 3).nat_count(), 1);
        assert_eq!(reqs(NatMode::None, None, 3).nat_count(), 0);
        assert!(reqs(NatMode::Gateway, Some(3), 3).violations().is_empty());
        let at = |r: EgressRequirements| -> Vec<Location> {
            r.violations().into_iter().map(|v| v.at).collect()
        };
        assert_eq!(
            at(reqs(NatMode::Gateway, Some(4), 3)),
            [Location::Argument("nats")]
        );
        assert_eq!(
            at(reqs(NatMode::Gateway, Some(0), 3)),
            [Location::Argument("nats")]
        );
        assert_eq!(
            at(reqs(NatMode::None, Some(1), 1)),
            [Location::Argument("nats")]
        );
        let three = AzCount::new(3).unwrap();
        assert_eq!(parse_nats("1", three), Ok(1));
        assert_eq!(parse_nats("3", three), Ok(3));
        for out_of_range in ["0", "4", "-1", "256", "99999999999999999999999"] {
            assert_eq!(
                parse_nats(out_of_range, three).unwrap_err().to_string(),
                format!("`nats` must be between 1 and `azs` (3), found {out_of_range}: each NAT serves one AZ or more, and no AZ has two"),
            );
        }
        for not_an_integer in ["two", "\"1\"", "1.0", "", "-"] {
            assert_eq!(
                parse_nats(not_an_integer, three).unwrap_err(),
                RequirementError::NatsNotAnInteger {
                    found: not_an_integer.into()
                }
            );
        }
    }

    #[test]
    fn endpoints() {
        let s3 = Endpoint::parse("s3").unwrap();
        assert_eq!(s3.kind(), EndpointKind::Gateway);
        assert_eq!(s3.service_name("us-east-1"), "com.amazonaws.us-east-1.s3");
        assert_eq!(
            Endpoint::parse("logs").unwrap().kind(),
            EndpointKind::Interface
        );
        let message = Endpoint::parse("secretmanager").unwrap_err().to_string();
        assert!(
            message.contains("did you mean `secretsmanager`?"),
            "{message}"
        );
        let reqs = EgressRequirements {
            endpoints: vec![s3, s3],
            ..Default::default()
        };
        let at: Vec<Location> = reqs.violations().into_iter().map(|v| v.at).collect();
        assert_eq!(at, [Location::EndpointsElement(1)]);
    }

    #[test]
    fn endpoint_suggestions() {
        for (written, meant) in [
            ("S3", "s3"),
            ("DynamoDB", "dynamodb"),
            ("com.amazonaws.eu-west-1.secretsmanager", "secretsmanager"),
            ("cloudwatch", "monitoring"),
            ("CloudWatch-Logs", "logs"),
            ("step-functions", "states"),
            ("dynamo", "dynamodb"),
            ("sqs-queue", "sqs"),
        ] {
            assert_eq!(suggest_endpoint(written), Some(meant), "{written}");
            let message = Endpoint::parse(written).unwrap_err().to_string();
            assert!(
                message.ends_with(&format!("did you mean `{meant}`?")),
                "{message}"
            );
        }
        let message = Endpoint::parse("mainframe").unwrap_err().to_string();
        assert!(
            message.ends_with("known: s3, dynamodb, athena, ec2, ecr.api, ecr.dkr, events, execute-api, firehose, kinesis-streams, kms, lambda, logs, monitoring, rds, secretsmanager, sns, sqs, ssm, states, sts, xray"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_egress_rules_in_any_spelling() {
        let rule = |entry| EgressRule::parse(entry).unwrap();
        let reqs = EgressRequirements {
            egress: vec![
                rule("0.0.0.0/0:443"),
                rule("0.0.0.0/0:443/udp"),
                rule("0.0.0.0/0:443/tcp"),
            ],
            ..Default::default()
        };
        let violations = reqs.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].at, Location::EgressElement(2));
        assert_eq!(
            violations[0].error.to_string(),
            "`0.0.0.0/0:443` is listed twice in `egress`"
        );
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(suggest_argument("az"), Some("azs"));
        assert_eq!(suggest_argument("stak"), Some("stack"));
        assert_eq!(suggest_argument("ip"), Some("ips"));
        assert_eq!(suggest_argument("zzzzzz"), None);
    }
}
