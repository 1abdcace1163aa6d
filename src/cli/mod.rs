//! Subcommands that work offline on the store (the daemon must not be running: the store allows one process),
//! and [`online`], the client of the running daemon's API (`audit verify --online`, `audit report`).

pub mod audit;
pub mod export;
pub mod online;
pub mod store;
pub mod user;
