//! Drawing a stack's network: one [`graph::NetworkGraph`] built from its plan, shown as a tree
//! ([`tree::tree`]) or a diagram ([`diagram`]: Mermaid, Graphviz dot), and serialized as it is in
//! `plan --json`.

pub mod diagram;
pub mod graph;
pub mod tree;

#[cfg(test)]
pub(crate) mod tests;
