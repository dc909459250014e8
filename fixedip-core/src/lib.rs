//! The domain of fixedip, with no AWS SDK in it: the requirements a function declares and their
//! validation, the record the macro embeds in a binary and the reader for it, the pure planner
//! (requirements + observed state → plan), and the cost model.
//!
//! `fixedip-macros` compiles this crate into every build of an annotated function, so it stays
//! light: the default features hold only validation and the record encoder.

#[cfg(feature = "reader")]
pub mod artifact;
pub mod cost;
pub mod observed;
pub mod plan;
pub mod planner;
#[cfg(feature = "reader")]
pub mod reader;
pub mod record;
pub mod requirements;
pub mod settings;
pub mod tags;
pub mod verify;
