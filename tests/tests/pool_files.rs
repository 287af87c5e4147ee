//! A file uploaded through one pool node downloads through another (issue 8): two active
//! nodes of a three-member pool on one shared PostgreSQL schema and one shared file
//! directory (`[files] dir`, as a network share would be). The slot comes from node n1 over
//! XMPP (slixmpp), the PUT goes to n1's HTTPS listener, the GET to n2's (curl): n2 checks the
//! URL's signature with the key the pool shares in the store and finds the blob in the
//! shared directory.

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::curl::curl;
use palaver_e2e::pool::{self, PoolCa, PoolSpec};
use palaver_e2e::python::{require_slixmpp, PyClient};
use palaver_e2e::{must, password_of, ServerOptions, TestServer};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);

/// `curl` against `server`'s HTTPS listener for a URL naming `localhost:<its port>`.
fn resolve(server: &TestServer) -> Result<String> {
    let https = server.https_addr().context("no https listener")?;
    Ok(format!("localhost:{}:{}", https.port(), https.ip()))
}

#[tokio::test]
async fn a_file_uploaded_through_one_node_downloads_through_another() {
    must(require_slixmpp().await);
    let shared = must(tempfile::tempdir().map_err(anyhow::Error::from));
    let base = ServerOptions {
        https: true,
        extra_toml: format!("[files]\ndir = \"{}\"\n", shared.path().display()),
        ..ServerOptions::default()
    };
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let pool = must(pool::start_shared_pg_pool_with(&spec, &ca, &["n1", "n2"], base).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(pool.add_users(&["alice"]).await);
    let r = async {
        let (n1, n2) = (pool.node("n1")?, pool.node("n2")?);
        let xmpp = n1.starttls_addr();
        let args: Vec<String> = [
            "--host",
            &xmpp.ip().to_string(),
            "--port",
            &xmpp.port().to_string(),
            "--ca",
            &n1.ca_path().display().to_string(),
            "--user",
            "alice",
            "--password",
            &password_of("alice"),
            "--file",
            "/nonexistent/minutes.txt",
            "--slot-only",
            "2000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let run = PyClient::spawn("upload.py", &args).await?.finish().await?;
        run.ok()?;
        let slot = run.event("slot")?;
        let put = slot["put"].as_str().context("put url")?;
        let get = slot["get"].as_str().context("get url")?;
        let dir = tempfile::tempdir()?;
        let body: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let file = dir.path().join("minutes.txt");
        std::fs::write(&file, &body)?;
        let data = format!("@{}", file.display());
        let stored = curl(
            &n1.ca_path(),
            put,
            &[
                "--resolve",
                &resolve(n1)?,
                "-X",
                "PUT",
                "--data-binary",
                &data,
            ],
        )
        .await?;
        ensure!(stored.status == 201, "PUT through n1: {}", stored.status);
        // The same URL path, through n2.
        let n1_port = n1.https_addr().context("https")?.port();
        let n2_port = n2.https_addr().context("https")?.port();
        let via_n2 = get.replace(&format!(":{n1_port}/"), &format!(":{n2_port}/"));
        ensure!(via_n2 != get, "{get}");
        let got = curl(&n2.ca_path(), &via_n2, &["--resolve", &resolve(n2)?]).await?;
        ensure!(got.status == 200, "GET through n2: {}", got.status);
        ensure!(got.body == body, "n2 served other bytes");
        Ok(())
    }
    .await;
    if let Err(e) = r {
        panic!("{e:?}\n{}", pool.describe());
    }
}
