//! A 3-node `nats-server` cluster on 127.0.0.1 for the fleet test: JetStream (which NATS's MQTT needs)
//! with its streams replicated on all three nodes, MQTT over TLS with client certificates mapped to
//! users (per-box ACLs), and a plain client port for the central side's NATS consumers. Also a minimal
//! NATS protocol subscriber (queue groups) so the test needs no NATS client crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub const CENTRAL_USER: &str = "central";
pub const CENTRAL_PASSWORD: &str = "central-test-password";

/// The ports of one node.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub client: u16,
    pub cluster: u16,
    pub mqtt: u16,
}

pub struct Node {
    pub name: String,
    pub ports: Ports,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Whom the cluster lets in: MQTT users by certificate subject (`CN=<client id>`) with the subjects
/// each may publish and subscribe to.
pub struct User {
    pub cn: String,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

fn quoted(v: &[String]) -> String {
    v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

pub fn executable() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Writes the three configurations and starts the nodes; returns once each MQTT port listens and
    /// JetStream has a meta leader (a healthz that answers ok on every node).
    pub fn start(dir: &Path, ca: &Path, cert: &Path, key: &Path, users: &[User]) -> Cluster {
        let exe = executable().expect("nats-server is not installed (scripts/install-fleet-deps installs it)");
        std::fs::create_dir_all(dir).unwrap();
        let ports: Vec<Ports> = (0..3)
            .map(|_| Ports { client: super::free_port(), cluster: super::free_port(), mqtt: super::free_port() })
            .collect();
        let routes =
            ports.iter().map(|p| format!("\"nats-route://127.0.0.1:{}\"", p.cluster)).collect::<Vec<_>>().join(", ");
        let mut auth = format!(
            "  {{ user: \"{CENTRAL_USER}\", password: \"{CENTRAL_PASSWORD}\", permissions: {{ publish: [\"polewatch.>\", \"$JS.>\", \"_INBOX.>\"], subscribe: [\">\"] }} }}\n"
        );
        for u in users {
            auth.push_str(&format!(
                "  {{ user: \"CN={}\", permissions: {{ publish: [{}], subscribe: [{}] }} }}\n",
                u.cn,
                quoted(&u.publish),
                quoted(&u.subscribe)
            ));
        }
        let mut nodes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.join(format!("js-{name}"));
            let conf = dir.join(format!("{name}.conf"));
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 0\n\
                 jetstream {{ store_dir: \"{store}\", max_memory_store: 256MB, max_file_store: 2GB }}\n\
                 cluster {{ name: polewatch-fleet, listen: 127.0.0.1:{cluster}, routes: [{routes}] }}\n\
                 mqtt {{\n  listen: 127.0.0.1:{mqtt}\n  tls {{ cert_file: \"{cert}\", key_file: \"{key}\", ca_file: \"{ca}\", verify_and_map: true, timeout: 5 }}\n  \
                 stream_replicas: 3\n  ack_wait: \"10s\"\n  max_ack_pending: 4096\n}}\n\
                 authorization {{\n users: [\n{auth} ]\n}}\n",
                client = p.client,
                cluster = p.cluster,
                mqtt = p.mqtt,
                store = store.display(),
                cert = cert.display(),
                key = key.display(),
                ca = ca.display(),
            );
            std::fs::write(&conf, text).unwrap();
            nodes.push(Node { name: name.clone(), ports: *p, conf, log: dir.join(format!("{name}.log")), child: None });
        }
        for n in &mut nodes {
            n.start(&exe);
        }
        let c = Cluster { nodes };
        c.wait_ready(Duration::from_secs(60));
        c
    }

    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for n in &self.nodes {
            while std::net::TcpStream::connect(("127.0.0.1", n.ports.mqtt)).is_err() {
                assert!(Instant::now() < deadline, "{} did not listen for MQTT; log:\n{}", n.name, n.log_text());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // The JetStream meta leader is elected once the routes are up.
        while !self.nodes.iter().all(|n| {
            n.log_text().contains("JetStream cluster new metadata leader")
                || n.log_text().contains("Self is new JetStream cluster metadata leader")
        }) {
            assert!(Instant::now() < deadline, "no JetStream meta leader; log:\n{}", self.nodes[0].log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Cluster {
    /// The node that last logged becoming leader of `stream` (e.g. `$MQTT_msgs`), by log time.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let needle = format!("new stream leader for '$G > {stream}'");
        let mut best: Option<(String, usize)> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            for l in n.log_text().lines().filter(|l| l.contains(&needle)) {
                // "[pid] 2026/12/06 08:38:19.654273 [INF] …": the date and time sort as text.
                let at: String = l.split_whitespace().skip(1).take(2).collect::<Vec<_>>().join(" ");
                if best.as_ref().is_none_or(|(b, _)| at > *b) {
                    best = Some((at, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }
}

impl Node {
    fn start(&mut self, exe: &Path) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(exe)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
    }

    /// SIGKILL: the node dies without a goodbye, as in a power cut.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Messages one queue-group worker received: subject → payloads.
pub type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A NATS core subscriber in queue group `group` on `subject` (plain protocol over TCP: CONNECT, SUB,
/// MSG, PING/PONG), connected to the node on `port`; returns once the server answered the SUB.
pub async fn queue_worker(port: u16, subject: &str, group: &str, name: &str) -> Received {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("nats client port");
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("INFO "), "not a NATS server: {line}");
    let connect = serde_json::json!({
        "verbose": false, "pedantic": false, "headers": false, "protocol": 1, "name": name,
        "user": CENTRAL_USER, "pass": CENTRAL_PASSWORD, "lang": "rust-test", "version": "0",
    });
    w.write_all(format!("CONNECT {connect}\r\nSUB {subject} {group} 1\r\nPING\r\n").as_bytes()).await.unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(!line.starts_with("-ERR"), "NATS refused {name}: {line}");
        if line.starts_with("PONG") {
            break;
        }
    }
    let got: Received = Arc::default();
    let sink = got.clone();
    tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.starts_with("PING") {
                if w.write_all(b"PONG\r\n").await.is_err() {
                    return;
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("MSG ") {
                // MSG <subject> <sid> [reply-to] <#bytes>
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let Some(len) = parts.last().and_then(|n| n.parse::<usize>().ok()) else { return };
                let mut payload = vec![0u8; len + 2];
                if r.read_exact(&mut payload).await.is_err() {
                    return;
                }
                payload.truncate(len);
                sink.lock().unwrap().push((parts[0].to_string(), payload));
            }
        }
    });
    got
}

/// How many copies of each id.
pub fn copies<'a>(ids: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}
