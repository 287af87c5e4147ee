//! What every SIP bad-input test needs: a server with users, SIP and XMPP clients, raw
//! requests built from a valid one, and the bystanders — an XMPP client and a well-behaved
//! SIP client in the lobby — whose posts must still be delivered after the abuse.

use anyhow::{bail, ensure, Context as _, Result};
use palaver_dialects::sip::request::{new_call_id, new_tag};
use palaver_dialects::sip::RequestBuilder;
use palaver_e2e::raw_client::RawClient;
use palaver_e2e::sip_client::{show, Method, Response};
use palaver_e2e::{room_jid, ServerOptions, SipClient, SipTransport, Store, TestServer};
use std::net::IpAddr;
use std::time::Duration;

/// The bound of one expected reply.
pub const WAIT: Duration = palaver_e2e::STEP_TIMEOUT;

/// `lobby@conference.localhost`.
pub fn lobby() -> String {
    room_jid("lobby")
}

/// `sip:lobby@conference.localhost`.
pub fn lobby_uri() -> String {
    format!("sip:{}", lobby())
}

/// Another loopback source address (Linux routes all of 127/8 to lo).
pub fn other_ip() -> IpAddr {
    [127, 0, 0, 2].into()
}

pub fn password(user: &str) -> String {
    palaver_e2e::password_of(user)
}

/// A SQLite server with `[sip]` extras and these users (password [`password`]).
pub async fn server(users: &[&str], sip_extra: &str) -> TestServer {
    let opts = ServerOptions {
        sip_extra: sip_extra.to_string(),
        ..ServerOptions::default()
    };
    TestServer::start_with_users(Store::Sqlite, opts, users).await
}

/// A SIP client of `user` (right password) from loopback or `from`.
pub async fn sip(
    server: &TestServer,
    transport: SipTransport,
    user: &str,
    from: Option<IpAddr>,
) -> Result<SipClient> {
    SipClient::connect_from(
        from,
        transport,
        server.sip_addr(transport),
        user,
        &password(user),
        &server.ca_path(),
    )
    .await
}

/// A SIP client of `user` that registered and joined the lobby as `user`.
pub async fn sip_in_lobby(
    server: &TestServer,
    transport: SipTransport,
    user: &str,
    from: Option<IpAddr>,
) -> Result<SipClient> {
    let mut c = sip(server, transport, user, from).await?;
    let code = c.register(600).await?;
    ensure!(code == 200, "{user}: REGISTER got {code}");
    let code = c.message(&lobby_uri(), &format!("#join {user}")).await?;
    ensure!(code == 200, "{user}: #join got {code}");
    Ok(c)
}

/// An XMPP client of `user` in the lobby as `user`.
pub async fn xmpp_in_lobby(server: &TestServer, user: &str) -> Result<RawClient> {
    let mut c = RawClient::login(
        server.starttls_addr(),
        &server.ca_path(),
        user,
        &password(user),
        "raw",
    )
    .await?;
    c.join(&lobby(), user, None).await?.joined()?;
    Ok(c)
}

/// An XMPP client and a SIP client in the lobby, the sessions bad input must not harm.
pub struct Bystanders {
    pub xmpp: RawClient,
    pub sip: SipClient,
    checks: u32,
}

impl Bystanders {
    /// Users `xavier` (XMPP) and `sally` (SIP over `transport`, from loopback or `from`); the
    /// server must have both.
    pub async fn join(
        server: &TestServer,
        transport: SipTransport,
        from: Option<IpAddr>,
    ) -> Result<Bystanders> {
        let xmpp = xmpp_in_lobby(server, "xavier").await?;
        let sip = sip_in_lobby(server, transport, "sally", from).await?;
        Ok(Bystanders::new(xmpp, sip))
    }

    /// Bystanders already in the lobby.
    pub fn new(xmpp: RawClient, sip: SipClient) -> Bystanders {
        Bystanders {
            xmpp,
            sip,
            checks: 0,
        }
    }

    /// Both still work: a SIP post reaches the XMPP client, an XMPP post the SIP client.
    pub async fn still_work(&mut self) -> Result<()> {
        self.checks += 1;
        let n = self.checks;
        let text = format!("sally still here {n}");
        let code = self.sip.message(&lobby_uri(), &text).await?;
        ensure!(code == 200, "the bystander's SIP post got {code}");
        self.xmpp
            .wait_groupchat(&lobby(), &text)
            .await
            .context("the bystander's SIP post did not reach the XMPP client")?;
        let text = format!("xavier still here {n}");
        self.xmpp.say(&lobby(), &text).await?;
        let want = format!("xavier: {text}");
        self.sip
            .wait_message(|m| m.body == want, WAIT)
            .await
            .context("the XMPP post did not reach the SIP bystander")?;
        Ok(())
    }
}

/// The bodies in the lobby's archive (MAM), oldest first.
pub async fn archived(xmpp: &mut RawClient) -> Result<Vec<String>> {
    let (items, _) = xmpp.mam_all(&lobby(), 100).await?;
    Ok(items.into_iter().filter_map(|i| i.body).collect())
}

/// Fails unless the archive holds every one of `posted` and no body containing `marker`.
pub async fn archive_check(xmpp: &mut RawClient, marker: &str, posted: &[&str]) -> Result<()> {
    let bodies = archived(xmpp).await?;
    let found: Vec<&String> = bodies.iter().filter(|b| b.contains(marker)).collect();
    ensure!(found.is_empty(), "stored although refused: {found:?}");
    for want in posted {
        ensure!(
            bodies.iter().any(|b| b == want),
            "{want:?} is not in the archive: {bodies:?}"
        );
    }
    Ok(())
}

/// A valid request from `c` as text (fresh Call-ID, tag and branch), with a text/plain body
/// when `body` is given.
pub fn request_text(c: &SipClient, method: Method, uri: &str, body: Option<&str>) -> String {
    let mut b = c.request_builder(method, uri);
    if let Some(body) = body {
        b = b.body("text/plain;charset=UTF-8", body.as_bytes());
    }
    match b.build() {
        Ok(r) => String::from_utf8_lossy(&r.bytes).into_owned(),
        Err(e) => panic!("building {method} {uri}: {e}"),
    }
}

/// A REGISTER (fresh branch) of `c`'s address of record for its Contact, with `headers`
/// (`Authorization`, `User-Agent` …).
pub fn register_request(
    c: &SipClient,
    call_id: &str,
    cseq: u32,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let aor = c.aor();
    let mut b = RequestBuilder::new(Method::Register, "sip:localhost")
        .from(&aor, None, &new_tag())
        .to(&aor, None, None)
        .call_id(call_id)
        .cseq(cseq)
        .via(c.transport().via_token(), &c.local_addr().to_string())
        .contact(&c.contact())
        .header("Expires", "600");
    for (name, value) in headers {
        b = b.header(name, value);
    }
    match b.build() {
        Ok(r) => r.bytes,
        Err(e) => panic!("building REGISTER: {e}"),
    }
}

/// A fresh Call-ID.
pub fn call_id() -> String {
    new_call_id()
}

/// Sends `bytes` raw and returns the next unclaimed response.
pub async fn exchange(c: &mut SipClient, bytes: &[u8]) -> Result<Response> {
    c.send_raw(bytes).await?;
    c.recv_raw_response(WAIT).await
}

/// [`exchange`], requiring status `code`.
pub async fn expect_status(c: &mut SipClient, bytes: &[u8], code: u16) -> Result<Response> {
    let what = first_line(bytes);
    let r = exchange(c, bytes)
        .await
        .with_context(|| format!("sent {what:?}"))?;
    if r.code != code {
        bail!("{what:?} got {r}, wanted {code}:\n{}", show(&r.raw));
    }
    Ok(r)
}

/// The first line of a message, for failure texts.
pub fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect()
}
