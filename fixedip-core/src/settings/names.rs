//! The shapes AWS accepts for the names and ids the settings and the CLI take.

/// An EC2 resource id: `<kind>-` then 8 (older resources) or 17 lowercase hexadecimal digits.
pub fn is_resource_id(id: &str, kind: &str) -> bool {
    id.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Lambda's rule for a function name (not an ARN): 1 to 64 of `A-Za-z0-9-_`.
pub fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: a two-letter prefix, words, a number of one or two
/// digits. The one rule for a region name, the settings' and the CLI's (`--region`, the AWS
/// configuration): a well-formed name AWS does not know is caught by the first call.
pub fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words[0].len() == 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// `arn:<partition>:iam::<12 digits>:role/<optional path/>NAME`.
pub(super) fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let name = resource
        .strip_prefix("role/")
        .and_then(|path| path.rsplit('/').next());
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name.is_some_and(|name| {
            (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        })
}

/// `use1-az1`, `apne1-az4`: letters and a digit (the region), `-az`, a number.
pub(super) fn is_az_id(id: &str) -> bool {
    let Some((region, number)) = id.split_once("-az") else {
        return false;
    };
    let letters = region.trim_end_matches(|c: char| c.is_ascii_digit());
    !letters.is_empty()
        && letters.len() < region.len()
        && letters.chars().all(|c| c.is_ascii_lowercase())
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

/// Lambda's rule for a variable name: `[a-zA-Z]([a-zA-Z0-9_])+`.
pub(super) fn is_variable_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}
