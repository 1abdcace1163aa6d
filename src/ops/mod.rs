//! Running as a service: logging, systemd notification, the supervisor.

pub mod commands;
pub mod logging;
pub mod notify;
pub mod supervisor;
