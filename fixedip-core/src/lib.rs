//! The domain of fixedip, with no AWS SDK in it: the requirements a function declares and their
//! validation, the record the macro embeds in a binary and the reader for it, the pure planner
//! (requirements + observed state → plan), and the cost model.
//!
//! `fixedip-macros` compiles this crate into every build of an annotated function, so it stays
//! light: the default features hold only validation and the record encoder. The feature
//! `planner` adds what the CLI needs (settings, observed state, planner, cost, tags, egress rules),
//! `reader` reads records back from binaries and zips, `serde` derives (de)serialization.

pub mod record;
pub mod requirements;

#[cfg(all(feature = "reader", feature = "planner"))]
pub mod artifact;
#[cfg(feature = "reader")]
pub mod reader;

#[cfg(feature = "planner")]
pub mod cost;
#[cfg(feature = "planner")]
pub mod existing;
#[cfg(feature = "planner")]
pub mod observed;
#[cfg(feature = "planner")]
pub mod plan;
#[cfg(feature = "planner")]
pub mod planner;
#[cfg(feature = "planner")]
pub mod settings;
#[cfg(feature = "planner")]
pub mod tags;
#[cfg(feature = "planner")]
pub mod verify;
