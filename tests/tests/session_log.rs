//! The operator's log: one `session open` and one `session closed` line per client session,
//! with the protocol, the peer, the user and (on close) the reason — for an XMPP client that
//! logs in and leaves, and a SIP client that registers and unregisters.

mod sip_common;

use palaver_e2e::{must, ServerOptions, SipTransport, Store, TestServer};
use std::time::{Duration, Instant};

fn lines_with(server: &TestServer, words: &[&str]) -> Vec<String> {
    server
        .stderr_log()
        .lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .map(str::to_string)
        .collect()
}

async fn wait_line(server: &TestServer, words: &[&str]) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = lines_with(server, words).pop() {
            return Ok(l);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no log line with {words:?}:\n{}",
            server.stderr_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sessions_open_and_close_in_the_log() {
    let server =
        TestServer::start_with_users(Store::Sqlite, ServerOptions::default(), &["alice", "bob"])
            .await;
    let r = async {
        let mut alice = palaver_e2e::xmpp_available(&server, "alice").await?;
        let open = wait_line(&server, &["session open", "protocol=\"xmpp\""]).await?;
        anyhow::ensure!(
            open.contains("alice@localhost/raw") && open.contains("peer=127.0.0.1:"),
            "{open}"
        );
        alice.send_str("</stream:stream>").await?;
        let closed = wait_line(&server, &["session closed", "protocol=\"xmpp\""]).await?;
        anyhow::ensure!(
            closed.contains("alice@localhost/raw") && closed.contains("reason="),
            "{closed}"
        );

        let mut bob = sip_common::sip(&server, SipTransport::Tcp, "bob").await?;
        let open = wait_line(&server, &["session open", "protocol=\"sip\""]).await?;
        anyhow::ensure!(
            open.contains("bob@localhost") && open.contains("transport=\"tcp\""),
            "{open}"
        );
        // A refresh is not a new session.
        anyhow::ensure!(bob.register(600).await? == 200, "refresh");
        anyhow::ensure!(bob.unregister().await? == 200, "unregister");
        let closed = wait_line(&server, &["session closed", "protocol=\"sip\""]).await?;
        anyhow::ensure!(
            closed.contains("bob@localhost") && closed.contains("unregistered"),
            "{closed}"
        );
        anyhow::ensure!(
            lines_with(&server, &["session open", "protocol=\"sip\""]).len() == 1,
            "{}",
            server.stderr_log()
        );
        Ok(())
    }
    .await;
    must(r);
}
