//! The record `#[fixed_egress]` emits is in the compiled binary, in the format `fixedip-requirements`
//! reads, and the annotated functions behave exactly as before. The binary read is this test's own
//! executable.

use fixedip_macros::fixed_egress;
use fixedip_requirements::record::{Record, SECTION_ELF, SECTION_MACHO};
use fixedip_requirements::requirements::{
    AllocationId, AzCount, EgressRequirements, EgressRule, Endpoint, NatMode, StackName,
};
use object::{Object, ObjectSection};

const ALL_ARGUMENTS_LINE: u32 = line!() + 1;
#[fixed_egress(
    azs = 3,
    stack = "record-test",
    ips = ["eipalloc-0123abcd", "eipalloc-0123456789abcdef0"],
    nat = "instance",
    nats = 2,
    endpoints = ["s3", "secretsmanager", "logs"],
    egress = ["0.0.0.0/0:443", "198.51.100.0/24:5432-5433", "10.0.0.2/32:53/udp", "203.0.113.10/32:22/tcp"],
)]
fn doubled(x: u32) -> u32 {
    x * 2
}

#[fixed_egress(nat = "none", endpoints = ["dynamodb"], azs = 1)]
fn isolated() -> &'static str {
    "no route out"
}

mod nested {
    use fixedip_macros::fixed_egress;

    pub const DEFAULTS_LINE: u32 = line!() + 1;
    #[fixed_egress]
    pub async fn greeting<T: std::fmt::Display>(name: T) -> String {
        format!("hello, {name}")
    }
}

/// The records in this executable's record section, in link order.
fn records_in_this_binary() -> Vec<Record> {
    let path = std::env::current_exe().expect("the test knows its own path");
    let bytes = std::fs::read(&path).expect("the test can read its own executable");
    let binary = object::File::parse(&*bytes).expect("the test executable is an object file");
    let name = if cfg!(target_vendor = "apple") {
        SECTION_MACHO.split_once(',').unwrap().1
    } else {
        SECTION_ELF
    };
    let section = binary
        .section_by_name(name)
        .unwrap_or_else(|| panic!("{} has no {name} section", path.display()));
    Record::parse_section(section.data().unwrap()).expect("the section holds valid records")
}

fn record_of(function: &str) -> Record {
    let records = records_in_this_binary();
    let mut matching = records.iter().filter(|record| record.function == function);
    let record = matching
        .next()
        .unwrap_or_else(|| panic!("no record for {function} in {records:#?}"));
    assert!(matching.next().is_none(), "{function} is recorded twice");
    record.clone()
}

#[test]
fn every_argument_is_recorded() {
    let expected = Record {
        package: "fixedip-macros".into(),
        function: "record::doubled".into(),
        source: format!("{}:{ALL_ARGUMENTS_LINE}", file!()),
        requirements: EgressRequirements {
            stack: StackName::parse("record-test").unwrap(),
            azs: AzCount::new(3).unwrap(),
            ips: vec![
                AllocationId::parse("eipalloc-0123abcd").unwrap(),
                AllocationId::parse("eipalloc-0123456789abcdef0").unwrap(),
            ],
            nat: NatMode::Instance,
            nats: Some(2),
            endpoints: ["s3", "secretsmanager", "logs"]
                .map(|name| Endpoint::parse(name).unwrap())
                .to_vec(),
            // `/tcp` is the default, so it is recorded without it.
            egress: [
                "0.0.0.0/0:443",
                "198.51.100.0/24:5432-5433",
                "10.0.0.2/32:53/udp",
                "203.0.113.10/32:22",
            ]
            .map(|rule| EgressRule::parse(rule).unwrap())
            .to_vec(),
        },
    };
    assert_eq!(record_of("record::doubled"), expected);
}

#[test]
fn the_isolated_mode_is_recorded() {
    let requirements = record_of("record::isolated").requirements;
    assert_eq!(
        requirements,
        EgressRequirements {
            azs: AzCount::new(1).unwrap(),
            nat: NatMode::None,
            endpoints: vec![Endpoint::parse("dynamodb").unwrap()],
            ..Default::default()
        }
    );
    assert_eq!(requirements.nat_count(), 0);
}

#[test]
fn no_arguments_records_the_defaults() {
    let record = record_of("record::nested::greeting");
    assert_eq!(
        record.source,
        format!("{}:{}", file!(), nested::DEFAULTS_LINE)
    );
    assert_eq!(record.requirements, EgressRequirements::default());
}

#[test]
fn the_section_holds_exactly_the_annotated_functions() {
    let mut functions: Vec<String> = records_in_this_binary()
        .into_iter()
        .map(|record| record.function)
        .collect();
    functions.sort();
    assert_eq!(
        functions,
        [
            "record::doubled",
            "record::isolated",
            "record::nested::greeting"
        ]
    );
}

#[test]
fn annotated_functions_behave_as_written() {
    assert_eq!(doubled(21), 42);
    assert_eq!(isolated(), "no route out");
    let greeting = nested::greeting("lambda");
    assert_eq!(block_on(greeting), "hello, lambda");
}

/// Enough of an executor for a future that never waits; tokio is not a dependency here.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future was expected to finish at once"),
    }
}
