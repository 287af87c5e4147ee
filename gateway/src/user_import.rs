//! `palaver user import FILE`: creates many accounts at once from `user:password` lines — the
//! way operators move users in from another server and the way benchmarks provision 100,000
//! load-test users. Password hashing (SCRAM salts and SIP digests) is CPU-bound, so it runs on
//! every core in blocking tasks; each hashed chunk is then stored in one transaction.

use crate::bootstrap::{now_millis, say};
use anyhow::{bail, Context as _};
use futures::stream::{self, StreamExt};
use palaver_core::{Store, UserId, UserRecord};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

/// Accounts hashed in one blocking task and stored in one transaction.
const CHUNK: usize = 512;

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub existing: usize,
}

/// Reads `user:password` lines; `user` without `@` is a local part of `domain`.
pub fn parse_lines(reader: impl Read, domain: &str) -> anyhow::Result<Vec<(UserId, String)>> {
    let mut out = Vec::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {}", n + 1))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            bail!("line {}: expected user:password", n + 1);
        };
        if password.is_empty() {
            bail!("line {}: the password must not be empty", n + 1);
        }
        let address = if user.contains('@') {
            user.to_string()
        } else {
            format!("{user}@{domain}")
        };
        let Some(id) = UserId::parse(&address) else {
            bail!("line {}: {address:?} is not a valid user address", n + 1);
        };
        out.push((id, password.to_string()));
    }
    Ok(out)
}

/// Hashes and stores every account; accounts that exist already are counted and skipped.
pub async fn import(
    store: Arc<dyn Store>,
    accounts: Vec<(UserId, String)>,
) -> anyhow::Result<ImportSummary> {
    let now = now_millis();
    let mut summary = ImportSummary::default();
    let total = accounts.len();
    let mut hashed_chunks = stream::iter(accounts.chunks(CHUNK).map(<[_]>::to_vec))
        .map(|chunk| tokio::task::spawn_blocking(move || hash_chunk(chunk, now)))
        .buffered(std::thread::available_parallelism().map_or(2, |n| n.get()));
    while let Some(records) = hashed_chunks.next().await {
        let records = records.context("a hashing task failed")?;
        let added = store
            .create_users(&records)
            .await
            .context("cannot store the accounts")?;
        let new = added.iter().filter(|a| **a).count();
        summary.added += new;
        summary.existing += added.len() - new;
        let done = summary.added + summary.existing;
        if done % 10_000 < CHUNK && done < total {
            eprintln!("palaver: {done}/{total} accounts imported");
        }
    }
    Ok(summary)
}

fn hash_chunk(chunk: Vec<(UserId, String)>, now: i64) -> Vec<UserRecord> {
    chunk
        .into_iter()
        .map(|(user, password)| palaver_core::credentials::new_user_record(user, &password, now))
        .collect()
}

/// `palaver user import FILE` (or `-` for standard input).
pub async fn run(store: Arc<dyn Store>, file: &Path, domain: &str) -> anyhow::Result<()> {
    let accounts = if file == Path::new("-") {
        parse_lines(std::io::stdin().lock(), domain)?
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        parse_lines(f, domain)?
    };
    let summary = import(store, accounts).await?;
    say(&format!(
        "{} accounts added, {} already existed",
        summary.added, summary.existing
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_local_parts_full_addresses_comments_and_blanks() {
        let text = "# users\nalice:secret\n\nbob@example.org:pa:ss\r\n";
        let got = parse_lines(text.as_bytes(), "localhost").expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.as_str(), "alice@localhost");
        assert_eq!(got[0].1, "secret");
        assert_eq!(got[1].0.as_str(), "bob@example.org");
        assert_eq!(got[1].1, "pa:ss");
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = parse_lines("ok:pw\nnocolon\n".as_bytes(), "localhost").expect_err("line 2");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse_lines("empty:\n".as_bytes(), "localhost").expect_err("line 1");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
