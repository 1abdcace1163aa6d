//! The TOML schema of the whole product as far as it is known today.
//!
//! Every struct denies unknown keys so a typo is an error, never a silently ignored setting.
//! No `#[serde(flatten)]` here: it disables `deny_unknown_fields`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The longest text any key takes (bytes): URLs, paths, notes. A config is read by the daemon and
/// shown in status, logs and the printed policy; nothing in it needs more.
pub const MAX_STRING_BYTES: usize = 4096;

/// The longest value accepted for a string key, by its path with array positions left out
/// (`cameras[].name`). Ids go into MQTT topics, log fields and file names, names into status lines.
pub fn max_string_bytes(key: &str) -> usize {
    match key {
        "site.site_id" | "site.device_id" | "cameras[].id" | "mqtt.client_id" | "recognizer.formats[].region" => 64,
        "cameras[].name" | "site.organisation" | "mqtt.topic_prefix" | "mqtt.username" | "access.custodian"
        | "access.designee" => 256,
        "mqtt.host" | "mqtt.hosts[]" | "api.listen" => 255,
        "mqtt.command_public_key" => 128,
        _ => MAX_STRING_BYTES,
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: Site,
    #[serde(default)]
    pub cameras: Vec<Camera>,
    #[serde(default)]
    pub recognizer: Recognizer,
    #[serde(default)]
    pub store: Store,
    #[serde(default)]
    pub hotlists: Hotlists,
    #[serde(default)]
    pub mqtt: Mqtt,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub access: Access,
    /// The tracker's own settings type, deserialised here as it is (one list of fields).
    #[serde(default)]
    pub tracker: crate::track::TrackerConfig,
    #[serde(default)]
    pub logging: Logging,
    #[serde(default)]
    pub service: Service,
    #[serde(default)]
    pub metrics: super::observe::Metrics,
    #[serde(default)]
    pub telemetry: super::observe::Telemetry,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Short id of the site (a pole, a junction); part of MQTT topics.
    pub site_id: String,
    /// Id of this box at the site; part of MQTT topics.
    pub device_id: String,
    /// Agency that owns the data (custodian), shown in policy and exports.
    #[serde(default)]
    pub organisation: String,
}

// The [[cameras]] table is ingest's settings type, the [recognizer] table the recognizer's.
pub use crate::ingest::settings::{Camera, Transport};
pub use crate::recognize::settings::{
    ColorOrder, DetectorKind, DetectorModel, DetectorOutput, DnnBackend, ModelSet, OcrKind, OcrModel, PlateFormat,
    Recognizer, ResizeMode, TensorLayout,
};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// The store's page cache (redb); its own default (1 GiB) is far too much for a 4 GB board.
    #[serde(default = "default_cache_mb")]
    pub cache_capacity_mb: u64,
    /// Most reads made durable by one flush (group commit: reads queued while a flush runs share the next).
    #[serde(default = "default_commit_batch")]
    pub commit_batch: usize,
    #[serde(default)]
    pub store_full_frames: bool,
    #[serde(default = "default_high_watermark")]
    pub disk_high_watermark_pct: u8,
    #[serde(default = "default_full_watermark")]
    pub disk_full_watermark_pct: u8,
    /// Middle step: full frames are no longer kept at this disk use (default: halfway between the
    /// high and the full watermark).
    #[serde(default)]
    pub disk_frames_watermark_pct: Option<u8>,
    /// Free space (MiB) kept for read metadata, the audit log and the database's own bookkeeping; below it new reads are refused.
    #[serde(default = "default_reserve_mb")]
    pub disk_reserve_mb: u64,
    /// Encrypt reads, crops, frames and the plate index with AES-256-GCM (needs the key: the systemd
    /// credential `store.key` or `key_file`; the daemon refuses to start without it).
    #[serde(default)]
    pub encryption: bool,
    /// AES-256-GCM key for data at rest (mode 0600, outside the store).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub retention: Retention,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            path: default_store_path(),
            cache_capacity_mb: default_cache_mb(),
            commit_batch: default_commit_batch(),
            store_full_frames: false,
            disk_high_watermark_pct: default_high_watermark(),
            disk_full_watermark_pct: default_full_watermark(),
            disk_frames_watermark_pct: None,
            disk_reserve_mb: default_reserve_mb(),
            encryption: false,
            key_file: None,
            retention: Retention::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Reads younger than this are never purged (policy: at least one year).
    #[serde(default = "default_min_days")]
    pub min_days: u32,
    /// Reads older than this are purged unless held as evidence.
    #[serde(default = "default_max_days")]
    pub max_days: u32,
    #[serde(default = "default_sweep_interval_s")]
    pub sweep_interval_s: u64,
    /// Reads deleted per batch; small so a sweep never stalls ingest.
    #[serde(default = "default_purge_batch")]
    pub batch_size: usize,
    #[serde(default = "default_pause_ms")]
    pub batch_pause_ms: u64,
    /// The wall clock is distrusted when it is this far ahead of trusted time (the last time trusted,
    /// kept in the store, plus the time the daemon has run since); smaller steps forward are followed.
    #[serde(default = "default_max_clock_lead_days")]
    pub max_clock_lead_days: u32,
    /// A wall clock behind trusted time by more than this is reported; purging then goes by the wall
    /// clock (the earlier of the two), which only ever keeps reads longer.
    #[serde(default = "default_max_clock_lag_s")]
    pub max_clock_lag_s: u64,
    /// Refuse to purge while the kernel reports the clock unsynchronised (NTP/PTP).
    #[serde(default = "yes")]
    pub require_clock_sync: bool,
    /// A sweep that would delete more than this percentage of the stored reads at once waits for an
    /// operator's confirmation (command `confirm_purge`) or a day. 100 turns the guard off.
    #[serde(default = "default_max_purge_percent")]
    pub max_purge_percent: u32,
    /// Purges of at most this many reads are never held up by `max_purge_percent`.
    #[serde(default = "default_large_purge_min_reads")]
    pub large_purge_min_reads: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            min_days: default_min_days(),
            max_days: default_max_days(),
            sweep_interval_s: default_sweep_interval_s(),
            batch_size: default_purge_batch(),
            batch_pause_ms: default_pause_ms(),
            max_clock_lead_days: default_max_clock_lead_days(),
            max_clock_lag_s: default_max_clock_lag_s(),
            require_clock_sync: true,
            max_purge_percent: default_max_purge_percent(),
            large_purge_min_reads: default_large_purge_min_reads(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hotlists {
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Days of stored reads checked when an entry is added.
    #[serde(default = "default_retro_days")]
    pub retroactive_days: u32,
    #[serde(default = "yes")]
    pub alert_on_first_confident_read: bool,
    /// At most this many retroactive alerts per pushed list; the rest are counted in one summary
    /// message (`…/alerts/summary`), so a list entry like `7*` cannot flood the server.
    #[serde(default = "default_max_retroactive_alerts")]
    pub max_retroactive_alerts: u32,
}

impl Default for Hotlists {
    fn default() -> Self {
        Hotlists {
            files: Vec::new(),
            retroactive_days: default_retro_days(),
            alert_on_first_confident_read: true,
            max_retroactive_alerts: default_max_retroactive_alerts(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mqtt {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// Brokers tried in order (`host`, `host:port`, `[v6addr]:port`; the port defaults to `port`), in
    /// place of `host`: the nodes of a cluster or a pair. See docs/fleet.md.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Lab use only: no TLS. Logged loudly at start.
    #[serde(default)]
    pub insecure_plaintext: bool,
    #[serde(default = "default_keepalive_s")]
    pub keepalive_s: u16,
    #[serde(default = "default_reads_batch_max")]
    pub reads_batch_max: usize,
    #[serde(default = "default_reads_batch_age_ms")]
    pub reads_batch_max_age_ms: u64,
    #[serde(default = "default_max_packet_kib")]
    pub max_packet_kib: u32,
    /// Reads waiting for upload beyond which the oldest leave the upload queue (they stay stored).
    /// A warning goes out at 90%.
    #[serde(default = "default_max_queued_reads")]
    pub max_queued_reads: u64,
    /// Inbound commands larger than this are refused and answered with an error (the session stays up).
    #[serde(default = "default_max_command_kib")]
    pub max_command_kib: u32,
    /// The largest packet read from the broker at all. MQTT 3.1.1 cannot skip a packet, so a bigger one
    /// ends the connection; keep it well above max_command_kib (the broker's message_size_limit below it).
    #[serde(default = "default_max_inbound_kib")]
    pub max_inbound_kib: u32,
    /// Reconnect backoff starts over only after a connection stayed up this long.
    #[serde(default = "default_healthy_after_s")]
    pub healthy_after_s: u32,
    /// ed25519 public key (64 hex digits) of the central server. When set, every command must carry a
    /// valid signature (`sig`) by it; unsigned commands are refused.
    #[serde(default)]
    pub command_public_key: Option<String>,
    /// The previous month's compliance report goes to `<prefix>/<site>/<device>/report` on this day of the
    /// month (1–28, the box's time zone; 0: never) at `compliance_report_hour` (0–23).
    #[serde(default = "default_report_day")]
    pub compliance_report_day: u8,
    #[serde(default = "default_report_hour")]
    pub compliance_report_hour: u8,
}

fn default_report_day() -> u8 {
    1
}
fn default_report_hour() -> u8 {
    3
}

impl Default for Mqtt {
    fn default() -> Self {
        Mqtt {
            enabled: false,
            host: String::new(),
            port: default_mqtt_port(),
            hosts: Vec::new(),
            client_id: None,
            topic_prefix: default_topic_prefix(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            username: None,
            password: None,
            password_file: None,
            insecure_plaintext: false,
            keepalive_s: default_keepalive_s(),
            reads_batch_max: default_reads_batch_max(),
            reads_batch_max_age_ms: default_reads_batch_age_ms(),
            max_packet_kib: default_max_packet_kib(),
            max_queued_reads: default_max_queued_reads(),
            max_command_kib: default_max_command_kib(),
            max_inbound_kib: default_max_inbound_kib(),
            healthy_after_s: default_healthy_after_s(),
            command_public_key: None,
            compliance_report_day: default_report_day(),
            compliance_report_hour: default_report_hour(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default = "default_idle_minutes")]
    pub session_idle_minutes: u32,
    #[serde(default = "default_absolute_hours")]
    pub session_absolute_hours: u32,
    /// Purposes a user may give for a search (policy: searches need a purpose and case number).
    #[serde(default = "default_purposes")]
    pub search_purposes: Vec<String>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            enabled: false,
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            session_idle_minutes: default_idle_minutes(),
            session_absolute_hours: default_absolute_hours(),
            search_purposes: default_purposes(),
        }
    }
}

/// Access control, audit and release (the department's policy).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// HMAC key of the audit chain: kept outside the store so a copy of the store cannot be re-chained.
    /// Created (0600) when missing and the audit log is empty; a missing key with a non-empty log stops
    /// the start.
    #[serde(default = "default_audit_key")]
    pub audit_key_file: PathBuf,
    /// ed25519 key that signs export bundles; created (0600) when missing.
    #[serde(default = "default_device_key")]
    pub device_key_file: PathBuf,
    /// Training courses a user must hold, current, to log in or act.
    #[serde(default = "default_courses")]
    pub required_courses: Vec<String>,
    #[serde(default = "default_lockout_failures")]
    pub lockout_failures: u32,
    #[serde(default = "default_lockout_window")]
    pub lockout_window_minutes: u32,
    /// Accounts unused this long are disabled.
    #[serde(default = "default_unused_days")]
    pub unused_account_days: u32,
    /// Jurisdictions (e.g. state codes) of agencies data may be released to.
    #[serde(default = "default_jurisdictions")]
    pub allowed_jurisdictions: Vec<String>,
    /// Longest time range a release request with a wildcard plate may cover (exact plates: any).
    #[serde(default = "default_max_release_days")]
    pub max_release_days: u32,
    /// Custodian of records and the designee overseeing the ALPR operation (policy 471.3.1).
    #[serde(default)]
    pub custodian: String,
    #[serde(default)]
    pub designee: String,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            audit_key_file: default_audit_key(),
            device_key_file: default_device_key(),
            required_courses: default_courses(),
            lockout_failures: default_lockout_failures(),
            lockout_window_minutes: default_lockout_window(),
            unused_account_days: default_unused_days(),
            allowed_jurisdictions: default_jurisdictions(),
            max_release_days: default_max_release_days(),
            custodian: String::new(),
            designee: String::new(),
        }
    }
}

fn default_audit_key() -> PathBuf {
    PathBuf::from("/etc/polewatch/audit.key")
}
fn default_device_key() -> PathBuf {
    PathBuf::from("/etc/polewatch/device.key")
}
fn default_courses() -> Vec<String> {
    vec!["ALPR operator".to_string()]
}
fn default_lockout_failures() -> u32 {
    5
}
fn default_lockout_window() -> u32 {
    15
}
fn default_unused_days() -> u32 {
    90
}
fn default_max_release_days() -> u32 {
    90
}
fn default_jurisdictions() -> Vec<String> {
    vec!["CA".to_string()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    /// Debug is the only level at which plate text is logged.
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// The journal when started by systemd, else stderr.
    #[default]
    Auto,
    Journal,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default)]
    pub level: LogLevel,
    #[serde(default)]
    pub target: LogTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// How often the supervisor writes a one-line status summary to the log (0: never).
    #[serde(default = "default_status_log_s")]
    pub status_log_interval_s: u64,
    /// Seconds a component may take to stop on SIGTERM before it is abandoned.
    #[serde(default = "default_stop_timeout_s")]
    pub stop_timeout_s: u64,
}

impl Default for Service {
    fn default() -> Self {
        Service { status_log_interval_s: default_status_log_s(), stop_timeout_s: default_stop_timeout_s() }
    }
}

fn yes() -> bool {
    true
}
fn default_store_path() -> PathBuf {
    PathBuf::from("/var/lib/polewatch/store")
}
fn default_cache_mb() -> u64 {
    64
}
fn default_commit_batch() -> usize {
    256
}
fn default_high_watermark() -> u8 {
    85
}
fn default_reserve_mb() -> u64 {
    64
}
impl Store {
    /// The middle watermark, given or halfway between the high and the full one.
    pub fn frames_watermark_pct(&self) -> u8 {
        self.disk_frames_watermark_pct
            .unwrap_or(((self.disk_high_watermark_pct as u16 + self.disk_full_watermark_pct as u16) / 2) as u8)
    }
}
fn default_full_watermark() -> u8 {
    95
}
pub(crate) fn default_min_days() -> u32 {
    365
}
fn default_max_days() -> u32 {
    365
}
fn default_sweep_interval_s() -> u64 {
    3600
}
fn default_purge_batch() -> usize {
    500
}
fn default_pause_ms() -> u64 {
    50
}
fn default_max_clock_lead_days() -> u32 {
    30
}
fn default_max_command_kib() -> u32 {
    1024
}

fn default_max_inbound_kib() -> u32 {
    16 * 1024
}

fn default_healthy_after_s() -> u32 {
    30
}

fn default_max_retroactive_alerts() -> u32 {
    25
}

fn default_max_purge_percent() -> u32 {
    10
}

fn default_large_purge_min_reads() -> u64 {
    1000
}

fn default_max_clock_lag_s() -> u64 {
    300
}
fn default_retro_days() -> u32 {
    14
}
fn default_mqtt_port() -> u16 {
    8883
}
fn default_topic_prefix() -> String {
    "polewatch".to_string()
}
fn default_keepalive_s() -> u16 {
    30
}
fn default_reads_batch_max() -> usize {
    100
}
fn default_reads_batch_age_ms() -> u64 {
    2000
}
fn default_max_packet_kib() -> u32 {
    1024
}
fn default_max_queued_reads() -> u64 {
    2_000_000
}
fn default_listen() -> String {
    "127.0.0.1:8443".to_string()
}
fn default_idle_minutes() -> u32 {
    30
}
fn default_absolute_hours() -> u32 {
    12
}
fn default_purposes() -> Vec<String> {
    ["criminal investigation", "missing person", "stolen vehicle", "amber alert", "audit"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_status_log_s() -> u64 {
    300
}
fn default_stop_timeout_s() -> u64 {
    10
}
