//! The domain of fixedip, with no AWS SDK in it: the requirements a function declares and their
//! validation, the record the macro embeds in a binary and the reader for it, the pure planner
//! (requirements + observed state → plan), the cost model, the egress rules `verify` checks, and
//! which AWS operation a request is.
//!
//! What the macro compiles into every user build (the requirements and the record) is the crate
//! `fixedip-requirements`, re-exported here as [`requirements`] and [`record`]; this crate is for the
//! CLI and the tests, and has no features: `cargo test -p fixedip-core` tests all of it.

pub use fixedip_requirements::{record, requirements};

pub mod artifact;
pub mod cost;
pub mod existing;
pub mod nat_boot;
pub mod network;
pub mod observed;
pub mod operation;
pub mod plan;
pub mod planner;
pub mod reader;
pub mod settings;
pub mod stacks;
pub mod tags;
pub mod tokens;
pub mod verify;
