//! The users a load run logs in as: from a credentials file (`user:password` per line, the user
//! being a local part or a bare JID; blank lines and `#` comments skipped) or generated as
//! `<prefix><first_index>` … all with one password. With `occupants`, exactly
//! rooms × occupants users are used.

use super::config::Config;
use anyhow::{bail, Context, Result};

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Local part (also the nick in the room).
    pub name: String,
    pub password: String,
}

/// How many users the configuration asks for (`None`: every line of the credentials file).
fn wanted(cfg: &Config) -> Result<Option<usize>> {
    match (cfg.occupants, cfg.count) {
        (Some(k), Some(n)) if n != k * cfg.rooms.len() => bail!(
            "count {n} disagrees with {} rooms × {k} occupants (give one of them)",
            cfg.rooms.len()
        ),
        (Some(k), _) => Ok(Some(k * cfg.rooms.len())),
        (None, n) => Ok(n),
    }
}

/// Reads or generates the users.
pub fn load(cfg: &Config) -> Result<Vec<User>> {
    let wanted = wanted(cfg)?;
    let users = match &cfg.credentials {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut users = parse_credentials(&text, &cfg.domain)
                .with_context(|| format!("in {}", path.display()))?;
            if let Some(n) = wanted {
                if users.len() < n {
                    bail!(
                        "{} has {} users, the run needs {n}",
                        path.display(),
                        users.len()
                    );
                }
                users.truncate(n);
            }
            users
        }
        None => {
            let Some(password) = &cfg.password else {
                bail!(
                    "give --credentials FILE or --password (users {}N)",
                    cfg.user_prefix
                );
            };
            let n = wanted.unwrap_or(100);
            (cfg.first_index..cfg.first_index + n)
                .map(|i| User {
                    name: format!("{}{i}", cfg.user_prefix),
                    password: password.clone(),
                })
                .collect()
        }
    };
    if users.is_empty() {
        bail!("no users");
    }
    Ok(users)
}

/// Parses `user:password` lines; a `user@domain` must be of `domain`.
pub fn parse_credentials(text: &str, domain: &str) -> Result<Vec<User>> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            bail!("line {}: expected user:password", n + 1);
        };
        let user = user.trim();
        let name = match user.split_once('@') {
            Some((local, d)) if d == domain => local,
            Some((_, d)) => bail!("line {}: user of domain {d}, not {domain}", n + 1),
            None => user,
        };
        if name.is_empty() {
            bail!("line {}: empty user name", n + 1);
        }
        users.push(User {
            name: name.to_string(),
            password: password.to_string(),
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_lines() {
        let users = parse_credentials(
            "# users\nalice:pw:with:colons\n\nbob@localhost:x\r\n",
            "localhost",
        )
        .expect("parses");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].password, "pw:with:colons");
        assert_eq!(users[1].name, "bob");
        assert!(parse_credentials("carol@elsewhere:x", "localhost").is_err());
        assert!(parse_credentials("nocolon", "localhost").is_err());
    }
}
