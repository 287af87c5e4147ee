//! A real HTTP client for the file tests: `curl` (trusting exactly the server's dev CA), run
//! with a time limit; returns the status, the response headers and the body.

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// What curl got.
#[derive(Debug)]
pub struct CurlResponse {
    pub status: u16,
    /// Header lines of the (last) response, as received.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl CurlResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Runs `curl -sS --cacert CA [args] URL` (at most 120 s).
pub async fn curl(ca: &Path, url: &str, args: &[&str]) -> Result<CurlResponse> {
    let dir = tempfile::tempdir()?;
    let (body, head) = (dir.path().join("body"), dir.path().join("head"));
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("curl")
            .args(["-sS", "--max-time", "110", "--cacert"])
            .arg(ca)
            .arg("-o")
            .arg(&body)
            .arg("-D")
            .arg(&head)
            .args(["-w", "%{http_code}"])
            .args(args)
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("curl took longer than 120 s")?
    .context("running curl (install it: apt-get install curl)")?;
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if status == 0 {
        bail!(
            "curl {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let headers = std::fs::read_to_string(&head)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    Ok(CurlResponse {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    })
}
