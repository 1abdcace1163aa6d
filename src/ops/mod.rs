//! Running as a service: logging, systemd notification, the supervisor.

pub mod analyse;
pub mod commands;
pub mod hotlists;
pub mod logging;
pub mod malloc;
pub mod notify;
pub mod observer;
pub mod reads;
pub mod supervisor;
