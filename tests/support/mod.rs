//! Test infrastructure: certificates made here (rcgen) and a real mosquitto broker with TLS on a free
//! 127.0.0.1 port.
#![allow(dead_code)]

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

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A CA, a server certificate for `server_names` (IP addresses or DNS names) and a client certificate.
/// `server_expired` makes the server certificate one that ended in 2021.
pub fn pki(dir: &Path, tag: &str, server_names: &[&str], server_expired: bool) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, format!("polewatch test CA {tag}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut sp = CertificateParams::new(server_names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    sp.distinguished_name.push(DnType::CommonName, "broker");
    if server_expired {
        sp.not_before = rcgen::date_time_ymd(2020, 1, 1);
        sp.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let server = sp.signed_by(&server_key, &ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "pole-01");
    let client = cp.signed_by(&client_key, &ca).unwrap();

    let p = Pki {
        dir: dir.to_path_buf(),
        ca: write(dir, &format!("{tag}-ca.pem"), &ca.pem()),
        server_cert: write(dir, &format!("{tag}-server.pem"), &server.pem()),
        server_key: write(dir, &format!("{tag}-server.key"), &server_key.serialize_pem()),
        client_cert: write(dir, &format!("{tag}-client.pem"), &client.pem()),
        client_key: write(dir, &format!("{tag}-client.key"), &client_key.serialize_pem()),
    };
    use std::os::unix::fs::PermissionsExt;
    for k in [&p.server_key, &p.client_key] {
        std::fs::set_permissions(k, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A mosquitto process; killed on drop.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    conf: PathBuf,
}

impl Broker {
    /// TLS listener on 127.0.0.1:`port` requiring a client certificate from the PKI's CA.
    pub fn start(pki: &Pki, port: u16) -> Broker {
        let conf = pki.dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "user root\npersistence false\nallow_anonymous true\nlog_dest stderr\nlog_type error\n\
                 listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
                 tls_version tlsv1.2\nmax_packet_size 4194304\n",
                pki.ca.display(),
                pki.server_cert.display(),
                pki.server_key.display()
            ),
        )
        .unwrap();
        let mut b = Broker { port, child: None, conf };
        b.restart();
        b
    }

    pub fn restart(&mut self) {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| Path::new(p).exists()).expect("mosquitto is installed by scripts/install-deps");
        let child = Command::new(exe).arg("-c").arg(&self.conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start listening on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
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
