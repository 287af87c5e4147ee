//! Helpers shared by the SIP room tests (`sip_pager.rs`, `sip_commands.rs`,
//! `sip_conference.rs`, `sip_kamailio.rs` …): a server with users whose password is
//! `<user>-pw`, logged-in XMPP clients, registered SIP clients (and a REGISTER sent without
//! credentials), and waits for what a user sees — MESSAGEs from a room, occupant presence on
//! the XMPP side.
#![allow(dead_code)]

use anyhow::{anyhow, ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;
use palaver_e2e::raw_client::RawClient;
use palaver_e2e::sip_client::{InboundRequest, Method, Response};
use palaver_e2e::{
    xml, ServerOptions, SipClient, SipTransport, Store, TestServer, MUC_DOMAIN, STEP_TIMEOUT,
};

/// `sip:name@conference.localhost`.
pub fn room_uri(name: &str) -> String {
    format!("sip:{name}@{MUC_DOMAIN}")
}

/// The password every test user gets.
pub fn password(user: &str) -> String {
    palaver_e2e::password_of(user)
}

/// Starts a server and adds `users` (`alice` → `alice@localhost`, password `alice-pw`).
pub async fn start(store: Store, users: &[&str]) -> TestServer {
    start_with(store, ServerOptions::default(), users).await
}

/// [`start`] with extra configuration.
pub async fn start_with(store: Store, opts: ServerOptions, users: &[&str]) -> TestServer {
    TestServer::start_with_users(store, opts, users).await
}

/// An XMPP session of `user` (resource `raw`), available.
pub async fn xmpp(server: &TestServer, user: &str) -> Result<RawClient> {
    palaver_e2e::xmpp_available(server, user).await
}

/// A SIP client of `user` on `transport`, registered for 600 s (the digest dance is checked).
pub async fn sip(server: &TestServer, transport: SipTransport, user: &str) -> Result<SipClient> {
    let mut c = SipClient::connect_to(server, transport, user, &password(user)).await?;
    let code = c.register(600).await?;
    ensure!(code == 200, "REGISTER of {user} over {transport}: {code}");
    Ok(c)
}

/// `user` registered over UDP on node `id` of a pool.
pub async fn sip_on(
    pool: &palaver_e2e::pool::SharedPool,
    id: &str,
    user: &str,
) -> Result<SipClient> {
    sip(pool.node(id)?, SipTransport::Udp, user)
        .await
        .with_context(|| format!("SIP registration of {user} on {id}"))
}

/// Sends a REGISTER (our Contact, `Expires: 600`) without credentials, bypassing the client's
/// digest answering, and returns the server's answer (through a proxy: whatever comes back).
pub async fn register_without_credentials(c: &mut SipClient) -> Result<Response> {
    let request = c
        .request_builder(Method::Register, "sip:localhost")
        .to(&c.aor(), None, None)
        .contact(&c.contact())
        .header("Expires", "600")
        .build()
        .map_err(|e| anyhow!("building REGISTER: {e}"))?;
    c.send_raw(&request.bytes).await?;
    c.recv_raw_response(STEP_TIMEOUT).await
}

/// Sends a MESSAGE with `text` (text/plain) to `to`; returns the final response.
pub async fn message(c: &mut SipClient, to: &str, text: &str) -> Result<Response> {
    c.request(
        Method::Message,
        to,
        &[],
        Some("text/plain;charset=UTF-8"),
        text.as_bytes(),
    )
    .await
    .with_context(|| format!("MESSAGE to {to}"))
}

/// alice's MESSAGE with `text` to bob at `to`: requires the 200 (`what` names the hop in
/// errors), waits for `bob` to receive it and requires it from `sip:alice@localhost` with the
/// Call-ID alice sent; returns alice's response and the request bob got.
pub async fn alice_to_bob(
    alice: &mut SipClient,
    bob: &mut SipClient,
    to: &str,
    text: &str,
    what: &str,
) -> Result<(Response, InboundRequest)> {
    let r = message(alice, to, text).await?;
    ensure!(r.code == 200, "{what}: {r}");
    let got = bob
        .wait_message(|m| m.body == text, STEP_TIMEOUT)
        .await
        .context("bob waiting for alice's MESSAGE")?;
    ensure!(got.from == "sip:alice@localhost", "From: {}", got.from);
    ensure!(
        got.message.call_id() == r.message.call_id(),
        "Call-ID changed: {} vs {}",
        got.message.call_id(),
        r.message.call_id()
    );
    Ok((r, got))
}

/// Sends `body` (text/plain) to the room `name`; returns the final response.
pub async fn send(c: &mut SipClient, name: &str, body: &str) -> Result<Response> {
    message(c, &room_uri(name), body).await
}

/// Sends `body` to the room `name` and fails unless the status is `code`.
pub async fn send_expect(c: &mut SipClient, name: &str, body: &str, code: u16) -> Result<()> {
    let r = send(c, name, body).await?;
    ensure!(
        r.code == code,
        "{body:?} to {name}: expected {code}, got {r}\n{}",
        r.body_text()
    );
    Ok(())
}

/// The first MESSAGE from the room `name` whose body contains `needle`.
pub async fn text_from(c: &mut SipClient, name: &str, needle: &str) -> Result<InboundRequest> {
    let uri = room_uri(name);
    let needle_owned = needle.to_string();
    c.wait_message(
        |m| m.from == uri && m.body.contains(needle_owned.as_str()),
        STEP_TIMEOUT,
    )
    .await
    .map_err(|e| {
        e.context(format!(
            "waiting for a MESSAGE from {uri} containing {needle:?}"
        ))
    })
}

/// Waits for the presence of `room_jid/nick`: available (`true`) or unavailable (`false`).
pub async fn presence(
    c: &mut RawClient,
    room_jid: &str,
    nick: &str,
    available: bool,
) -> Result<Element> {
    let from = format!("{room_jid}/{nick}");
    let what = if available {
        "available"
    } else {
        "unavailable"
    };
    c.wait_for(STEP_TIMEOUT, &format!("{what} presence of {from}"), |el| {
        el.name == "presence"
            && el.attr("from") == Some(from.as_str())
            && (el.attr("type") == Some("unavailable")) != available
    })
    .await
}

/// The role in a MUC presence's `<item/>`.
pub fn role(p: &Element) -> Option<String> {
    xml::muc_item(p)
        .and_then(|i| i.attr("role"))
        .map(str::to_string)
}

/// Fails if any MESSAGE received so far (read or not) has a body containing `needle`.
pub fn none_contains(c: &mut SipClient, needle: &str) -> Result<()> {
    let all = c.drain_inbox();
    if let Some(m) = all.iter().find(|m| m.body.contains(needle)) {
        return Err(anyhow!("unexpected MESSAGE: {}", m.summary()));
    }
    Ok(())
}

/// Creates `room_jid` from the XMPP session `c` (as `nick`, who becomes its owner) and
/// submits the given `muc#roomconfig` fields.
pub async fn create_room(
    c: &mut RawClient,
    nick: &str,
    room_jid: &str,
    fields: &[(&str, &str)],
) -> Result<()> {
    let joined = c.join(room_jid, nick, None).await?.joined()?;
    ensure!(
        xml::muc_status_codes(&joined).contains(&201),
        "{room_jid} already existed: {}",
        xml::show(&joined)
    );
    let id = c.new_id();
    c.iq_ok(&format!(
        "<iq type='set' to='{room_jid}' id='{id}'>{}</iq>",
        xml::roomconfig_submit(fields)
    ))
    .await?;
    Ok(())
}
