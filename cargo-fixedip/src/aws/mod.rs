//! The AWS side: one SDK configuration, observing a stack by its tags, executing a plan.
