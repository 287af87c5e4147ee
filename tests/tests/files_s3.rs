//! The S3 file-store backend against a real S3-compatible service: moto's server (PyPI) on
//! loopback. slixmpp's XEP-0363 plugin uploads a file bigger than one multipart part, curl
//! downloads it whole and by range, and the bucket holds exactly one object under its hash (no
//! temporary object left behind); uploading the same bytes again stores nothing new.

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::curl::curl;
use palaver_e2e::python::{require_slixmpp, upload_py, PyClient};
use palaver_e2e::{must, ServerOptions, Store, TestServer};
use serde_json::{json, Value};

const BUCKET: &str = "palaver-files";
const PREFIX: &str = "palaver/files";

/// `n` bytes that don't repeat in any short period.
fn content(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn objects(s3: &mut PyClient) -> Result<Vec<(String, u64)>> {
    s3.send(&json!({"cmd": "list", "prefix": ""})).await?;
    let listing = s3.wait_event("objects").await?;
    let keys = listing["keys"].as_array().context("keys")?;
    let sizes = listing["sizes"].as_array().context("sizes")?;
    Ok(keys
        .iter()
        .zip(sizes)
        .map(|(k, s)| {
            (
                k.as_str().unwrap_or_default().to_string(),
                s.as_u64().unwrap_or_default(),
            )
        })
        .collect())
}

fn uploaded_url(events: &[Value]) -> Result<String> {
    Ok(events
        .iter()
        .find(|e| e["event"] == "uploaded")
        .and_then(|e| e["url"].as_str())
        .with_context(|| format!("no upload in {events:?}"))?
        .to_string())
}

#[tokio::test]
async fn uploads_live_in_an_s3_bucket() {
    must(require_slixmpp().await);
    let mut s3 = must(
        PyClient::spawn_pip_interactive("s3_server.py", &["--bucket".into(), BUCKET.into()]).await,
    );
    let ready = must(s3.wait_event("ready").await);
    let endpoint = ready["endpoint"].as_str().unwrap_or_default().to_string();
    let opts = ServerOptions {
        https: true,
        extra_toml: format!(
            "[files]\nbackend = \"s3\"\n\n[files.s3]\nbucket = \"{BUCKET}\"\n\
             endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\n\
             secret_access_key = \"test\"\nprefix = \"{PREFIX}\"\nallow_http = true\n"
        ),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with_users(Store::Sqlite, opts, &["alice"]).await;
    let r = async {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big report.bin");
        let bytes = content(12 * 1024 * 1024 + 17);
        std::fs::write(&path, &bytes)?;
        let url = uploaded_url(&upload_py(&server, "alice", &path, None).await?)?;
        let ca = server.ca_path();
        let got = curl(&ca, &url, &[]).await?;
        ensure!(got.status == 200, "GET: {} {:?}", got.status, got.headers);
        ensure!(
            got.body == bytes,
            "downloaded {} bytes, not the file",
            got.body.len()
        );
        let part = curl(&ca, &url, &["-r", "6000000-6000099"]).await?;
        ensure!(part.status == 206, "range: {}", part.status);
        ensure!(
            part.body == bytes[6_000_000..6_000_100],
            "range bytes differ"
        );

        let stored = objects(&mut s3).await?;
        ensure!(stored.len() == 1, "objects in the bucket: {stored:?}");
        let (key, size) = &stored[0];
        ensure!(
            key.starts_with(&format!("{PREFIX}/sha256/")) && *size == bytes.len() as u64,
            "{stored:?}"
        );

        // The same bytes again under another name: a second file, the same object.
        let again = dir.path().join("copy.bin");
        std::fs::write(&again, &bytes)?;
        let url2 = uploaded_url(&upload_py(&server, "alice", &again, None).await?)?;
        ensure!(url2 != url, "a second upload gets its own URL");
        ensure!(
            curl(&ca, &url2, &[]).await?.body == bytes,
            "the copy downloads"
        );
        ensure!(objects(&mut s3).await? == stored, "deduplicated");
        Ok(())
    }
    .await;
    must(r);
}
