//! Logging to the journal (with structured fields) under systemd, to stderr otherwise.
//! Plate text is personal data: log it at debug level only (see `store::Plate`).

use crate::config::{LogLevel, LogTarget, Logging};

pub fn level_filter(l: LogLevel) -> log::LevelFilter {
    match l {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

/// Installs the process logger once. Later level changes go through [`set_level`].
pub fn init(cfg: &Logging) -> anyhow::Result<()> {
    let journal = match cfg.target {
        LogTarget::Journal => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => systemd_journal_logger::connected_to_journal(),
    };
    if journal {
        systemd_journal_logger::JournalLog::new()
            .map_err(|e| anyhow::anyhow!("cannot open the journal: {e}"))?
            .with_syslog_identifier("polewatch".to_string())
            .with_extra_fields(vec![("POLEWATCH_VERSION", env!("CARGO_PKG_VERSION"))])
            .install()
            .map_err(|e| anyhow::anyhow!("cannot install the journal logger: {e}"))?;
    } else {
        // env_logger's own filter is fixed when it is built, so it lets everything through and
        // [`StderrLog`] filters by the level in force (which SIGHUP changes).
        let inner = env_logger::Builder::new()
            .filter_level(log::LevelFilter::Trace)
            .format_timestamp_millis()
            .target(env_logger::Target::Stderr)
            .build();
        log::set_boxed_logger(Box::new(StderrLog { inner }))
            .map_err(|e| anyhow::anyhow!("cannot install the stderr logger: {e}"))?;
    }
    set_level(cfg.level);
    Ok(())
}

/// Libraries whose debug lines would bury polewatch's own (at debug: each read with its plate): they stay at
/// info unless the level is lower. sled's own chatter stays at warn.
const CAPPED: [(&str, log::LevelFilter); 10] = [
    ("sled", log::LevelFilter::Warn),
    ("rumqttc", log::LevelFilter::Info),
    ("rustls", log::LevelFilter::Info),
    ("hyper", log::LevelFilter::Info),
    ("hyper_util", log::LevelFilter::Info),
    ("axum", log::LevelFilter::Info),
    ("tokio", log::LevelFilter::Info),
    ("mio", log::LevelFilter::Info),
    ("h2", log::LevelFilter::Info),
    ("tower", log::LevelFilter::Info),
];

/// Whether a record of `level` from `target` is written when the configured level is `configured`.
pub fn allows(target: &str, level: log::Level, configured: log::LevelFilter) -> bool {
    let crate_name = target.split("::").next().unwrap_or(target);
    let cap = CAPPED.iter().find(|(m, _)| *m == crate_name).map_or(configured, |(_, cap)| (*cap).min(configured));
    level <= cap
}

struct StderrLog {
    inner: env_logger::Logger,
}

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        allows(m.target(), m.level(), log::max_level())
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.inner.log(r);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Applies at once, on the journal and on stderr (the stderr filter reads `log::max_level()`).
pub fn set_level(l: LogLevel) {
    log::set_max_level(level_filter(l));
    log::debug!("log level set to {}", level_filter(l).as_str().to_lowercase());
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::{Level, LevelFilter};

    #[test]
    fn the_filter_follows_the_level_and_caps_noisy_libraries() {
        assert!(!allows("polewatch::ops", Level::Debug, LevelFilter::Info));
        assert!(allows("polewatch::ops", Level::Debug, LevelFilter::Debug));
        assert!(allows("polewatch::ops", Level::Info, LevelFilter::Info));
        assert!(!allows("rumqttc::state", Level::Debug, LevelFilter::Trace), "libraries stay at info");
        assert!(allows("rumqttc::state", Level::Info, LevelFilter::Debug));
        assert!(!allows("rumqttc::state", Level::Info, LevelFilter::Warn), "a lower level applies to them too");
        assert!(!allows("sled::pagecache", Level::Info, LevelFilter::Trace));
        assert!(allows("sled::pagecache", Level::Warn, LevelFilter::Trace));
        assert!(allows("sledge", Level::Debug, LevelFilter::Debug), "a crate name, not a prefix");
    }
}
