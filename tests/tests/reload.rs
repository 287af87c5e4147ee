//! Changes without a restart, with the real server: a renewed certificate (new files, as
//! certbot writes them) is served to new connections within seconds while an open XMPP session
//! carries on; SIGHUP re-reads palaver.toml and applies its log filter and per-address
//! connection cap; a broken palaver.toml on SIGHUP changes nothing.

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{must, password_of, RawClient, ServerOptions, Store, TestServer};
use std::path::Path;
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["localhost", "conference.localhost", "upload.localhost"];

fn names(extra: &[&str]) -> Vec<String> {
    NAMES.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// The leaf certificate a fresh TLS connection to `addr` (direct TLS) is served.
async fn served_leaf(addr: std::net::SocketAddr, ca: &Path) -> Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(palaver_e2e::tls::client_config(ca)?);
    let s = tls.connect(palaver_e2e::tls::server_name(), tcp).await?;
    let (_, conn) = s.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .context("no certificate")?;
    Ok(leaf.as_ref().to_vec())
}

fn leaf_in(pem: &Path) -> Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject as _;
    let first = rustls::pki_types::CertificateDer::pem_file_iter(pem)?
        .next()
        .context("empty PEM")??;
    Ok(first.as_ref().to_vec())
}

async fn hup(server: &TestServer) -> Result<()> {
    let pid = server.pid().context("not running")?;
    let status = tokio::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .await?;
    ensure!(status.success(), "kill -HUP");
    Ok(())
}

fn count(server: &TestServer, needle: &str) -> usize {
    server.stderr_log().matches(needle).count()
}

async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn certificates_log_filter_and_limits_change_without_a_restart() {
    let certs = must(tempfile::tempdir().map_err(anyhow::Error::from));
    let (paths, _) = must(
        palaver_certs::ensure_dev_certs(certs.path(), &names(&[]))
            .map_err(|e| anyhow::anyhow!("{e}")),
    );
    let opts = ServerOptions {
        xmpp_extra: "max_connections_per_ip = 100".into(),
        extra_toml: format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n\n[log]\nfilter = \"info\"\n",
            paths.cert.display(),
            paths.key.display()
        ),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with_users(Store::Sqlite, opts, &["alice"]).await;
    let r = async {
        let ca = &paths.ca_cert;
        let mut alice = RawClient::login(
            server.starttls_addr(),
            ca,
            "alice",
            &password_of("alice"),
            "raw",
        )
        .await?;
        let first = leaf_in(&paths.cert)?;
        ensure!(
            served_leaf(server.direct_tls_addr(), ca).await? == first,
            "initial cert"
        );

        // Renewal: same CA, a new leaf (another name) written over the files.
        palaver_certs::ensure_dev_certs(certs.path(), &names(&["renewed.localhost"]))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let renewed = leaf_in(&paths.cert)?;
        ensure!(renewed != first, "the test did not renew the certificate");
        let deadline = Instant::now() + Duration::from_secs(30);
        while served_leaf(server.direct_tls_addr(), ca).await? != renewed {
            ensure!(
                Instant::now() < deadline,
                "the renewed certificate is not served"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        alice
            .iq_ok("<iq type='get' to='localhost' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>")
            .await
            .context("the open session after the renewal")?;

        // SIGHUP with log.filter = "warn" and a cap of 1 connection per address.
        let config = std::fs::read_to_string(server.config_path())?;
        let quiet = config
            .replace("filter = \"info\"", "filter = \"warn\"")
            .replace("max_connections_per_ip = 100", "max_connections_per_ip = 1");
        ensure!(quiet != config, "config rewrite");
        std::fs::write(server.config_path(), &quiet)?;
        let loaded = count(&server, "TLS certificate loaded");
        hup(&server).await?;
        let from_env = std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty());
        // The reload's own info lines are filtered out once "warn" applies; wait for its
        // effect instead: a second connection from our address is closed at once.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match RawClient::connect(server.starttls_addr()).await {
                Err(_) => break,
                Ok(_) => {
                    ensure!(
                        Instant::now() < deadline,
                        "the new connection cap is not applied"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if !from_env {
            ensure!(
                count(&server, "configuration reloaded") == 0
                    && count(&server, "TLS certificate loaded") == loaded,
                "info lines logged under log.filter = warn:\n{}",
                server.stderr_log()
            );
        }
        alice
            .iq_ok("<iq type='get' to='localhost' id='ping2'><ping xmlns='urn:xmpp:ping'/></iq>")
            .await
            .context("the open session after SIGHUP")?;

        // A broken file: logged, nothing changes.
        std::fs::write(server.config_path(), format!("{quiet}\nno_such_key = 1\n"))?;
        hup(&server).await?;
        until("the reload error", 10, || {
            count(&server, "configuration reload failed") == 1
        })
        .await?;
        ensure!(
            RawClient::connect(server.starttls_addr()).await.is_err(),
            "cap kept"
        );

        // Back to info and 100: the reload says so.
        std::fs::write(server.config_path(), &config)?;
        hup(&server).await?;
        until("the reload line", 10, || {
            count(&server, "configuration reloaded") == 1
        })
        .await?;
        RawClient::connect(server.starttls_addr())
            .await
            .context("a second connection once the cap is 100 again")?;
        Ok(())
    }
    .await;
    must(r);
}
