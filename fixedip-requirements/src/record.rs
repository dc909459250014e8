//! The record `#[fixed_egress]` embeds in a compiled binary, so that the artifact carries the network
//! it needs.
//!
//! The macro places the record in its own link section (`.fixedip` in ELF and PE, `__DATA,__fixedip`
//! in Mach-O), marked `#[used]`, which survives fat LTO, `strip` and `panic = "abort"`: no code ever
//! reads it, so the function's run-time path is unchanged. The format is versioned text:
//!
//! ```text
//! FIXEDIP/1
//! package=hello-egress
//! function=hello_egress::main
//! source=src/main.rs:12
//! stack=default
//! azs=2
//! ips=eipalloc-0123abcd,eipalloc-4567cdef
//! nat=instance
//! nats=1
//! endpoints=s3,logs
//! egress=0.0.0.0/0:443,10.0.0.2/32:53/udp
//! <blank line>
//! ```
//!
//! `nat`, `nats`, `endpoints` and `egress` are written only when they differ from the default, so a
//! function that uses none of them carries the same bytes as before they existed. A reader refuses
//! keys it does not know: an older cargo-fixedip must not deploy a network it does not understand.
//!
//! Every value is validated before it is written (names and ids hold no newline or comma), so the
//! format needs no escaping. Parts that only the compiler knows (package, module path, source line)
//! are spliced in by the macro with `env!`, `module_path!`, `file!` and `line!`.

use std::fmt;

use crate::requirements::{
    parse_nats, AllocationId, AzCount, EgressRequirements, EgressRule, Endpoint, NatMode,
    RequirementError, StackName,
};

/// The name of the link section outside Apple platforms.
pub const SECTION_ELF: &str = ".fixedip";
/// The segment and section on Apple platforms.
pub const SECTION_MACHO: &str = "__DATA,__fixedip";
/// The first line of every record; the number is the format version.
pub const HEADER: &str = "FIXEDIP/1\n";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One `#[fixed_egress]` found in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Record {
    /// The Cargo package the function was compiled in.
    pub package: String,
    /// The annotated function, with its module path: `hello_egress::main`.
    pub function: String,
    /// Where the attribute is: `src/main.rs:12`.
    pub source: String,
    pub requirements: EgressRequirements,
}

/// Why the bytes of a record section could not be read. (`Display` by hand, as for
/// [`RequirementError`]: no proc macro in what the attribute compiles.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    NewerFormat { found: String },
    Malformed(String),
    Invalid(RequirementError),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NewerFormat { found } => write!(
                f,
                "the record was written by a newer fixedip (format {found}, this one reads {FORMAT_VERSION}): update cargo-fixedip"
            ),
            RecordError::Malformed(why) => write!(f, "the record section is damaged: {why}"),
            RecordError::Invalid(error) => {
                write!(f, "the record holds an invalid requirement: {error}")
            }
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordError::Invalid(error) => Some(error),
            RecordError::NewerFormat { .. } | RecordError::Malformed(_) => None,
        }
    }
}

impl From<RequirementError> for RecordError {
    fn from(error: RequirementError) -> Self {
        RecordError::Invalid(error)
    }
}

/// The lines after the header and the compiler-provided fields: `stack`, `azs`, `ips`, the modes
/// that differ from the default, and the blank line that ends the record. The macro writes exactly
/// this, so the format is defined in one place.
pub fn encode_requirements(requirements: &EgressRequirements) -> String {
    let ips: Vec<&str> = requirements.ips.iter().map(AllocationId::as_str).collect();
    let mut text = format!(
        "stack={}\nazs={}\nips={}\n",
        requirements.stack,
        requirements.azs,
        ips.join(",")
    );
    if requirements.nat != NatMode::default() {
        text += &format!("nat={}\n", requirements.nat);
    }
    if let Some(nats) = requirements.nats {
        text += &format!("nats={nats}\n");
    }
    if !requirements.endpoints.is_empty() {
        let names: Vec<&str> = requirements
            .endpoints
            .iter()
            .map(Endpoint::as_str)
            .collect();
        text += &format!("endpoints={}\n", names.join(","));
    }
    if !requirements.egress.is_empty() {
        let rules: Vec<String> = requirements
            .egress
            .iter()
            .map(ToString::to_string)
            .collect();
        text += &format!("egress={}\n", rules.join(","));
    }
    text + "\n"
}

impl Record {
    /// The whole record as the macro lays it out; used by tests and by tools that write records.
    pub fn encode(&self) -> String {
        format!(
            "{HEADER}package={}\nfunction={}\nsource={}\n{}",
            self.package,
            self.function,
            self.source,
            encode_requirements(&self.requirements)
        )
    }

    /// Every record in the contents of a record section, in order. NUL bytes between records
    /// (alignment padding) are skipped.
    pub fn parse_section(bytes: &[u8]) -> Result<Vec<Record>, RecordError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| RecordError::Malformed(format!("not UTF-8 ({e})")))?;
        let mut records = Vec::new();
        let mut rest = text.trim_start_matches('\0');
        while !rest.is_empty() {
            let end = rest
                .find("\n\n")
                .ok_or_else(|| RecordError::Malformed("a record has no end".into()))?;
            records.push(Record::parse(&rest[..end + 1])?);
            rest = rest[end + 2..].trim_start_matches('\0');
        }
        Ok(records)
    }

    fn parse(text: &str) -> Result<Record, RecordError> {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let version = header
            .strip_prefix("FIXEDIP/")
            .ok_or_else(|| RecordError::Malformed(format!("unexpected header {header:?}")))?;
        if version != FORMAT_VERSION.to_string() {
            return match version.parse::<u32>() {
                Ok(n) if n > FORMAT_VERSION => Err(RecordError::NewerFormat {
                    found: version.to_owned(),
                }),
                _ => Err(RecordError::Malformed(format!(
                    "unknown format version {version:?}"
                ))),
            };
        }

        let (mut package, mut function, mut source) = (None, None, None);
        // `nats` is checked against `azs`, which may come later.
        let mut nats = None;
        let mut requirements = EgressRequirements::default();
        for line in lines {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| RecordError::Malformed(format!("line {line:?} is not key=value")))?;
            match key {
                "package" => package = Some(value.to_owned()),
                "function" => function = Some(value.to_owned()),
                "source" => source = Some(value.to_owned()),
                "stack" => requirements.stack = StackName::parse(value)?,
                "azs" => requirements.azs = AzCount::parse(value)?,
                "ips" => {
                    requirements.ips = value
                        .split(',')
                        .filter(|id| !id.is_empty())
                        .map(AllocationId::parse)
                        .collect::<Result<_, _>>()?;
                }
                "nat" => requirements.nat = NatMode::parse(value)?,
                "nats" => nats = Some(value),
                "endpoints" => {
                    requirements.endpoints = value
                        .split(',')
                        .map(Endpoint::parse)
                        .collect::<Result<_, _>>()?;
                }
                "egress" => {
                    requirements.egress = value
                        .split(',')
                        .map(EgressRule::parse)
                        .collect::<Result<_, _>>()?;
                }
                other => return Err(RecordError::Malformed(format!("unknown key {other:?}"))),
            }
        }
        if let Some(nats) = nats {
            requirements.nats = Some(parse_nats(nats, requirements.azs)?);
        }
        if let Some(violation) = requirements.violations().into_iter().next() {
            return Err(RecordError::Invalid(violation.error));
        }
        let missing = |field: &str| RecordError::Malformed(format!("`{field}` is missing"));
        Ok(Record {
            package: package.ok_or_else(|| missing("package"))?,
            function: function.ok_or_else(|| missing("function"))?,
            source: source.ok_or_else(|| missing("source"))?,
            requirements,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requirements::ENDPOINT_SERVICES;

    fn sample(function: &str) -> Record {
        Record {
            package: "hello-egress".into(),
            function: function.into(),
            source: "src/main.rs:12".into(),
            requirements: EgressRequirements {
                stack: StackName::parse("payments").unwrap(),
                azs: AzCount::new(3).unwrap(),
                ips: vec![AllocationId::parse("eipalloc-0123abcd").unwrap()],
                ..Default::default()
            },
        }
    }

    #[test]
    fn modes_round_trip() {
        let mut record = sample("m::main");
        record.requirements.nat = NatMode::Instance;
        record.requirements.nats = Some(2);
        record.requirements.endpoints = vec![
            Endpoint::parse("s3").unwrap(),
            Endpoint::parse("secretsmanager").unwrap(),
        ];
        record.requirements.egress = vec![
            EgressRule::parse("0.0.0.0/0:443").unwrap(),
            EgressRule::parse("198.51.100.0/24:5432-5433").unwrap(),
            EgressRule::parse("10.0.0.2/32:53/udp").unwrap(),
        ];
        let encoded = record.encode();
        assert!(encoded.ends_with(
            "nat=instance\nnats=2\nendpoints=s3,secretsmanager\negress=0.0.0.0/0:443,198.51.100.0/24:5432-5433,10.0.0.2/32:53/udp\n\n"
        ), "{encoded}");
        assert_eq!(Record::parse_section(encoded.as_bytes()).unwrap(), [record]);
    }

    #[test]
    fn defaults_write_no_mode_lines() {
        let record = sample("m::main");
        assert!(record.encode().ends_with("ips=eipalloc-0123abcd\n\n"));
    }

    #[test]
    fn records_breaking_a_rule_are_refused() {
        let bad = b"FIXEDIP/1\npackage=p\nfunction=f\nsource=s\nazs=2\nnats=3\n\n";
        let err = Record::parse_section(bad).unwrap_err();
        assert!(matches!(err, RecordError::Invalid(_)), "{err}");
    }

    #[test]
    fn nats_is_checked_against_azs_wherever_it_is_written() {
        let nats_first = b"FIXEDIP/1\npackage=p\nfunction=f\nsource=s\nnats=3\nazs=3\n\n";
        let records = Record::parse_section(nats_first).unwrap();
        assert_eq!(records[0].requirements.nats, Some(3));
        let too_many = b"FIXEDIP/1\npackage=p\nfunction=f\nsource=s\nnats=3\nazs=2\n\n";
        assert_eq!(
            Record::parse_section(too_many).unwrap_err(),
            RecordError::Invalid(RequirementError::NatsOutOfRange {
                found: "3".into(),
                azs: 2
            })
        );
    }

    #[test]
    fn round_trip_with_padding() {
        let (a, b) = (sample("hello_egress::main"), sample("hello_egress::other"));
        let section = format!("{}\0\0{}", a.encode(), b.encode());
        assert_eq!(Record::parse_section(section.as_bytes()).unwrap(), [a, b]);
    }

    #[test]
    fn empty_ips_and_defaults() {
        let mut record = sample("m::main");
        record.requirements = EgressRequirements::default();
        assert_eq!(
            Record::parse_section(record.encode().as_bytes()).unwrap(),
            [record]
        );
    }

    #[test]
    fn newer_format_is_named() {
        let err = Record::parse_section(b"FIXEDIP/2\npackage=x\n\n").unwrap_err();
        assert!(matches!(err, RecordError::NewerFormat { .. }), "{err}");
    }

    #[test]
    fn damaged_records_are_refused() {
        for bad in [
            &b"FIXEDIP/1\npackage=x"[..],
            b"garbage\n\n",
            b"FIXEDIP/1\nazs=9\n\n",
            b"FIXEDIP/1\nazs=two\n\n",
        ] {
            assert!(Record::parse_section(bad).is_err());
        }
    }

    proptest::proptest! {
        /// Whatever the macro can write, the reader reads back as it was.
        #[test]
        fn every_valid_record_round_trips(
            stack in "[a-z]([a-z0-9-]{0,30}[a-z0-9])?",
            azs in 1u64..=6,
            hex in proptest::collection::vec("[0-9a-f]{8}|[0-9a-f]{17}", 0..=6),
            function in "[a-z_][a-z0-9_]{0,10}(::[a-z_][a-z0-9_]{0,10}){0,3}",
            line in 1u32..100_000,
            nat in 0usize..3,
            nats in 0u8..=6,
            endpoints in proptest::collection::btree_set(0..ENDPOINT_SERVICES.len(), 0..5),
            rules in proptest::collection::btree_set(
                (proptest::prelude::any::<u32>(), 0u8..=32, 1u16..=65535, 0u16..100, proptest::prelude::any::<bool>()),
                0..5,
            ),
        ) {
            let nat = [NatMode::Gateway, NatMode::Instance, NatMode::None][nat];
            // At most one address per AZ and one NAT per AZ, none of either without a NAT, no
            // duplicate: what the macro allows.
            let nats = (nat != NatMode::None && (1..=azs as u8).contains(&nats)).then_some(nats);
            let nat_count = if nat == NatMode::None { 0 } else { nats.unwrap_or(azs as u8) };
            let ips = hex.iter().take(usize::from(nat_count)).map(|h| AllocationId::parse(&format!("eipalloc-{h}")).unwrap());
            let endpoints = endpoints.into_iter().map(|i| Endpoint::parse(ENDPOINT_SERVICES[i].0).unwrap()).collect();
            let mut egress: Vec<EgressRule> = Vec::new();
            for (address, prefix_len, from, span, udp) in rules {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
                let to = from.saturating_add(span);
                let written = format!(
                    "{}/{prefix_len}:{from}-{to}{}",
                    std::net::Ipv4Addr::from(address & mask),
                    if udp { "/udp" } else { "" }
                );
                let rule = EgressRule::parse(&written).unwrap();
                if !egress.contains(&rule) {
                    egress.push(rule);
                }
            }
            let record = Record {
                package: "some-package".into(),
                function,
                // `=` in a value: only the first one on a line separates the key.
                source: format!("src/bin/a=b.rs:{line}"),
                requirements: EgressRequirements {
                    stack: StackName::parse(&stack).unwrap(),
                    azs: AzCount::new(azs).unwrap(),
                    ips: ips.collect(),
                    nat,
                    nats,
                    endpoints,
                    egress,
                },
            };
            let section = format!("\0{}\0\0\0{}", record.encode(), record.encode());
            proptest::prop_assert_eq!(
                Record::parse_section(section.as_bytes()).unwrap(),
                vec![record.clone(), record]
            );
        }
    }
}
