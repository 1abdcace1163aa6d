//! Subcommands that work offline on the store (the daemon must not be running: sled allows one process).

pub mod audit;
pub mod user;
pub mod store;
