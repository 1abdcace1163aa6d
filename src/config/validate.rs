//! Checks serde cannot make: ranges, cross-field rules and required-when-enabled settings.
//! Returns (key path, message) pairs; the caller adds file and line.

use super::schema::*;
use std::collections::HashSet;

type Issues = Vec<(String, String)>;

fn push(out: &mut Issues, key: impl Into<String>, msg: impl Into<String>) {
    out.push((key.into(), msg.into()));
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(out: &mut Issues, key: &str, v: T, lo: T, hi: T) {
    if v < lo || v > hi {
        push(out, key, format!("{v} is out of range {lo}..={hi}"));
    }
}

/// Why `mqtt.command_public_key` is refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandKeyError {
    #[error("must be an ed25519 public key as 64 hex digits")]
    NotHex64,
    #[error("not a valid ed25519 public key: {0}")]
    NotAKey(ed25519_dalek::SignatureError),
}

/// The central server's ed25519 public key for signed commands: 64 hex digits.
pub fn parse_command_key(s: &str) -> Result<ed25519_dalek::VerifyingKey, CommandKeyError> {
    let t = s.trim();
    let mut b = [0u8; 32];
    if t.len() != 64 || hex::decode_to_slice(t, &mut b).is_err() {
        return Err(CommandKeyError::NotHex64);
    }
    ed25519_dalek::VerifyingKey::from_bytes(&b).map_err(CommandKeyError::NotAKey)
}

/// Why an entry of `mqtt.hosts` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerAddrError {
    #[error("`{0}` is not a port (1-65535)")]
    Port(String),
    #[error("an IPv6 address opened with [ must close with ]")]
    Unclosed,
    #[error("after ] comes :port or nothing")]
    AfterBracket,
    #[error("an IPv6 address goes in brackets: [addr]:port")]
    BareIpv6,
    #[error("must be a host name or address, with an optional :port")]
    Host,
}

/// One entry of `mqtt.hosts`: `host`, `host:port`, `[v6addr]` or `[v6addr]:port`; the port defaults to
/// `default_port`.
pub fn parse_broker(s: &str, default_port: u16) -> Result<(String, u16), BrokerAddrError> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(BrokerAddrError::Port(p.chars().take(16).collect())),
        Ok(n) => Ok(n),
    };
    let (host, p) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or(BrokerAddrError::Unclosed)?;
        match after {
            "" => (addr, default_port),
            a => (addr, port(a.strip_prefix(':').ok_or(BrokerAddrError::AfterBracket)?)?),
        }
    } else {
        match s.split_once(':') {
            None => (s, default_port),
            Some((h, p)) if !p.contains(':') => (h, port(p)?),
            Some(_) => return Err(BrokerAddrError::BareIpv6),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(BrokerAddrError::Host);
    }
    Ok((host.to_string(), p))
}

/// The brokers the uplink tries, in order: `mqtt.hosts`, or `mqtt.host` as a list of one. Entries that
/// do not parse are left out here ([`validate`] reports them with their line).
pub fn mqtt_brokers(m: &Mqtt) -> Vec<(String, u16)> {
    if m.hosts.is_empty() {
        return if m.host.is_empty() { Vec::new() } else { vec![(m.host.clone(), m.port)] };
    }
    m.hosts.iter().filter_map(|h| parse_broker(h, m.port).ok()).collect()
}

/// Ids that end up in MQTT topics and file names.
fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub fn validate(c: &Config) -> Issues {
    let mut out = Issues::new();
    site(&mut out, &c.site);
    cameras(&mut out, &c.cameras);
    recognizer(&mut out, &c.recognizer);
    store(&mut out, &c.store);
    mqtt(&mut out, &c.mqtt);
    api(&mut out, &c.api);
    access(&mut out, &c.access);
    tracker(&mut out, &c.tracker);
    range(&mut out, "hotlists.retroactive_days", c.hotlists.retroactive_days, 0, 3650);
    range(&mut out, "service.stop_timeout_s", c.service.stop_timeout_s, 1, 300);
    out
}

fn site(out: &mut Issues, s: &Site) {
    for (k, v) in [("site.site_id", &s.site_id), ("site.device_id", &s.device_id)] {
        if !id_ok(v) {
            push(out, k, "must be 1-64 characters of A-Z a-z 0-9 - _ . (it is part of MQTT topics)");
        }
    }
}

fn cameras(out: &mut Issues, cams: &[Camera]) {
    let mut seen = HashSet::new();
    for (i, c) in cams.iter().enumerate() {
        let k = |f: &str| format!("cameras[{i}].{f}");
        if !id_ok(&c.id) {
            push(out, k("id"), "must be 1-64 characters of A-Z a-z 0-9 - _ .");
        } else if !seen.insert(c.id.as_str()) {
            push(out, k("id"), format!("duplicate camera id `{}`", c.id));
        }
        let scheme = c.url.split("://").next().unwrap_or("");
        let relative_file = c.url.starts_with("file:") && !c.url.starts_with("file://") && c.url.len() > 5;
        if !relative_file && (!c.url.contains("://") || !matches!(scheme, "rtsp" | "rtsps" | "file" | "http" | "https"))
        {
            push(
                out,
                k("url"),
                "must start with rtsp://, rtsps://, http(s):// or file:// (or be file:PATH relative to the working directory)",
            );
        }
        if c.url.contains('@') && scheme.starts_with("rtsp") {
            push(out, k("url"), "put credentials in username/password or credentials_file, not in the URL");
        }
        if let Some(l) = c.latency_ms {
            range(out, &k("latency_ms"), l, 0, 10_000);
        }
        if !(c.analysis_fps > 0.0 && c.analysis_fps <= 60.0) {
            push(out, k("analysis_fps"), format!("{} is out of range (0, 60]", c.analysis_fps));
        }
        range(out, &k("min_plate_width_px"), c.min_plate_width_px, 8, 4000);
        range(out, &k("max_plate_width_px"), c.max_plate_width_px, 8, 8000);
        if c.min_plate_width_px >= c.max_plate_width_px {
            push(out, k("max_plate_width_px"), "must be larger than min_plate_width_px");
        }
        if !c.roi.is_empty() && c.roi.len() < 3 {
            push(out, k("roi"), "a region of interest needs at least 3 points (or none for the whole frame)");
        } else if let Some((i, j)) = crate::recognize::geometry::crossing(
            &c.roi.iter().map(|[x, y]| [f64::from(*x), f64::from(*y)]).collect::<Vec<_>>(),
        ) {
            push(
                out,
                k("roi"),
                format!("edges {} and {} cross: give the outline once around, without a figure of eight", i + 1, j + 1),
            );
        }
        if let Some([lo, hi]) = c.plate_height_band_px.filter(|[lo, hi]| *lo < 4 || lo >= hi || *hi > 4000) {
            push(
                out,
                k("plate_height_band_px"),
                format!("[{lo}, {hi}]: give [lowest, highest] plate height in pixels, 4 <= lowest < highest <= 4000"),
            );
        }
        if !(-180.0..=180.0).contains(&c.rotate_deg) {
            push(out, k("rotate_deg"), format!("{} is out of range -180..=180", c.rotate_deg));
        }
        if c.credentials_file.is_some() && (c.username.is_some() || c.password.is_some()) {
            push(out, k("credentials_file"), "give either credentials_file or username/password, not both");
        }
        if let Err(e) = crate::ingest::decoder::check_setting(&c.decoder) {
            push(out, k("decoder"), e.to_string());
        }
        if !(c.motion_threshold > 0.0 && c.motion_threshold <= 1.0) {
            push(out, k("motion_threshold"), format!("{} is out of range (0, 1]", c.motion_threshold));
        }
        if c.password.is_some() && c.username.is_none() {
            push(out, k("password"), "a password needs a username");
        }
    }
}

/// The tracker checks its own settings (one rule set for TOML and code); its first complaint names the key.
fn tracker(out: &mut Issues, t: &crate::track::TrackerConfig) {
    if let Err(e) = t.validate() {
        push(out, format!("tracker.{}", e.key()), e.to_string());
    }
}

fn sha256_ok(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn recognizer(out: &mut Issues, r: &Recognizer) {
    if let Some(d) = &r.detector {
        detector_model(out, "recognizer.detector", d);
    }
    if let Some(o) = &r.ocr {
        ocr_model(out, "recognizer.ocr", o);
    }
    range(out, "recognizer.threads", r.threads, 0, 256);
    if !(r.detect_confidence > 0.0 && r.detect_confidence < 1.0) {
        push(out, "recognizer.detect_confidence", format!("{} is out of range (0, 1)", r.detect_confidence));
    }
    if !(0.0..=1.0).contains(&r.min_read_confidence) {
        push(out, "recognizer.min_read_confidence", format!("{} is out of range 0..=1", r.min_read_confidence));
    }
    range(out, "recognizer.top_n", r.top_n, 1, 20);
    range(out, "recognizer.min_plate_chars", r.min_plate_chars, 1, 16);
    range(out, "recognizer.max_plate_chars", r.max_plate_chars, r.min_plate_chars.clamp(1, 16), 16);
    for (i, f) in r.formats.iter().enumerate() {
        if f.region.is_empty() {
            push(out, format!("recognizer.formats[{i}].region"), "must not be empty");
        }
        if f.patterns.is_empty() {
            push(out, format!("recognizer.formats[{i}].patterns"), "needs at least one pattern");
        }
        for (j, p) in f.patterns.iter().enumerate() {
            if p.is_empty()
                || p.len() > 12
                || !p.bytes().all(|b| matches!(b, b'@' | b'#' | b'*') || b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                push(
                    out,
                    format!("recognizer.formats[{i}].patterns[{j}]"),
                    "patterns are 1-12 of @ (letter), # (digit), * (either) or a fixed A-Z/0-9",
                );
            }
        }
    }
}

/// The `[recognizer]` rules alone (for files holding only formats).
pub fn validate_recognizer(r: &Recognizer) -> Issues {
    let mut out = Issues::new();
    recognizer(&mut out, r);
    out
}

/// A model set file (`bench accuracy --against`): the same rules as the `[recognizer]` models.
pub fn model_set(m: &ModelSet) -> Issues {
    let mut out = Issues::new();
    if let Some(d) = &m.detector {
        detector_model(&mut out, "detector", d);
    }
    if let Some(o) = &m.ocr {
        ocr_model(&mut out, "ocr", o);
    }
    out
}

fn detector_model(out: &mut Issues, at: &str, d: &DetectorModel) {
    if !sha256_ok(&d.sha256) {
        push(out, format!("{at}.sha256"), "must be 64 hex digits");
    }
    range(out, &format!("{at}.input_width"), d.input_width, 32, 4096);
    range(out, &format!("{at}.input_height"), d.input_height, 32, 4096);
    if !(d.scale > 0.0 && d.scale <= 1.0) {
        push(out, format!("{at}.scale"), format!("{} is out of range (0, 1]", d.scale));
    }
    if let Some(t) = d.threshold
        && !(t > 0.0 && t < 1.0)
    {
        push(out, format!("{at}.threshold"), format!("{t} is out of range (0, 1)"));
    }
    if !(d.nms_iou > 0.0 && d.nms_iou <= 1.0) {
        push(out, format!("{at}.nms_iou"), format!("{} is out of range (0, 1]", d.nms_iou));
    }
    if !(d.cascade_scale_factor > 1.0 && d.cascade_scale_factor <= 2.0) {
        push(out, format!("{at}.cascade_scale_factor"), format!("{} is out of range (1, 2]", d.cascade_scale_factor));
    }
    range(out, &format!("{at}.cascade_min_neighbors"), d.cascade_min_neighbors, 0, 50);
}

fn ocr_model(out: &mut Issues, at: &str, o: &OcrModel) {
    if !sha256_ok(&o.sha256) {
        push(out, format!("{at}.sha256"), "must be 64 hex digits");
    }
    range(out, &format!("{at}.input_width"), o.input_width, 8, 1024);
    range(out, &format!("{at}.input_height"), o.input_height, 8, 1024);
    if !(o.scale > 0.0 && o.scale <= 1.0) {
        push(out, format!("{at}.scale"), format!("{} is out of range (0, 1]", o.scale));
    }
    for (k, v) in [("margin_x", o.margin_x), ("margin_y", o.margin_y)] {
        if !(0.0..=0.5).contains(&v) {
            push(out, format!("{at}.{k}"), format!("{v} is out of range 0..=0.5"));
        }
    }
    if !(0.0..=1.0).contains(&o.second_look_below) {
        push(out, format!("{at}.second_look_below"), format!("{} is out of range 0..=1", o.second_look_below));
    }
    // Each side drawn in by under a quarter: the box keeps at least half its width and height.
    for (k, v) in [("second_look_inset_x", o.second_look_inset_x), ("second_look_inset_y", o.second_look_inset_y)] {
        if !(0.0..0.25).contains(&v) {
            push(out, format!("{at}.{k}"), format!("{v} is out of range 0..0.25"));
        }
    }
    let mut seen = HashSet::new();
    if o.alphabet.is_empty()
        || !o.alphabet.chars().all(|c| c.is_ascii_graphic())
        || !o.alphabet.chars().all(|c| seen.insert(c))
    {
        push(out, format!("{at}.alphabet"), "must be distinct printable ASCII characters");
    }
    match o.kind {
        OcrKind::Slots => {
            if o.pad_char.chars().count() != 1 || !o.alphabet.contains(o.pad_char.as_str()) {
                push(out, format!("{at}.pad_char"), "must be one character of the alphabet");
            }
        }
        OcrKind::Ctc => {
            if o.blank as usize > o.alphabet.chars().count() {
                push(
                    out,
                    format!("{at}.blank"),
                    format!("{} is beyond the {} classes", o.blank, o.alphabet.chars().count() + 1),
                );
            }
            range(out, &format!("{at}.beam_width"), o.beam_width, 1, 64);
        }
    }
}

fn store(out: &mut Issues, s: &Store) {
    if s.path.as_os_str().is_empty() {
        push(out, "store.path", "must not be empty");
    }
    range(out, "store.cache_capacity_mb", s.cache_capacity_mb, 8, 65_536);
    range(out, "store.commit_batch", s.commit_batch, 1, 100_000);
    range(out, "store.disk_high_watermark_pct", s.disk_high_watermark_pct, 50, 99);
    range(out, "store.disk_full_watermark_pct", s.disk_full_watermark_pct, 50, 99);
    if s.disk_high_watermark_pct >= s.disk_full_watermark_pct {
        push(out, "store.disk_full_watermark_pct", "must be above disk_high_watermark_pct");
    }
    if let Some(f) = s.disk_frames_watermark_pct
        && (f < s.disk_high_watermark_pct || f > s.disk_full_watermark_pct)
    {
        push(
            out,
            "store.disk_frames_watermark_pct",
            "must lie between disk_high_watermark_pct and disk_full_watermark_pct",
        );
    }
    range(out, "store.disk_reserve_mb", s.disk_reserve_mb, 1, 1_048_576);
    let r = &s.retention;
    range(out, "store.retention.min_days", r.min_days, 1, 36_500);
    range(out, "store.retention.max_days", r.max_days, 1, 36_500);
    if r.max_days < r.min_days {
        push(out, "store.retention.max_days", format!("must be at least min_days ({})", r.min_days));
    }
    range(out, "store.retention.sweep_interval_s", r.sweep_interval_s, 10, 7 * 86_400);
    range(out, "store.retention.batch_size", r.batch_size, 1, 100_000);
    range(out, "store.retention.batch_pause_ms", r.batch_pause_ms, 0, 60_000);
    range(out, "store.retention.max_clock_lead_days", r.max_clock_lead_days, 1, 3650);
    range(out, "store.retention.max_clock_lag_s", r.max_clock_lag_s, 0, 86_400);
    range(out, "store.retention.max_purge_percent", r.max_purge_percent, 1, 100);
}

fn mqtt(out: &mut Issues, m: &Mqtt) {
    if m.topic_prefix.is_empty() || m.topic_prefix.contains(['+', '#']) || m.topic_prefix.ends_with('/') {
        push(out, "mqtt.topic_prefix", "must be non-empty, without + or #, and not end with /");
    }
    range(out, "mqtt.keepalive_s", m.keepalive_s, 5, 3600);
    range(out, "mqtt.reads_batch_max", m.reads_batch_max, 1, 10_000);
    range(out, "mqtt.reads_batch_max_age_ms", m.reads_batch_max_age_ms, 10, 3_600_000);
    range(out, "mqtt.max_packet_kib", m.max_packet_kib, 16, 262_144);
    range(out, "mqtt.max_command_kib", m.max_command_kib, 1, 262_144);
    range(out, "mqtt.max_inbound_kib", m.max_inbound_kib, m.max_command_kib.max(16), 262_144);
    range(out, "mqtt.healthy_after_s", m.healthy_after_s, 1, 3600);
    range(out, "mqtt.compliance_report_day", m.compliance_report_day, 0, 28);
    range(out, "mqtt.compliance_report_hour", m.compliance_report_hour, 0, 23);
    if let Some(k) = &m.command_public_key
        && let Err(e) = parse_command_key(k)
    {
        push(out, "mqtt.command_public_key", e.to_string());
    }
    range(out, "mqtt.max_queued_reads", m.max_queued_reads, 1000, 100_000_000);
    if m.client_cert.is_some() != m.client_key.is_some() {
        push(out, "mqtt.client_key", "client_cert and client_key go together");
    }
    if m.password.is_some() && m.password_file.is_some() {
        push(out, "mqtt.password_file", "give either password or password_file, not both");
    }
    let mut seen = HashSet::new();
    for (i, h) in m.hosts.iter().enumerate() {
        match parse_broker(h, m.port) {
            Err(e) => push(out, format!("mqtt.hosts[{i}]"), e.to_string()),
            Ok(b) if !seen.insert(b.clone()) => {
                push(out, format!("mqtt.hosts[{i}]"), format!("{}:{} is listed twice", b.0, b.1))
            }
            Ok(_) => {}
        }
    }
    if !m.hosts.is_empty() && !m.host.is_empty() {
        push(out, "mqtt.hosts", "give either host or hosts, not both");
    }
    if m.hosts.len() > 64 {
        push(out, "mqtt.hosts", format!("{} brokers listed; at most 64", m.hosts.len()));
    }
    if !m.enabled {
        return;
    }
    if m.host.is_empty() && m.hosts.is_empty() {
        push(out, "mqtt.host", "is required when mqtt.enabled = true (or list the brokers in mqtt.hosts)");
    }
    if m.port == 0 {
        push(out, "mqtt.port", "must not be 0");
    }
    if !m.insecure_plaintext && m.ca_file.is_none() {
        push(out, "mqtt.ca_file", "is required for TLS (set insecure_plaintext = true only in a lab)");
    }
    if m.insecure_plaintext && (m.password.is_some() || m.password_file.is_some()) {
        push(out, "mqtt.insecure_plaintext", "refusing to send a password without TLS");
    }
}

fn access(out: &mut Issues, a: &Access) {
    if a.audit_key_file.as_os_str().is_empty() {
        push(out, "access.audit_key_file", "must not be empty");
    }
    if a.required_courses.iter().any(|c| c.trim().is_empty()) {
        push(out, "access.required_courses", "course names must not be empty");
    }
    range(out, "access.lockout_failures", a.lockout_failures, 1, 5);
    range(out, "access.lockout_window_minutes", a.lockout_window_minutes, 15, 1440);
    range(out, "access.unused_account_days", a.unused_account_days, 1, 90);
    range(out, "access.max_release_days", a.max_release_days, 1, 366);
    if a.allowed_jurisdictions.iter().any(|j| j.trim().is_empty()) {
        push(out, "access.allowed_jurisdictions", "jurisdictions must not be empty");
    }
}

fn api(out: &mut Issues, a: &Api) {
    if a.listen.parse::<std::net::SocketAddr>().is_err() {
        push(out, "api.listen", format!("`{}` is not an address:port", a.listen));
    }
    range(out, "api.session_idle_minutes", a.session_idle_minutes, 1, 30);
    range(out, "api.session_absolute_hours", a.session_absolute_hours, 1, 24);
    if a.search_purposes.is_empty() || a.search_purposes.iter().any(|p| p.trim().is_empty()) {
        push(out, "api.search_purposes", "needs at least one non-empty purpose");
    }
    if a.tls_cert.is_some() != a.tls_key.is_some() {
        push(out, "api.tls_key", "tls_cert and tls_key go together (leave both out for a generated self-signed pair)");
    }
}
