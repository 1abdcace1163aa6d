//! The running daemon's local HTTPS API as a client: `polewatch audit verify --online` and `polewatch audit
//! report` log in as a user (an auditor), ask, and log out, so an audit never stops the cameras.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach the daemon's API.
#[derive(Debug, Clone, clap::Args)]
pub struct OnlineArgs {
    /// Who logs in (an auditor; default: the sudo caller or $USER); the password is read from the
    /// terminal, or one line of stdin.
    #[arg(long, value_name = "USER")]
    pub login: Option<String>,
    /// The API's address; default `https://` + `api.listen` (a wildcard address as 127.0.0.1).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The certificate (or its CA) to trust; default `api.tls_cert`, else the one the daemon generated
    /// beside the store.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

fn default_user() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        .unwrap_or_default()
}

fn read_password(user: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {user}: ")).context("cannot read the password");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    Ok(line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line).to_string())
}

/// A logged-in session with the daemon; logs out when dropped.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Client {
    pub fn login(cfg: &crate::config::Config, a: &OnlineArgs) -> anyhow::Result<Client> {
        if !cfg.api.enabled {
            bail!(
                "the API is not enabled in this configuration ([api] enabled = true): use the offline command with the daemon stopped"
            );
        }
        crate::uplink::tls::install_crypto_provider();
        let base = match &a.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let addr: std::net::SocketAddr = cfg.api.listen.parse().context("api.listen")?;
                let ip = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
                format!("https://{}", std::net::SocketAddr::new(ip.parse()?, addr.port()))
            }
        };
        let ca = match (&a.ca, &cfg.api.tls_cert) {
            (Some(c), _) | (None, Some(c)) => c.clone(),
            (None, None) => {
                let state = cfg.store.path.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| PathBuf::from("."));
                crate::api::tls::generated_paths(&state).0
            }
        };
        let pem =
            std::fs::read(&ca).with_context(|| format!("cannot read the API certificate {} (--ca)", ca.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i.ok()? {
                ureq::tls::PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            bail!("{} holds no certificate", ca.display());
        }
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs))).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let user = a.login.clone().unwrap_or_else(default_user);
        if user.is_empty() {
            bail!("who logs in? pass --login USER");
        }
        let password = read_password(&user)?;
        let mut res = agent
            .post(&format!("{base}/api/login"))
            .send_json(json!({"username": user, "password": password}))
            .with_context(|| {
                format!("cannot reach the daemon's API at {base}: is polewatch running with [api] enabled?")
            })?;
        let status = res.status().as_u16();
        let v: Value = res.body_mut().read_json().unwrap_or(Value::Null);
        match status {
            200 => {}
            403 if v["must_change_password"] == true => {
                bail!("{user} must first replace the password an administrator set (log in once in the console)")
            }
            _ => bail!("login refused ({status}): {}", v["error"].as_str().unwrap_or("")),
        }
        let token = v["token"].as_str().context("the login answer has no token")?.to_string();
        Ok(Client { agent, base, token })
    }

    fn answer(mut res: ureq::http::Response<ureq::Body>) -> anyhow::Result<(u16, String)> {
        let status = res.status().as_u16();
        Ok((status, res.body_mut().read_to_string().context("cannot read the answer")?))
    }

    pub fn get(&self, path_and_query: &str) -> anyhow::Result<(u16, String)> {
        let res = self
            .agent
            .get(&format!("{}{path_and_query}", self.base))
            .header("authorization", &format!("Bearer {}", self.token))
            .call()?;
        Self::answer(res)
    }

    pub fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, String)> {
        let res = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("authorization", &format!("Bearer {}", self.token))
            .send_json(body)?;
        Self::answer(res)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self
            .agent
            .post(&format!("{}/api/logout", self.base))
            .header("authorization", &format!("Bearer {}", self.token))
            .send_json(json!({}));
    }
}

/// The error message of a refused call.
pub fn refusal(status: u16, body: &str) -> anyhow::Error {
    let msg = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string());
    anyhow::anyhow!("the daemon refused ({status}): {msg}")
}
