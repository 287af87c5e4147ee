//! `load`: connects clients one after another (STARTTLS + PLAIN + bind + MUC join), keeps them
//! idle, and reports the connect+join time and, given the server's pid, its resident memory.

use crate::client::{tls_config, Client};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Server address (host:port of the STARTTLS listener).
    #[arg(long)]
    server: String,
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// CA certificate to trust.
    #[arg(long)]
    ca: PathBuf,
    /// Users are PREFIX1 … PREFIXn, all with --password.
    #[arg(long, default_value = "load")]
    user_prefix: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value_t = 100)]
    count: u32,
    /// Room to join (`room@service`).
    #[arg(long, default_value = "lobby@conference.localhost")]
    room: String,
    /// Keep the sessions idle this long after all are connected.
    #[arg(long, default_value_t = 2)]
    hold_secs: u64,
    /// The server's pid, to report its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub async fn run(args: LoadArgs) -> Result<()> {
    let tls = tls_config(&args.ca)?;
    let rss_before = args.pid.and_then(rss_kib);
    let started = Instant::now();
    let mut clients = Vec::with_capacity(args.count as usize);
    let mut slowest = Duration::ZERO;
    for i in 1..=args.count {
        let t = Instant::now();
        let user = format!("{}{i}", args.user_prefix);
        let mut c = Client::login(
            &args.server,
            &args.domain,
            tls.clone(),
            &user,
            &args.password,
        )
        .await
        .with_context(|| format!("client {i}"))?;
        c.join(&format!("{}/{user}", args.room), 0)
            .await
            .with_context(|| format!("client {i} join"))?;
        slowest = slowest.max(t.elapsed());
        clients.push(c);
    }
    let total = started.elapsed();
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let rss_after = args.pid.and_then(rss_kib);
    let per = total.as_secs_f64() * 1000.0 / f64::from(args.count.max(1));
    if args.json {
        println!(
            "{{\"clients\":{},\"connect_join_total_ms\":{:.1},\"per_client_ms\":{per:.2},\"slowest_ms\":{:.1},\"rss_before_kib\":{},\"rss_after_kib\":{}}}",
            args.count,
            total.as_secs_f64() * 1000.0,
            slowest.as_secs_f64() * 1000.0,
            rss_before.map_or("null".into(), |v| v.to_string()),
            rss_after.map_or("null".into(), |v| v.to_string()),
        );
    } else {
        println!("clients connected+joined sequentially: {}", args.count);
        println!(
            "total: {:.2} s, per client: {per:.2} ms, slowest: {:.1} ms",
            total.as_secs_f64(),
            slowest.as_secs_f64() * 1000.0
        );
        if let (Some(b), Some(a)) = (rss_before, rss_after) {
            println!(
                "server RSS: {b} KiB before, {a} KiB with {} idle sessions ({:.1} KiB per session)",
                args.count,
                (a.saturating_sub(b)) as f64 / f64::from(args.count.max(1))
            );
        }
    }
    drop(clients);
    Ok(())
}
