//! The chaos proxy against a real moto server, through the real AWS SDK.
//!
//! Needs moto: `bash scripts/emulator.sh install` (or `FIXEDIP_MOTO_VENV`). Each test starts its own
//! moto server and proxy.

mod support;

mod cli;
mod faults;
mod nat_boot;
mod nat_group;
mod rules;
mod timing;
