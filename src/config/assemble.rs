//! How the configuration's tables become the components' settings. Components know their own settings
//! types and nothing of the TOML schema; `config` assembles them here (dependencies run one way:
//! config -> components).

use super::schema::{Access, Api, Retention, Store};
use crate::access::users::AccessPolicy;
use crate::retention::{Policy, DAY_MS};
use crate::store::{crypt, disk, OnCorrupt, Result, StoreOptions};

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

