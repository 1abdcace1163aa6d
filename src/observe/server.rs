//! The plain-HTTP listener of `[metrics] listen` (127.0.0.1:9899 by default): `GET /metrics`, `/healthz` and
//! `/readyz`, no login, no plate data. Kept apart from the HTTPS console so that a scraper needs no account
//! and the console's sessions, CSP and audit stay out of it.

use super::metrics::{self, Sources};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

struct Exporter {
    registry: Registry,
    sources: Arc<Sources>,
}

pub fn router(sources: Arc<Sources>) -> Router {
    let state = Arc::new(Exporter { registry: metrics::registry(sources.clone()), sources });
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Binds the listener (an error is a start-up error: the address is taken or not ours) and serves until
/// `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    sources: Arc<Sources>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = router(sources);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            log::error!("metrics listener stopped: {e}");
        }
    }))
}

async fn scrape(State(x): State<Arc<Exporter>>) -> Response {
    // Counting the store may walk its trees: off the async workers.
    let body = tokio::task::spawn_blocking(move || metrics::encode(&x.registry)).await;
    match body {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Ok(Err(_)) | Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded\n").into_response(),
    }
}

async fn health(x: Arc<Exporter>) -> super::health::Summary {
    let sources = x.sources.clone();
    match tokio::task::spawn_blocking(move || sources.health()).await {
        Ok(s) => s,
        Err(_) => super::health::evaluate(&super::health::Input {
            cameras: Vec::new(),
            store_needs_reopen: true,
            disk_level: None,
            accepts_reads: false,
            uplink: None,
            uptime_s: 0.0,
        }),
    }
}

async fn healthz(State(x): State<Arc<Exporter>>) -> Response {
    let s = health(x).await;
    let code = if s.live { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(serde_json::json!({"live": s.live, "reasons": if s.live { Vec::new() } else { s.reasons }})))
        .into_response()
}

async fn readyz(State(x): State<Arc<Exporter>>) -> Response {
    let s = health(x).await;
    let code = if s.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(s)).into_response()
}
