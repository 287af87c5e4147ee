//! The HTTPS listener (`[http] listen`, default 5443), same certificate as XMPP: `/health`
//! (liveness: the process answers), `/ready` (the store answers and, in a pool, this node sees
//! a majority — for load balancers and systemd) and `/metrics` (every `palaver_*` counter,
//! gauge and histogram in the Prometheus text format), and the file upload and download routes
//! of `files::http`. The admin API comes later.
//!
//! Each connection gets a TLS handshake bounded in time, HTTP/1.1 with a header-read timeout,
//! and a cap on connections at once; a request to anything else is 404.

use crate::pool::Membership;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Longest TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection (long enough for a large upload; a stalled upload body is
/// cut off sooner, see `files::http`).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 256;

/// What the handlers need.
#[derive(Clone)]
pub struct HttpState {
    pub metrics: Option<PrometheusHandle>,
    pub store: Arc<dyn palaver_core::Store>,
    pub pool: Option<Arc<Membership>>,
    /// File upload and download (`None` when off).
    pub files: Option<Arc<crate::files::FileService>>,
}

/// Installs the process-wide metrics recorder `/metrics` renders (`None` when another is
/// installed already).
pub fn install_metrics(node: Option<&str>) -> Option<PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    // Store commits are fast (ms) and matter in their tail: buckets from 0.5 ms to 2.5 s.
    let commit_buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    let mut builder = PrometheusBuilder::new();
    if let Some(node) = node {
        // Every series says which pool node it comes from.
        builder = builder.add_global_label("node", node);
    }
    let built = builder
        .set_buckets_for_metric(
            Matcher::Full("palaver_store_commit_seconds".into()),
            &commit_buckets,
        )
        .and_then(|b| b.install_recorder());
    match built {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed: /metrics will be empty");
            None
        }
    }
}

/// Binds every `[http] listen` address; returns each listener with its announcement.
pub async fn bind(listen: &[String]) -> anyhow::Result<Vec<(TcpListener, String)>> {
    use anyhow::Context as _;
    let mut out = Vec::with_capacity(listen.len());
    for addr in listen {
        let listener = TcpListener::bind(addr.as_str())
            .await
            .with_context(|| format!("cannot listen on {addr} (https)"))?;
        let local = listener
            .local_addr()
            .context("cannot read the address bound for https")?;
        out.push((listener, format!("palaver: listening https {local}")));
    }
    Ok(out)
}

fn routes(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .merge(crate::files::http::routes())
        .with_state(state)
}

async fn ready(State(state): State<HttpState>) -> (StatusCode, String) {
    let store = tokio::time::timeout(Duration::from_secs(2), state.store.last_seq(-1)).await;
    if !matches!(store, Ok(Ok(_))) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store does not answer\n".into(),
        );
    }
    if let Some(pool) = &state.pool {
        if !pool.report().majority {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: this pool node does not see a majority of the active members\n".into(),
            );
        }
    }
    (StatusCode::OK, "ready\n".into())
}

async fn render_metrics(State(state): State<HttpState>) -> (StatusCode, String) {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder\n".into(),
        ),
    }
}

/// Serves HTTPS on `listener` until `shutdown` turns true.
pub async fn run(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: HttpState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut config = (*tls).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = routes(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "https accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                _ => {
                    tracing::debug!(%peer, "https TLS handshake failed or timed out");
                    return;
                }
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(io, service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                tracing::debug!(%peer, error = %e, "https connection ended with an error");
            }
        });
    }
}
