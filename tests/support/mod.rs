//! The library's MQTT rig with test-style error handling.
#![allow(dead_code)]

pub mod mqtt;
pub mod webdriver;

pub use polewatch::bench::rig::{Broker as RigBroker, Pki};
use std::path::Path;

pub fn pki(dir: &Path, tag: &str, server_names: &[&str], server_expired: bool) -> Pki {
    polewatch::bench::rig::pki(dir, tag, server_names, server_expired).expect("test PKI")
}

pub fn free_port() -> u16 {
    polewatch::bench::rig::free_port().expect("free port")
}

pub struct Broker(pub RigBroker);

impl Broker {
    pub fn start(pki: &Pki, port: u16) -> Broker {
        Broker(RigBroker::start(pki, port).expect("mosquitto starts"))
    }
    pub fn start_with_password(pki: &Pki, port: u16, user: &str, password: &str) -> Broker {
        Broker(RigBroker::start_with_password(pki, port, user, password).expect("mosquitto starts"))
    }
    pub fn restart(&mut self) {
        self.0.restart().expect("mosquitto restarts")
    }
    pub fn stop(&mut self) {
        self.0.stop()
    }
}

impl std::ops::Deref for Broker {
    type Target = RigBroker;
    fn deref(&self) -> &RigBroker {
        &self.0
    }
}
