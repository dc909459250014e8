//! Real timing.
