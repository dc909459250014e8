//! What a function needs from the network: the arguments of `#[fixed_egress(...)]`, and the rules
//! that make them valid. The macro and the CLI both call these, so they can never disagree.

use std::fmt;

/// Every argument `#[fixed_egress]` accepts.
pub const ARGUMENTS: &[&str] = &["azs", "stack", "ips"];

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// `found` is the number as written, so that `-1` or a number too big for any integer type
    /// is shown as the user typed it.
    #[error(
        "`azs` must be between {} and {}, found {found}",
        AzCount::MIN,
        AzCount::MAX
    )]
    AzsOutOfRange { found: String },
    #[error("`azs` expects an integer, e.g. `azs = 2`, found `{found}`")]
    AzsNotAnInteger { found: String },
    #[error("`stack` {reason}, found {name:?}")]
    InvalidStackName { name: String, reason: &'static str },
    #[error(
        "`{id}` is not an Elastic IP allocation id: expected `eipalloc-` followed by 8 or 17 lowercase hexadecimal digits"
    )]
    MalformedAllocationId { id: String },
    #[error("`{id}` is listed twice in `ips`")]
    DuplicateAllocationId { id: String },
    #[error(
        "`ips` lists {count} addresses but the function runs in {azs} availability zone{}: at most one address per AZ",
        if *azs == 1 { "" } else { "s" }
    )]
    TooManyIps { count: usize, azs: u8 },
}

/// Where in the arguments a [`RequirementError`] lies, so the macro can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The value of the named argument as a whole.
    Argument(&'static str),
    /// One element of the `ips` list.
    IpsElement(usize),
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

/// The validated arguments of one `#[fixed_egress(...)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EgressRequirements {
    pub stack: StackName,
    pub azs: AzCount,
    /// Existing Elastic IPs to use instead of allocating new ones; never released by fixedip.
    pub ips: Vec<AllocationId>,
}

impl Default for EgressRequirements {
    fn default() -> Self {
        EgressRequirements {
            stack: StackName::default(),
            azs: AzCount::DEFAULT,
            ips: Vec::new(),
        }
    }
}

impl EgressRequirements {
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
        if self.ips.len() > usize::from(self.azs.get()) {
            found.push(Violation {
                error: RequirementError::TooManyIps {
                    count: self.ips.len(),
                    azs: self.azs.get(),
                },
                at: Location::Argument("ips"),
            });
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
    fn did_you_mean() {
        assert_eq!(suggest_argument("az"), Some("azs"));
        assert_eq!(suggest_argument("stak"), Some("stack"));
        assert_eq!(suggest_argument("ip"), Some("ips"));
        assert_eq!(suggest_argument("zzzzzz"), None);
    }
}
