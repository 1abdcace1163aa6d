//! A local MQTT rig for tests and `polewatch-dev bench uplink`: certificates made here (rcgen) and a real
//! mosquitto broker with TLS on a free 127.0.0.1 port.

use anyhow::{Context, Result, anyhow};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(p)
}

/// A CA, a server certificate for `server_names` (IP addresses or DNS names) and a client certificate.
/// `server_expired` makes the server certificate one that ended in 2021.
pub fn pki(dir: &Path, tag: &str, server_names: &[&str], server_expired: bool) -> Result<Pki> {
    std::fs::create_dir_all(dir)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, format!("polewatch test CA {tag}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(server_names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    sp.distinguished_name.push(DnType::CommonName, "broker");
    if server_expired {
        sp.not_before = rcgen::date_time_ymd(2020, 1, 1);
        sp.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let server = sp.signed_by(&server_key, &ca)?;

    let client_key = KeyPair::generate()?;
    let mut cp = CertificateParams::new(Vec::<String>::new())?;
    cp.distinguished_name.push(DnType::CommonName, "pole-01");
    let client = cp.signed_by(&client_key, &ca)?;

    let p = Pki {
        dir: dir.to_path_buf(),
        ca: write(dir, &format!("{tag}-ca.pem"), &ca.pem())?,
        server_cert: write(dir, &format!("{tag}-server.pem"), &server.pem())?,
        server_key: write(dir, &format!("{tag}-server.key"), &server_key.serialize_pem())?,
        client_cert: write(dir, &format!("{tag}-client.pem"), &client.pem())?,
        client_key: write(dir, &format!("{tag}-client.key"), &client_key.serialize_pem())?,
    };
    use std::os::unix::fs::PermissionsExt;
    // mosquitto may drop to its own user before reading its key.
    std::fs::set_permissions(&p.server_key, std::fs::Permissions::from_mode(0o644))?;
    std::fs::set_permissions(&p.client_key, std::fs::Permissions::from_mode(0o600))?;
    Ok(p)
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A mosquitto process; killed on drop.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    conf: PathBuf,
}

impl Broker {
    /// TLS listener on 127.0.0.1:`port` requiring a client certificate from the PKI's CA.
    pub fn start(pki: &Pki, port: u16) -> Result<Broker> {
        Broker::start_with(pki, port, "allow_anonymous true\nrequire_certificate true\n")
    }

    /// TLS without client certificates; only `user` with `password` may connect.
    pub fn start_with_password(pki: &Pki, port: u16, user: &str, password: &str) -> Result<Broker> {
        let file = pki.dir.join(format!("passwd-{port}"));
        let status =
            Command::new("mosquitto_passwd").arg("-b").arg("-c").arg(&file).arg(user).arg(password).status()?;
        if !status.success() {
            return Err(anyhow!("mosquitto_passwd failed: {status}"));
        }
        Broker::start_with(
            pki,
            port,
            &format!("allow_anonymous false\nrequire_certificate false\npassword_file {}\n", file.display()),
        )
    }

    fn start_with(pki: &Pki, port: u16, auth: &str) -> Result<Broker> {
        let conf = pki.dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "user root\npersistence false\nlog_dest stderr\nlog_type error\nper_listener_settings true\n\
                 listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n{auth}\
                 tls_version tlsv1.2\nmax_packet_size 4194304\n",
                pki.ca.display(),
                pki.server_cert.display(),
                pki.server_key.display()
            ),
        )?;
        let mut b = Broker { port, child: None, conf };
        b.restart()?;
        Ok(b)
    }

    pub fn restart(&mut self) -> Result<()> {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| anyhow!("mosquitto is not installed (scripts/install-deps installs it)"))?;
        let child = Command::new(exe).arg("-c").arg(&self.conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(anyhow!("mosquitto did not start listening on {}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
