//! The uplink to the central server: MQTT over TLS (rumqttc + rustls/ring), a durable outbox in the
//! store, versioned JSON payloads.

pub mod brokers;
pub mod delivery;
pub mod payload;
pub mod schemas;
pub mod session;
pub mod tls;
pub mod topics;

pub use session::{CommandHandler, Refusal, Settings, Stats, StatusSource, Uplink, check_command};

// `Settings::from_config` (from `[mqtt]` and `[site]`) is in `config::assemble`: config assembles, the
// uplink does not read the schema.
pub use topics::Topics;

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("mqtt is not enabled in the configuration")]
    Disabled,
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot read mqtt.password_file {path}: {source}")]
    PasswordFile { path: String, source: std::io::Error },
    #[error("mqtt.command_public_key: {0}")]
    CommandKey(String),
}
