//! What `#[fixed_egress]` declares, and nothing more: the requirements and their validation
//! (`requirements`), and the record the macro embeds in a binary (`record`).
//!
//! `fixedip-macros` compiles this crate into every build of an annotated function, so it holds only
//! what the macro needs and depends on `strsim` alone. The validation rules live here once: the macro
//! and the CLI (through `fixedip-core`, which re-exports both modules) can never disagree about what
//! is valid.

pub mod record;
pub mod requirements;
