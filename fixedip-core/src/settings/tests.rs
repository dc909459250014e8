use super::*;
use serde_json::json;

fn parse(metadata: serde_json::Value) -> Result<DeploySettings, SettingsError> {
    DeploySettings::from_metadata(&metadata, "hello-egress")
}

fn keys(error: SettingsError) -> Vec<String> {
    error.errors.iter().map(|e| e.key().to_owned()).collect()
}

#[test]
fn no_metadata_means_defaults() {
    let settings = parse(serde_json::Value::Null).unwrap();
    assert_eq!(settings, DeploySettings::defaults("hello-egress"));
    assert_eq!(settings.function_name, "hello-egress");
    assert_eq!((settings.memory_mb, settings.timeout_s), (128, 30));
    assert_eq!(Some(settings.architecture), Architecture::host());
}

#[test]
fn every_key_is_read() {
    let settings = parse(json!({ "fixedip": {
        "function-name": "egress-probe",
        "region": "ap-northeast-1",
        "memory": 512,
        "timeout": 900,
        "architecture": "arm64",
        "environment": { "LOG_LEVEL": "debug", "PORT": 8080, "VERBOSE": true },
        "tags": { "team": "payments" },
        "role": "arn:aws:iam::123456789012:role/service/egress",
        "vpc-cidr": "10.20.0.0/20",
    }}))
    .unwrap();
    assert_eq!(settings.function_name, "egress-probe");
    assert_eq!(settings.region.as_deref(), Some("ap-northeast-1"));
    assert_eq!((settings.memory_mb, settings.timeout_s), (512, 900));
    assert_eq!(settings.architecture, Architecture::Arm64);
    assert_eq!(settings.environment["PORT"], "8080");
    assert_eq!(settings.environment["VERBOSE"], "true");
    assert_eq!(settings.tags["team"], "payments");
    assert_eq!(
        settings.role.as_deref(),
        Some("arn:aws:iam::123456789012:role/service/egress")
    );
    assert_eq!(settings.vpc_cidr, Some("10.20.0.0/20".parse().unwrap()));
}

#[test]
fn unknown_key_suggests_the_known_one() {
    let error = parse(json!({ "fixedip": { "memroy": 256 } })).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown key `package.metadata.fixedip.memroy`: did you mean `memory`?"
    );
    let error = parse(json!({ "fixedip": { "function_name": "x" } })).unwrap_err();
    assert!(
        error.to_string().contains("did you mean `function-name`?"),
        "{error}"
    );
    let error = parse(json!({ "fixedip": { "zzz": 1 } })).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("known keys: function-name, region"),
        "{error}"
    );
}

#[test]
fn out_of_range_values_name_the_range() {
    let error = parse(json!({ "fixedip": { "memory": 5, "timeout": 0 } })).unwrap_err();
    let messages: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "`package.metadata.fixedip.memory` must be between 128 and 10240 MB, found 5",
            "`package.metadata.fixedip.timeout` must be between 1 and 900 seconds, found 0",
        ]
    );
    let error = parse(json!({ "fixedip": { "memory": -1 } })).unwrap_err();
    assert!(error.to_string().contains("found -1"), "{error}");
    let error = parse(json!({ "fixedip": { "memory": "512" } })).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("must be a whole number, found the string"),
        "{error}"
    );
}

#[test]
fn bad_values_are_all_reported() {
    let error = parse(json!({ "fixedip": {
        "architecture": "sparc",
        "region": "Europe",
        "role": "my-role",
        "vpc-cidr": "10.0.0.0/8",
        "function-name": "has space",
        "environment": { "AWS_REGION": "x", "1BAD": "y", "OK_NAME": ["list"] },
        "tags": { "fixedip:stack": "x", "aws:foo": "y" },
    }}))
    .unwrap_err();
    let mut keys = keys(error);
    keys.sort();
    assert_eq!(
        keys,
        [
            "package.metadata.fixedip.architecture",
            "package.metadata.fixedip.environment.1BAD",
            "package.metadata.fixedip.environment.AWS_REGION",
            "package.metadata.fixedip.environment.OK_NAME",
            "package.metadata.fixedip.function-name",
            "package.metadata.fixedip.region",
            "package.metadata.fixedip.role",
            "package.metadata.fixedip.tags.aws:foo",
            "package.metadata.fixedip.tags.fixedip:stack",
            "package.metadata.fixedip.vpc-cidr",
        ]
    );
}

#[test]
fn an_existing_network_is_named_by_well_formed_ids() {
    let settings = parse(json!({ "fixedip": {
        "vpc": "vpc-0123456789abcdef0",
        "subnets": ["subnet-0123abcd", "subnet-0123456789abcdef1"],
    }}))
    .unwrap();
    assert_eq!(settings.vpc.as_deref(), Some("vpc-0123456789abcdef0"));
    assert_eq!(
        settings.subnets,
        ["subnet-0123abcd", "subnet-0123456789abcdef1"]
    );

    let error = parse(json!({ "fixedip": {
        "vpc": "vpc-XYZ",
        "subnets": ["subnet-0123abcd", "sg-0123abcd", "subnet-0123abcd"],
    }}))
    .unwrap_err();
    let mut keys = keys(error.clone());
    keys.sort();
    assert_eq!(
        keys,
        [
            "package.metadata.fixedip.subnets[1]",
            "package.metadata.fixedip.subnets[2]",
            "package.metadata.fixedip.vpc",
        ],
        "{error}"
    );
    assert!(error.to_string().contains("is not a vpc id"), "{error}");
    assert!(error.to_string().contains("listed already"), "{error}");

    let error = parse(json!({ "fixedip": { "subnets": "subnet-0123abcd" } })).unwrap_err();
    assert!(
        error.to_string().contains("a list of subnet ids"),
        "{error}"
    );
}

#[test]
fn subnets_need_a_vpc_and_a_vpc_takes_no_cidr() {
    let error = parse(json!({ "fixedip": { "subnets": ["subnet-0123abcd"] } })).unwrap_err();
    assert_eq!(keys(error.clone()), ["package.metadata.fixedip.subnets"]);
    assert!(error.to_string().contains("needs `vpc"), "{error}");
    let error = parse(json!({ "fixedip": {
        "vpc": "vpc-0123abcd", "vpc-cidr": "10.0.0.0/16",
    }}))
    .unwrap_err();
    assert_eq!(keys(error.clone()), ["package.metadata.fixedip.vpc-cidr"]);
    assert!(
        error.to_string().contains("remove one of the two"),
        "{error}"
    );
    assert!(is_resource_id("vpc-0123abcd", "vpc"));
    assert!(!is_resource_id("vpc-0123ABCD", "vpc") && !is_resource_id("vpc-0123abc", "vpc"));
    assert!(!is_resource_id("subnet-0123abcd", "vpc"));
}

#[test]
fn architecture_message_lists_the_choices() {
    let error = parse(json!({ "fixedip": { "architecture": "sparc" } })).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`package.metadata.fixedip.architecture` must be `x86_64` or `arm64`, found \"sparc\""
    );
    let settings = parse(json!({ "fixedip": { "architecture": "aarch64" } })).unwrap();
    assert_eq!(settings.architecture, Architecture::Arm64);
}

#[test]
fn az_ids_are_read_in_order_and_checked() {
    let settings = parse(json!({ "fixedip": { "az-ids": ["use1-az4", "use1-az1"] } })).unwrap();
    assert_eq!(settings.az_ids, ["use1-az4", "use1-az1"]);
    for (bad, why) in [
        (json!("use1-az1"), "a list of AZ ids"),
        (json!(["us-east-1a"]), "is not an AZ id"),
        (
            json!(["use1-az1", "use1-az1"]),
            "names an AZ listed already",
        ),
        (json!(["use1-az"]), "is not an AZ id"),
    ] {
        let error = parse(json!({ "fixedip": { "az-ids": bad } })).unwrap_err();
        assert!(error.to_string().contains(why), "{error}");
    }
    let error = parse(json!({ "fixedip": {
        "vpc": "vpc-0123456789abcdef0",
        "az-ids": ["use1-az1"],
    } }))
    .unwrap_err();
    assert!(error.to_string().contains("az-ids"), "{error}");
}

#[test]
fn nat_instance_type_is_read_and_checked() {
    let settings = parse(json!({ "fixedip": { "nat-instance-type": "t4g.micro" } })).unwrap();
    assert_eq!(settings.nat_instance_type.as_deref(), Some("t4g.micro"));
    let settings = parse(json!({ "fixedip": {} })).unwrap();
    assert_eq!(settings.nat_instance_type, None);
    for bad in ["t4g", "T4G.NANO", ".nano", "t4g. nano"] {
        let error = parse(json!({ "fixedip": { "nat-instance-type": bad } })).unwrap_err();
        assert!(
            error.to_string().contains("is not an EC2 instance type"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn vpc_cidr_must_be_a_network_address_of_the_right_size() {
    let error = parse(json!({ "fixedip": { "vpc-cidr": "10.0.0.5/16" } })).unwrap_err();
    assert!(
        error.to_string().contains("did you mean `10.0.0.0/16`?"),
        "{error}"
    );
    let error = parse(json!({ "fixedip": { "vpc-cidr": "10.0.0.0/25" } })).unwrap_err();
    assert!(error.to_string().contains("/16 to a /24"), "{error}");
    let error = parse(json!({ "fixedip": { "vpc-cidr": "ten" } })).unwrap_err();
    assert!(error.to_string().contains("not an IPv4 CIDR"), "{error}");
}

#[test]
fn cargo_lambda_settings_are_honoured_and_fixedip_wins() {
    let settings = parse(json!({
        "lambda": { "deploy": {
            "memory": 1024,
            "timeout": 60,
            "env": { "FROM_LAMBDA": "lambda", "SHARED": "lambda" },
            "tags": ["team=lambda", "cost=shared"],
            "iam_role": "arn:aws:iam::123456789012:role/from-lambda",
            "tracing": "active",
            "layers": ["arn:aws:lambda:us-east-1:123456789012:layer:x:1"],
        }},
        "fixedip": {
            "memory": 256,
            "environment": { "SHARED": "fixedip", "FROM_FIXEDIP": "fixedip" },
            "tags": { "team": "fixedip" },
        },
    }))
    .unwrap();
    assert_eq!(settings.memory_mb, 256, "fixedip's memory wins");
    assert_eq!(settings.timeout_s, 60, "cargo-lambda's timeout is honoured");
    assert_eq!(
        settings.role.as_deref(),
        Some("arn:aws:iam::123456789012:role/from-lambda")
    );
    let env: Vec<(&str, &str)> = settings
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("FROM_FIXEDIP", "fixedip"),
            ("FROM_LAMBDA", "lambda"),
            ("SHARED", "fixedip")
        ]
    );
    assert_eq!(settings.tags["team"], "fixedip");
    assert_eq!(settings.tags["cost"], "shared");
}

#[test]
fn cargo_lambda_values_are_checked_too() {
    let error = parse(json!({ "lambda": { "deploy": { "memory": 64 } } })).unwrap_err();
    assert_eq!(keys(error), ["package.metadata.lambda.deploy.memory"]);
}

#[test]
fn fixedip_must_be_a_table() {
    let error = parse(json!({ "fixedip": 3 })).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`package.metadata.fixedip` must be a table, found the number 3"
    );
}

#[test]
fn oversize_environment_is_refused() {
    let big = "x".repeat(ENVIRONMENT_MAX_BYTES);
    let error = parse(json!({ "fixedip": { "environment": { "BIG": big } } })).unwrap_err();
    assert!(error.to_string().contains("at most 4096"), "{error}");
}

#[test]
fn names() {
    assert!(is_region("us-east-1") && is_region("us-gov-west-1") && is_region("cn-north-1"));
    assert!(!is_region("useast1") && !is_region("US-EAST-1") && !is_region("us-east-"));
    for good in ["ap-northeast-1", "eu-central-2", "il-central-1"] {
        assert!(is_region(good), "{good}");
    }
    for bad in [
        "",
        "us-east",
        "us-east-one",
        "u-east-1",
        "us--1",
        "us-east-123",
    ] {
        assert!(!is_region(bad), "{bad}");
    }
    assert!(is_role_arn("arn:aws:iam::123456789012:role/x"));
    assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/a/b/name.1"));
    assert!(!is_role_arn("arn:aws:iam::12345:role/x"));
    assert!(!is_role_arn("arn:aws:iam::123456789012:user/x"));
    assert!(is_function_name("hello-egress_2") && !is_function_name(&"a".repeat(65)));
    assert!(is_variable_name("AB") && !is_variable_name("A") && !is_variable_name("A-B"));
}
