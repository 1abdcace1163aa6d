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
        let mut b = env_logger::Builder::new();
        b.filter_level(level_filter(cfg.level))
            // sled's own chatter stays at warn unless asked for.
            .filter_module("sled", log::LevelFilter::Warn.min(level_filter(cfg.level)));
        // Libraries' debug lines would bury polewatch's own (at debug: each read with its plate).
        for m in ["rumqttc", "rustls", "hyper", "hyper_util", "axum", "tokio", "mio", "h2", "tower"] {
            b.filter_module(m, log::LevelFilter::Info.min(level_filter(cfg.level)));
        }
        b.format_timestamp_millis()
            .target(env_logger::Target::Stderr)
            .try_init()
            .map_err(|e| anyhow::anyhow!("cannot install the stderr logger: {e}"))?;
    }
    set_level(cfg.level);
    Ok(())
}

pub fn set_level(l: LogLevel) {
    log::set_max_level(level_filter(l));
}
