//! The commands stay thin: they pick stacks, call the shared workflow (converge.rs,
//! verification.rs) and the AWS side (src/aws/), and print a report (src/report/). Two rules keep
//! them so, checked on the source: no command calls the AWS SDK itself, and no command imports
//! another (what two share lives outside `commands/`).

use std::path::PathBuf;

fn command_sources() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut sources: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    sources.sort();
    assert!(sources.len() >= 10, "{dir:?}");
    sources
}

#[test]
fn no_command_calls_the_aws_sdk() {
    for (name, source) in command_sources() {
        assert!(
            !source.contains("aws_sdk_"),
            "commands/{name}.rs uses the SDK: move the call into a file of src/aws/"
        );
    }
}

#[test]
fn no_command_imports_another() {
    let sources = command_sources();
    let commands: Vec<&str> = sources
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| *name != "mod")
        .collect();
    for (name, source) in &sources {
        for other in commands.iter().filter(|other| *other != name) {
            for import in [format!("super::{other}"), format!("commands::{other}")] {
                assert!(
                    !source.contains(&import),
                    "commands/{name}.rs imports {import}: share it from a module outside commands/"
                );
            }
        }
    }
}
