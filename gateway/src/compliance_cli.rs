//! `palaver compliance verify|export|purge`: the compliance archive from the command line.
//! Each first moves what waits in the main store's outbox into the compliance database (so an
//! export holds everything acknowledged so far), then works on the compliance database named by
//! `[compliance] url`.

use crate::bootstrap;
use crate::config::Config;
use anyhow::{anyhow, bail, Context as _};
use clap::Subcommand;
use palaver_core::compliance::{self, ComplianceDb, Drainer, Filter, Format, Verdict};
use std::io::{IsTerminal, Write};

#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// Check the hash chain; exit status 1 and the first broken row when it does not hold
    Verify,
    /// Write events in seq order to standard output
    Export {
        /// Events at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z, or ms since the epoch)
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Events before this time (RFC 3339 or ms since the epoch)
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Only this room
        #[arg(long, value_name = "ROOM")]
        room: Option<String>,
        /// jsonl, csv or xml
        #[arg(long, default_value = "jsonl", value_name = "FORMAT")]
        format: String,
    },
    /// Delete the events before a time (retention); the chain stays verifiable
    Purge {
        /// RFC 3339 or ms since the epoch
        #[arg(long, value_name = "TIME")]
        before: String,
    },
}

/// A time given as RFC 3339 or as milliseconds since the Unix epoch.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| anyhow!("{s:?} is neither RFC 3339 nor ms since the epoch: {e}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).context("time out of range")
}

/// `palaver compliance …`
pub async fn run(mut config: Config, cmd: ComplianceCommand) -> anyhow::Result<()> {
    bootstrap::prepare_data_dir(&mut config)?;
    let url = config.compliance.url_or_default(&config.data_dir);
    if config.compliance.enabled {
        let store = bootstrap::open_store(&config).await?;
        let moved = Drainer::new(store, &url)
            .drain_all()
            .await
            .context("cannot move the outbox into the compliance database")?;
        if moved > 0 {
            eprintln!("compliance: {moved} queued events moved from the outbox");
        }
    }
    let db = ComplianceDb::open(&url)
        .await
        .with_context(|| format!("cannot open the compliance database {url}"))?;
    match cmd {
        ComplianceCommand::Verify => match db.verify().await? {
            Verdict::Ok { count, last_seq } => {
                println!("ok: {count} events, chain intact up to seq {last_seq}");
                Ok(())
            }
            Verdict::Broken { seq, reason } => bail!("chain broken at seq {seq}: {reason}"),
        },
        ComplianceCommand::Export {
            from,
            to,
            room,
            format,
        } => {
            let format = Format::parse(&format)
                .ok_or_else(|| anyhow!("unknown format {format:?} (jsonl, csv or xml)"))?;
            let filter = Filter {
                from: from.as_deref().map(parse_time).transpose()?,
                to: to.as_deref().map(parse_time).transpose()?,
                room,
            };
            let tty = std::io::stderr().is_terminal();
            // On a terminal: a bar with the total (counted first), rate and time left.
            let bar = if tty {
                let total = db.count(&filter).await?;
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} events, {per_sec}, {eta} left",
                    )
                    .map_err(|e| anyhow!("progress bar template: {e}"))?,
                );
                Some(bar)
            } else {
                None
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut progress = |n: u64| {
                if let Some(bar) = &bar {
                    if n.is_multiple_of(1000) {
                        bar.set_position(n);
                    }
                }
            };
            let n = compliance::export(&db, &filter, format, &mut out, &mut progress).await?;
            out.flush()?;
            if let Some(bar) = bar {
                bar.set_position(n);
                bar.finish();
                eprintln!("exported {n} events");
            }
            Ok(())
        }
        ComplianceCommand::Purge { before } => {
            let gone = db.purge(parse_time(&before)?).await?;
            println!("purged {gone} events");
            Ok(())
        }
    }
}
