//! Running as a service: logging, systemd notification and the watchdog rule, the supervisor, commands.

pub mod commands;
pub mod logging;
pub mod malloc;
pub mod monthly_report;
pub mod notify;
pub mod observer;
pub mod supervisor;
pub mod watchdog;
