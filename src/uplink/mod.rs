//! The uplink to the central server: MQTT over TLS (rumqttc + rustls/ring), a durable outbox in the
//! store, versioned JSON payloads.

pub mod payload;
pub mod session;
pub mod tls;
pub mod topics;

pub use session::{check_command, CommandHandler, Refusal, Settings, Stats, Uplink};
pub use topics::Topics;

use crate::config::Config;
use std::time::Duration;

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

impl Settings {
    pub fn from_config(c: &Config) -> Result<Settings, UplinkError> {
        let m = &c.mqtt;
        if !m.enabled {
            return Err(UplinkError::Disabled);
        }
        let tls = if m.insecure_plaintext {
            log::warn!("MQTT WITHOUT TLS (mqtt.insecure_plaintext = true): reads and alerts cross the network in clear text; lab use only");
            None
        } else {
            let ca = m.ca_file.as_deref().ok_or(tls::TlsError::NoCertificate { path: "mqtt.ca_file".into() })?;
            let client = m.client_cert.as_deref().zip(m.client_key.as_deref());
            Some(tls::client_config(ca, client)?)
        };
        let password = match (&m.password, &m.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|source| UplinkError::PasswordFile { path: f.display().to_string(), source })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            (None, None) => None,
        };
        Ok(Settings {
            host: m.host.clone(),
            port: m.port,
            client_id: m.client_id.clone().unwrap_or_else(|| format!("{}-{}", c.site.site_id, c.site.device_id)),
            keepalive: Duration::from_secs(m.keepalive_s as u64),
            tls,
            username: m.username.clone(),
            password,
            topics: Topics::new(&m.topic_prefix, &c.site.site_id, &c.site.device_id),
            site: c.site.site_id.clone(),
            device: c.site.device_id.clone(),
            reads_batch_max: m.reads_batch_max,
            reads_batch_max_age: Duration::from_millis(m.reads_batch_max_age_ms),
            max_packet_bytes: m.max_packet_kib as usize * 1024,
            max_inflight: 16,
            health_interval: Duration::from_secs(60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_command_bytes: m.max_command_kib as usize * 1024,
            max_inbound_bytes: m.max_inbound_kib as usize * 1024,
            healthy_after: Duration::from_secs(m.healthy_after_s as u64),
            command_key: m.command_public_key.as_deref().map(crate::config::parse_command_key).transpose().map_err(|e| UplinkError::CommandKey(e.to_string()))?,
        })
    }
}
