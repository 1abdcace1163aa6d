//! The local HTTPS API and web console (axum over rustls, the same ring provider as MQTT). Every route
//! but `/policy` and the console's files needs a session; every access to stored data is audited before
//! it is answered, and an audit failure refuses the access. [`ROUTES`] lists every route with its audit
//! rule; [`headers`] sets the security headers on every answer; [`gate`] bounds password checks.

pub mod aim;
pub mod cameras;
pub mod gate;
pub mod headers;
pub mod roi;
mod routes;
pub mod snapshot;
pub mod tarball;
pub mod tls;

pub use routes::{Audit, ROUTES, Route, role_lines};

use crate::access::AuditSink;
use crate::access::export::DeviceKey;
use crate::access::service::UserService;
use crate::config::Config;
use crate::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What the route handlers share.
pub struct ApiState {
    pub store: Arc<Store>,
    pub users: Arc<UserService>,
    pub audit: Arc<dyn AuditSink>,
    pub audit_log: Arc<crate::access::audit::AuditLog>,
    /// Holds, alert decisions and release requests: the door the MQTT commands share.
    pub evidence: Arc<crate::evidence::Evidence>,
    pub config: Config,
    pub device_key: DeviceKey,
    /// Where export bundles are written.
    pub export_dir: PathBuf,
    /// The hotlists in force, for the console's read-only view (None: not loaded in this process).
    pub hotlists: Option<Arc<crate::pipeline::hotlists::Hotlists>>,
    /// The running cameras, for the installer's Cameras page (None: no camera set in this process).
    pub cameras: Option<Arc<crate::ingest::CameraSet>>,
    /// The analysis's live snapshots, for aiming a camera (None: no analysis in this process).
    pub snapshots: Option<Arc<crate::pipeline::snapshot::Snapshots>>,
}

pub fn router(state: Arc<ApiState>) -> axum::Router {
    routes::router(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    state: Arc<ApiState>,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let app = router(state);
    axum_server::bind_rustls(addr, axum_server::tls_rustls::RustlsConfig::from_config(tls))
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
}
