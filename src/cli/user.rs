//! `polewatch user add|passwd|train|lock|unlock|list`: user administration offline on the store, the
//! way the first administrator is made. The daemon must be stopped (the store allows one process).
//!
//! Passwords are read from the terminal without echo (asked twice), or as one line from stdin when
//! stdin is not a terminal (scripts, tests). They never appear in arguments, where `ps` would show them.

use crate::access::service::{Actor, UserService, day};
use crate::access::users::{self, AccessPolicy, NewUser, Training, User};
use crate::access::{AuditSink, Role};
use crate::clock::now_ms;
use crate::config::Config;
use crate::store::{OpenOutcome, Store, StoreError, StoreOptions};
use anyhow::{Context, bail};
use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub cmd: UserCmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is read from the terminal (or one line of stdin).
    Add {
        username: String,
        /// Full name, as the audit log and reports show it.
        #[arg(long)]
        name: String,
        /// Organisation (agency); default: `[site] organisation`.
        #[arg(long)]
        org: Option<String>,
        /// Job title (policy 471.3.1 (a)).
        #[arg(long)]
        title: String,
        /// admin, supervisor, operator, auditor or installer; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
    },
    /// Set a new password (read like `add`'s); ends the user's sessions.
    Passwd { username: String },
    /// Record completed training (policy 471.4 (d)); replaces an earlier record of the same course.
    Train {
        username: String,
        #[arg(long)]
        course: String,
        /// Date completed, YYYY-MM-DD.
        #[arg(long)]
        completed: jiff::civil::Date,
        /// Last day the training counts, YYYY-MM-DD (through that day, UTC).
        #[arg(long)]
        expires: jiff::civil::Date,
    },
    /// Lock an account; only `unlock` opens it again.
    Lock {
        username: String,
        #[arg(long)]
        reason: String,
    },
    /// Unlock an account (also re-enables one disabled as unused) and forget its failed logins.
    Unlock { username: String },
    /// List users: roles, status, training, last login (never password hashes).
    List,
}

/// The audit sink the CLI records to: the store's hash-chained audit log.
pub fn cli_audit_sink(cfg: &Config, store: &Arc<Store>) -> anyhow::Result<Arc<dyn AuditSink>> {
    let log = crate::access::audit::AuditLog::open(store.clone(), &cfg.access.audit_key_file)
        .context("cannot open the audit log")?;
    Ok(Arc::new(log))
}

/// Who runs the command: the person behind sudo if any.
fn cli_actor(cfg: &Config) -> Actor {
    let user = ["SUDO_USER", "USER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").map_or("unknown".to_string(), |m| format!("uid:{}", m.uid()))
        });
    Actor { user, organisation: cfg.site.organisation.clone(), source: "cli".to_string() }
}

fn start_of(d: jiff::civil::Date) -> anyhow::Result<i64> {
    Ok(jiff::tz::TimeZone::UTC.to_timestamp(jiff::civil::DateTime::from(d))?.as_millisecond())
}

fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    match Store::open(&StoreOptions::for_config(&cfg.store)?) {
        Ok((store, outcome)) => {
            if let OpenOutcome::RecoveredFromCorruption { moved_to, cause } = outcome {
                eprintln!(
                    "ALERT: the store was corrupt ({cause}); it was moved to {} and a new one started",
                    moved_to.display()
                );
            }
            Ok(store)
        }
        Err(e @ StoreError::Locked { .. }) => {
            Err(anyhow::Error::new(e).context("stop the daemon first (systemctl stop polewatch)"))
        }
        Err(e) => Err(e.into()),
    }
}

fn read_password(username: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password(format!("New password for {username}: ")).context("cannot read the password")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != again {
            bail!("the passwords differ; nothing changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    // Only the line end goes: spaces are part of a password.
    let pw = line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line);
    Ok(pw.to_string())
}

pub fn run(cfg: &Config, args: UserArgs) -> anyhow::Result<()> {
    let store = Arc::new(open_store(cfg)?);
    let audit = cli_audit_sink(cfg, &store)?;
    let service = UserService::new(store.clone(), AccessPolicy::from_config(&cfg.access, &cfg.api), audit);
    let result = command(cfg, &service, args.cmd);
    drop(service);
    if let Ok(s) = Arc::try_unwrap(store) {
        s.close()?;
    }
    result
}

fn command(cfg: &Config, service: &UserService, cmd: UserCmd) -> anyhow::Result<()> {
    let by = cli_actor(cfg);
    match cmd {
        UserCmd::Add { username, name, org, title, roles } => {
            let organisation = org.unwrap_or_else(|| cfg.site.organisation.clone());
            let username = users::normalize_username(&username)?;
            let password = read_password(&username)?;
            let n = NewUser { username, display_name: name, organisation, job_title: title, roles };
            let u = service.add_user(&by, n, &password, now_ms())?;
            println!("added {}; record training (`polewatch user train`) before the first login", u.username);
        }
        UserCmd::Passwd { username } => {
            let username = users::normalize_username(&username)?;
            if service.get(&username)?.is_none() {
                bail!("no user `{username}`");
            }
            let password = read_password(&username)?;
            let u = service.set_password(&by, &username, &password, now_ms())?;
            println!("password of {} changed", u.username);
        }
        UserCmd::Train { username, course, completed, expires } => {
            let t = Training { course, completed_ms: start_of(completed)?, expires_ms: start_of(expires.tomorrow()?)? };
            let u = service.record_training(&by, &username, t, now_ms())?;
            println!("training recorded for {}", u.username);
        }
        UserCmd::Lock { username, reason } => {
            let u = service.lock(&by, &username, &reason, now_ms())?;
            println!("{} locked", u.username);
        }
        UserCmd::Unlock { username } => {
            let u = service.unlock(&by, &username, now_ms())?;
            println!("{} unlocked", u.username);
        }
        UserCmd::List => print!("{}", table(&service.list()?, service.policy(), now_ms())),
    }
    Ok(())
}

fn status(u: &User, policy: &AccessPolicy, now_ms: i64) -> String {
    match users::may_act(u, policy, now_ms) {
        Ok(()) => "active".to_string(),
        Err(e) => match &u.locked {
            Some(l) => format!("locked: {}", l.reason),
            None => e.to_string(),
        },
    }
}

/// The `list` table, tab-separated so it stays parseable.
fn table(list: &[User], policy: &AccessPolicy, now_ms: i64) -> String {
    let mut out = String::from("username\tname\torganisation\tjob title\troles\tstatus\ttraining\tlast login\n");
    for u in list {
        let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
        // Expiry shown as the last day it counts, as entered.
        let training: Vec<String> =
            u.training.iter().map(|t| format!("{} until {}", t.course, day(t.expires_ms - 1))).collect();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            u.username,
            u.display_name,
            u.organisation,
            u.job_title,
            roles.join(","),
            status(u, policy, now_ms),
            if training.is_empty() { "none".to_string() } else { training.join("; ") },
            u.last_login_ms.map_or("never".to_string(), day),
        ));
    }
    out
}
