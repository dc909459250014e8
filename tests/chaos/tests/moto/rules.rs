//! Dependency rules and Hyperplane ENIs.
