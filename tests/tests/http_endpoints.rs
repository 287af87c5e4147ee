//! The HTTPS listener as a load balancer or Prometheus sees it: `/health` answers `ok`,
//! `/ready` is 200 while the store answers, `/metrics` is Prometheus text that counts what
//! clients did (an XMPP session, a room message), an unknown path is 404 — over TLS with the
//! server's certificate. A pool node alone (no majority) is alive but not ready.

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::pool::{PoolCa, PoolSpec};
use palaver_e2e::{must, room_jid, ServerOptions, Store, TestServer};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over HTTPS; returns (status code, body).
async fn get(addr: SocketAddr, ca: &Path, path: &str) -> Result<(u16, String)> {
    let config = palaver_e2e::tls::client_config(ca)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(palaver_e2e::tls::server_name(), tcp)
        .await
        .context("TLS handshake")?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut raw),
    )
    .await
    .context("no complete answer within 10 s")??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

async fn https_server() -> Result<TestServer> {
    let opts = ServerOptions {
        https: true,
        ..ServerOptions::default()
    };
    TestServer::start_with(Store::Sqlite, opts).await
}

#[tokio::test]
async fn health_ready_and_metrics_over_https() {
    let server = must(https_server().await);
    must(
        async {
            let addr = server
                .https_addr()
                .context("the server printed `palaver: listening https ADDR`")?;
            let ca = server.ca_path();
            assert_eq!(get(addr, &ca, "/health").await?, (200, "ok\n".into()));
            assert_eq!(get(addr, &ca, "/ready").await?, (200, "ready\n".into()));
            assert_eq!(get(addr, &ca, "/nothing-here").await?.0, 404);

            // Activity shows up in the metrics.
            server.add_user("alice@localhost", "alice-pw").await?;
            let mut alice = palaver_e2e::xmpp_available(&server, "alice").await?;
            let room = room_jid("metered");
            alice.join(&room, "alice", None).await?.joined()?;
            alice.say(&room, "counted").await?;
            alice.wait_groupchat(&room, "counted").await?;
            let (status, text) = get(addr, &ca, "/metrics").await?;
            ensure!(status == 200, "/metrics: {status}\n{text}");
            for metric in [
                "palaver_sessions{protocol=\"xmpp\"} 1",
                "palaver_messages_total",
                // A histogram with buckets, not a summary.
                "palaver_store_commit_seconds_bucket{le=\"0.005\"}",
                "palaver_tls_cert_expiry_seconds",
                "palaver_outbound_queue_deepest{protocol=\"xmpp\"}",
            ] {
                ensure!(text.contains(metric), "no {metric} in /metrics:\n{text}");
            }
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn a_pool_node_without_a_majority_is_alive_but_not_ready() {
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let tls = must(ca.node("n1"));
    let opts = ServerOptions {
        https: true,
        extra_toml: must(spec.toml("n1", "main", &tls)),
        ..ServerOptions::default()
    };
    let node = must(TestServer::start_with(Store::Sqlite, opts).await);
    must(
        async {
            let addr = node.https_addr().context("https listener")?;
            let ca = node.ca_path();
            assert_eq!(get(addr, &ca, "/health").await?.0, 200);
            let (status, body) = get(addr, &ca, "/ready").await?;
            ensure!(
                status == 503 && body.contains("majority"),
                "/ready of a lone pool node: {status} {body}"
            );
            // A pool node labels every series with its id.
            let (status, text) = get(addr, &ca, "/metrics").await?;
            ensure!(
                status == 200 && text.contains("palaver_pool_majority{node=\"n1\"}"),
                "/metrics of pool node n1:\n{text}"
            );
            Ok(())
        }
        .await,
    );
}
