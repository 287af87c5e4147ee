//! The administrative CLI against a temporary data directory: `palaver user add|passwd|del|list`,
//! `room create|list|delete`, `category create|list`, with their exit codes and output; a user
//! added by the CLI logs in and a password change invalidates the old password; `--data-dir`,
//! `--config` and `PALAVER_CONFIG` select the data; `serve` tells the user what they need.

use palaver_e2e::raw_client::{RawClient, SaslOutcome};
use palaver_e2e::server::{run_cli_raw, CliOutput};
use palaver_e2e::xml;
use palaver_e2e::{must, ServerOptions, Store, TestServer};

fn prepared() -> TestServer {
    TestServer::prepare(Store::Sqlite, ServerOptions::default()).expect("data dir and config")
}

fn lines(out: &CliOutput) -> Vec<String> {
    out.stdout.lines().map(|l| l.trim().to_string()).collect()
}

/// The first column of a table printed by `room list` / `category list` (header skipped).
fn first_column(out: &CliOutput) -> Vec<String> {
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn expect_failure(out: &CliOutput, what: &str, stderr_has: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !out.success(),
        "{what} should fail, but exited 0: {}",
        out.stdout
    );
    anyhow::ensure!(
        out.stderr
            .to_lowercase()
            .contains(&stderr_has.to_lowercase()),
        "{what}: stderr should mention {stderr_has:?}, got: {}",
        out.stderr
    );
    Ok(())
}

#[tokio::test]
async fn cli_user_add_passwd_del_list() {
    let server = prepared();
    must(
        async {
            let out = server.cli(&["user", "list"]).await?.ok()?;
            anyhow::ensure!(
                out.stdout.trim().is_empty(),
                "fresh data dir lists users: {}",
                out.stdout
            );

            let out = server
                .cli(&["user", "add", "alice@localhost", "--password", "one"])
                .await?
                .ok()?;
            anyhow::ensure!(
                out.stdout.contains("alice@localhost"),
                "user add output: {}",
                out.stdout
            );
            let out = server
                .cli(&["user", "add", "alice@localhost", "--password", "again"])
                .await?;
            expect_failure(&out, "adding alice twice", "already exists")?;
            server
                .cli(&["user", "add", "bob@localhost", "--password", "two"])
                .await?
                .ok()?;

            let out = server.cli(&["user", "list"]).await?.ok()?;
            let mut users = lines(&out);
            users.sort();
            anyhow::ensure!(
                users == ["alice@localhost", "bob@localhost"],
                "user list: {users:?}"
            );

            server
                .cli(&["user", "passwd", "alice@localhost", "--password", "three"])
                .await?
                .ok()?;
            let out = server
                .cli(&["user", "passwd", "nobody@localhost", "--password", "x"])
                .await?;
            expect_failure(&out, "passwd of a missing user", "no user")?;

            server.cli(&["user", "del", "bob@localhost"]).await?.ok()?;
            let out = server.cli(&["user", "list"]).await?.ok()?;
            anyhow::ensure!(
                lines(&out) == ["alice@localhost"],
                "after del: {}",
                out.stdout
            );
            let out = server.cli(&["user", "del", "bob@localhost"]).await?;
            expect_failure(&out, "deleting bob twice", "no user")?;

            let out = server
                .cli(&["user", "add", "not-an-address", "--password", "x"])
                .await?;
            expect_failure(&out, "adding an invalid address", "not-an-address")?;
            let out = server.cli(&["user", "add", "carol@localhost"]).await?;
            anyhow::ensure!(!out.success(), "user add without a password succeeded");
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn cli_room_and_category_create_list_delete() {
    let mut server = prepared();
    must(
        async {
            server
                .cli(&[
                    "category",
                    "create",
                    "Engineering",
                    "--description",
                    "Builders",
                    "--creators",
                    "@localhost",
                    "--members",
                    "*",
                ])
                .await?
                .ok()?;
            let out = server.cli(&["category", "list"]).await?.ok()?;
            anyhow::ensure!(
                first_column(&out).contains(&"Engineering".to_string()),
                "category list: {}",
                out.stdout
            );
            let out = server.cli(&["category", "create", "Engineering"]).await?;
            expect_failure(&out, "creating Engineering twice", "already exists")?;

            let out = server
                .cli(&[
                    "room",
                    "create",
                    "standup",
                    "--category",
                    "Engineering",
                    "--title",
                    "Daily standup",
                ])
                .await?
                .ok()?;
            anyhow::ensure!(
                out.stdout.contains("standup@conference.localhost"),
                "room create output: {}",
                out.stdout
            );
            let out = server.cli(&["room", "list"]).await?.ok()?;
            let row = out
                .stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some("standup"))
                .ok_or_else(|| anyhow::anyhow!("standup not in room list: {}", out.stdout))?;
            anyhow::ensure!(
                row.contains("Engineering") && row.contains("Daily standup"),
                "room list row: {row}"
            );
            let out = server.cli(&["room", "create", "standup"]).await?;
            expect_failure(&out, "creating standup twice", "already exists")?;
            let out = server
                .cli(&["room", "create", "orphan", "--category", "Nope"])
                .await?;
            expect_failure(&out, "a room in a missing category", "Nope")?;

            server.cli(&["room", "delete", "standup"]).await?.ok()?;
            let out = server.cli(&["room", "list"]).await?.ok()?;
            anyhow::ensure!(
                !first_column(&out).contains(&"standup".to_string()),
                "standup still listed: {}",
                out.stdout
            );
            let out = server.cli(&["room", "delete", "standup"]).await?;
            expect_failure(&out, "deleting standup twice", "no room")?;

            // The first start creates the default category and room next to ours.
            server.start_again().await?;
            server.stop().await?;
            let out = server.cli(&["category", "list"]).await?.ok()?;
            let cats = first_column(&out);
            anyhow::ensure!(
                cats.contains(&"General".to_string()) && cats.contains(&"Engineering".to_string()),
                "categories after the first start: {cats:?}"
            );
            let out = server.cli(&["room", "list"]).await?.ok()?;
            anyhow::ensure!(
                first_column(&out).contains(&"lobby".to_string()),
                "rooms after the first start: {}",
                out.stdout
            );
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn cli_user_can_log_in_and_passwd_invalidates_the_old_password() {
    let mut server = prepared();
    must(async {
        server
            .cli(&["user", "add", "dave@localhost", "--password", "first-pw"])
            .await?
            .ok()?;
        server
            .cli(&["room", "create", "retro", "--title", "Retrospective"])
            .await?
            .ok()?;
        server.start_again().await?;
        let addr = server.starttls_addr();
        let ca = server.ca_path();

        let mut c = RawClient::login(addr, &ca, "dave", "first-pw", "cli").await?;
        let items = c
            .iq_ok("<iq type='get' to='conference.localhost' id='items'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
            .await?;
        let query = items
            .get_child("query", "http://jabber.org/protocol/disco#items")
            .ok_or_else(|| anyhow::anyhow!("no disco#items query: {}", xml::show(&items)))?;
        let rooms: Vec<&str> = query.children().filter_map(|i| i.attr("jid")).collect();
        anyhow::ensure!(
            rooms.contains(&"retro@conference.localhost")
                && rooms.contains(&"lobby@conference.localhost"),
            "rooms listed: {rooms:?}"
        );

        // Change the password while the server runs.
        server
            .cli(&["user", "passwd", "dave@localhost", "--password", "second-pw"])
            .await?
            .ok()?;
        let mut c = RawClient::connect_tls(addr, &ca).await?;
        let outcome = c.auth_plain("dave", "first-pw").await?;
        anyhow::ensure!(
            outcome == SaslOutcome::Failure("not-authorized".into()),
            "the old password after passwd: {outcome:?}"
        );
        let outcome = c.auth_plain("dave", "second-pw").await?;
        anyhow::ensure!(outcome == SaslOutcome::Success, "the new password: {outcome:?}");

        // A deleted user can no longer log in.
        server.cli(&["user", "del", "dave@localhost"]).await?.ok()?;
        let mut c = RawClient::connect_tls(addr, &ca).await?;
        let outcome = c.auth_plain("dave", "second-pw").await?;
        anyhow::ensure!(
            outcome == SaslOutcome::Failure("not-authorized".into()),
            "a deleted user: {outcome:?}"
        );
        server.stop().await?;
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn cli_data_dir_flag_config_flag_and_palaver_config_env_select_the_data() {
    must(
        async {
            let tmp = tempfile::tempdir()?;
            let data = tmp.path().join("data");
            let data_s = data.display().to_string();
            let out = run_cli_raw(
                &[
                    "user",
                    "add",
                    "erin@localhost",
                    "--password",
                    "x",
                    "--data-dir",
                    &data_s,
                ],
                tmp.path(),
                &[],
            )
            .await?
            .ok()?;
            anyhow::ensure!(out.stdout.contains("erin@localhost"), "{}", out.stdout);
            anyhow::ensure!(
                data.join("palaver.db").is_file(),
                "no palaver.db in the --data-dir"
            );
            let out = run_cli_raw(&["user", "list", "--data-dir", &data_s], tmp.path(), &[])
                .await?
                .ok()?;
            anyhow::ensure!(lines(&out) == ["erin@localhost"], "{}", out.stdout);

            let config = tmp.path().join("elsewhere.toml");
            std::fs::write(&config, format!("data_dir = {:?}\n", data_s))?;
            let out = run_cli_raw(
                &["user", "list"],
                tmp.path(),
                &[("PALAVER_CONFIG", &config)],
            )
            .await?
            .ok()?;
            anyhow::ensure!(
                lines(&out) == ["erin@localhost"],
                "PALAVER_CONFIG: {}",
                out.stdout
            );
            let config_s = config.display().to_string();
            let out = run_cli_raw(&["user", "list", "--config", &config_s], tmp.path(), &[])
                .await?
                .ok()?;
            anyhow::ensure!(
                lines(&out) == ["erin@localhost"],
                "--config: {}",
                out.stdout
            );

            let missing = tmp.path().join("missing.toml").display().to_string();
            let out = run_cli_raw(&["user", "list", "--config", &missing], tmp.path(), &[]).await?;
            expect_failure(&out, "a missing config file", "missing.toml")?;
            let bad = tmp.path().join("bad.toml");
            std::fs::write(&bad, "no_such_key = 1\n")?;
            let bad_s = bad.display().to_string();
            let out = run_cli_raw(&["user", "list", "--config", &bad_s], tmp.path(), &[]).await?;
            expect_failure(&out, "a config file with an unknown key", "bad.toml")?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn serve_prints_its_ports_the_ca_to_trust_and_how_to_add_a_user() {
    let mut server = TestServer::start(Store::Sqlite)
        .await
        .expect("server starts");
    must(
        async {
            let out = server.stdout_lines().join("\n");
            let ca = server.ca_path();
            anyhow::ensure!(ca.is_file(), "no dev CA at {}", ca.display());
            palaver_e2e::tls::client_config(&ca)?;
            for want in [
                format!(
                    "palaver: listening xmpp-starttls {}",
                    server.starttls_addr()
                ),
                format!("palaver: listening xmpp-tls {}", server.direct_tls_addr()),
                ca.display().to_string(),
                "palaver user add".to_string(),
            ] {
                anyhow::ensure!(out.contains(&want), "serve output lacks {want:?}:\n{out}");
            }
            server.stop().await?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn cli_config_check_points_at_the_bad_key() {
    must(
        async {
            let tmp = tempfile::tempdir()?;
            let file = tmp.path().join("palaver.toml");
            let file_s = file.display().to_string();
            let args = ["--config", file_s.as_str(), "config", "check"];
            let check = || run_cli_raw(&args, tmp.path(), &[]);

            std::fs::write(
                &file,
                "domain = \"chat.example.org\"\n[xmpp]\nmax_connections_per_ip = 3\n",
            )?;
            let out = check().await?.ok()?;
            anyhow::ensure!(
                out.stdout.trim() == format!("ok: {file_s} (domain chat.example.org)"),
                "{}",
                out.stdout
            );

            std::fs::write(
                &file,
                "domain = \"chat.example.org\"\n[xmpp]\nmax_conections_per_ip = 3\n",
            )?;
            let out = check().await?;
            anyhow::ensure!(!out.success(), "a misspelt key passed: {}", out.stdout);
            anyhow::ensure!(
                out.stderr.contains("line 3")
                    && out.stderr.contains("unknown field `max_conections_per_ip`")
                    && out.stderr.contains("`max_connections_per_ip`"),
                "{}",
                out.stderr
            );

            std::fs::write(&file, "[sip]\nmin_expires = \"soon\"\n")?;
            let out = check().await?;
            anyhow::ensure!(
                !out.success()
                    && out.stderr.contains("line 2")
                    && out.stderr.contains("invalid type"),
                "{}",
                out.stderr
            );

            let missing = tmp.path().join("missing.pem").display().to_string();
            std::fs::write(
                &file,
                format!("[tls]\ncert = {missing:?}\nkey = {missing:?}\n"),
            )?;
            let out = check().await?;
            anyhow::ensure!(
                !out.success()
                    && out.stderr.contains("tls.cert")
                    && out.stderr.contains("missing.pem"),
                "{}",
                out.stderr
            );
            Ok(())
        }
        .await,
    );
}
