//! How the configuration's tables become the components' settings (retention, store, access, a camera's
//! recognizer view, the MQTT uplink). Components know their own settings
//! types and nothing of the TOML schema; `config` assembles them here (dependencies run one way:
//! config -> components).

use super::schema::{Access, Api, Camera, Config, Retention, Store};
use crate::access::users::AccessPolicy;
use crate::recognize::View;
use crate::retention::{DAY_MS, Policy};
use crate::store::{OnCorrupt, Result, StoreOptions, crypt, disk};
use crate::uplink::{Topics, UplinkError, tls};
use std::time::Duration;

const MINUTE_MS: i64 = 60_000;

impl From<&Retention> for Policy {
    fn from(c: &Retention) -> Policy {
        Policy {
            min_days: c.min_days,
            max_days: c.max_days,
            max_clock_lead_ms: c.max_clock_lead_days as i64 * DAY_MS,
            max_clock_lag_ms: c.max_clock_lag_s as i64 * 1000,
            require_clock_sync: c.require_clock_sync,
            max_purge_percent: c.max_purge_percent,
            large_purge_min_reads: c.large_purge_min_reads,
        }
    }
}

impl StoreOptions {
    /// Options from the configuration with the encryption key loaded (the systemd credential or
    /// `key_file`): fails when encryption is on and the key is missing, unreadable or exposed.
    pub fn for_config(c: &Store) -> Result<StoreOptions> {
        let mut o = StoreOptions::from_config(c);
        o.keys = crypt::Key::from_config(c)?.map(|k| std::sync::Arc::new(crypt::Keyring::single(k)));
        Ok(o)
    }

    /// Options from the configuration without the key (`for_config` loads it).
    pub fn from_config(c: &Store) -> StoreOptions {
        StoreOptions {
            keys: None,
            rotating: false,
            disk: Some((disk::Watermarks::from_config(c), std::sync::Arc::new(disk::Statvfs))),
            path: c.path.clone(),
            cache_capacity_bytes: c.cache_capacity_mb * 1024 * 1024,
            commit_batch: c.commit_batch,
            queue_for_upload: false,
            on_corrupt: OnCorrupt::Refuse,
            create: true,
        }
    }
}

impl disk::Watermarks {
    pub fn from_config(c: &Store) -> disk::Watermarks {
        disk::Watermarks {
            warn_pct: c.disk_high_watermark_pct as f64,
            frames_pct: c.frames_watermark_pct() as f64,
            crops_pct: c.disk_full_watermark_pct as f64,
            reserve_bytes: c.disk_reserve_mb * 1024 * 1024,
        }
    }
}

impl crypt::Key {
    /// The key `[store]` asks for: see [`crypt::Key::configured`].
    pub fn from_config(c: &Store) -> std::result::Result<Option<crypt::Key>, crypt::KeyError> {
        crypt::Key::configured(c.encryption, c.key_file.as_deref())
    }
}

impl AccessPolicy {
    pub fn from_config(access: &Access, api: &Api) -> AccessPolicy {
        AccessPolicy {
            required_courses: access.required_courses.clone(),
            // 0 would lock on the first attempt of all; validation keeps it in 1..=5.
            lockout_failures: access.lockout_failures.max(1),
            lockout_window_ms: i64::from(access.lockout_window_minutes) * MINUTE_MS,
            unused_account_ms: i64::from(access.unused_account_days) * DAY_MS,
            session_idle_ms: i64::from(api.session_idle_minutes) * MINUTE_MS,
            session_absolute_ms: i64::from(api.session_absolute_hours) * 60 * MINUTE_MS,
        }
    }
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy::from_config(&Access::default(), &Api::default())
    }
}

impl View {
    pub fn from_camera(c: &Camera) -> View {
        View {
            roi: c.roi.clone(),
            min_plate_width_px: c.min_plate_width_px,
            max_plate_width_px: c.max_plate_width_px,
            region: c.region.clone(),
            rotate_deg: c.rotate_deg,
        }
    }
}

impl crate::uplink::Settings {
    pub fn from_config(c: &Config) -> std::result::Result<crate::uplink::Settings, UplinkError> {
        let m = &c.mqtt;
        if !m.enabled {
            return Err(UplinkError::Disabled);
        }
        let tls = if m.insecure_plaintext {
            log::warn!(
                "MQTT WITHOUT TLS (mqtt.insecure_plaintext = true): reads and alerts cross the network in clear text; lab use only"
            );
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
        Ok(crate::uplink::Settings {
            brokers: crate::config::mqtt_brokers(m),
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
            command_key: m
                .command_public_key
                .as_deref()
                .map(super::parse_command_key)
                .transpose()
                .map_err(|e| UplinkError::CommandKey(e.to_string()))?,
        })
    }
}

/// The analysis thread's settings (`pipeline::analyse`): the cameras' views, `[recognizer]`, `[hotlists]`,
/// `[tracker]` and which cameras keep full frames.
impl crate::pipeline::analyse::Settings {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            views: cfg.cameras.iter().map(|c| (c.id.clone(), View::from_camera(c))).collect(),
            min_read_confidence: cfg.recognizer.min_read_confidence as f32,
            early_alerts: cfg.hotlists.alert_on_first_confident_read,
            tracker: cfg.tracker.clone(),
            crop_quality: 90,
            full_frames: cfg
                .cameras
                .iter()
                .filter(|c| c.store_full_frames.unwrap_or(cfg.store.store_full_frames))
                .map(|c| c.id.clone())
                .collect(),
        }
    }
}
