//! `cargo fixedip`: the CLI, building and packaging the function, observing the account by tags,
//! executing a plan with the AWS SDK, rendering results. `main.rs` only calls [`run`]-like entry
//! points; the modules are a library so that the end-to-end tests can reach them too.

pub mod aws;
