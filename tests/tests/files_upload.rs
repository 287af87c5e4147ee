//! Files posted to rooms (issue 8), end to end: slixmpp's own XEP-0363 plugin asks
//! `upload.localhost` for a slot and PUTs the file over HTTPS (aiohttp), curl downloads it
//! (whole and by range) through the signed URL; on SQLite and PostgreSQL. Bad uploads: wrong
//! sizes, no Content-Length, a forged grant, a slot used twice, a body cut short, files over
//! the limit or the quota; and a server killed mid-upload leaves no partial file and no
//! metadata behind.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::curl::curl;
use palaver_e2e::python::{require_slixmpp, upload_py};
use palaver_e2e::{must, ServerOptions, SipTransport, Store, TestServer};
use serde_json::Value;
use sip_common::{send_expect, text_from};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file name a careless server would trip over.
const ODD_NAME: &str = "CON a:b ü.bin";

fn server_options(files_toml: &str) -> ServerOptions {
    ServerOptions {
        https: true,
        extra_toml: format!("[files]\n{files_toml}\n"),
        ..ServerOptions::default()
    }
}

/// `n` bytes that don't repeat in any short period.
fn content(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn event<'a>(events: &'a [Value], name: &str) -> Result<&'a Value> {
    events
        .iter()
        .find(|e| e["event"] == name)
        .with_context(|| format!("no {name} event in {events:?}"))
}

fn files_dir(server: &TestServer) -> PathBuf {
    server.data_dir().join("files")
}

/// Every file under `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn upload_and_download(store: Store) -> Result<()> {
    require_slixmpp().await?;
    let server = TestServer::start_with_users(store, server_options(""), &["alice"]).await;
    let r = async {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(ODD_NAME);
        let bytes = content(3_000_000);
        std::fs::write(&path, &bytes)?;
        let events = upload_py(&server, "alice", &path, None).await?;
        let service = event(&events, "service")?;
        ensure!(
            service["features"].as_array().is_some_and(|f| f.iter().any(|x| x == "urn:xmpp:http:upload:0")),
            "upload service features: {service}"
        );
        ensure!(service["identities"][0] == serde_json::json!(["store", "file"]), "{service}");
        ensure!(service["max"] == 104_857_600, "max-file-size: {service}");
        let url = event(&events, "uploaded")?["url"]
            .as_str()
            .context("no url")?
            .to_string();
        let https = server.https_addr().context("no https listener")?;
        ensure!(
            url.starts_with(&format!("https://localhost:{}/files/", https.port())),
            "{url}"
        );
        let ca = server.ca_path();
        let got = curl(&ca, &url, &[]).await?;
        ensure!(got.status == 200, "GET: {got:?}");
        ensure!(got.body == bytes, "downloaded {} bytes, not the file", got.body.len());
        let disposition = got.header("content-disposition").unwrap_or("");
        ensure!(
            disposition == "attachment; filename=\"CON a_b _.bin\"; filename*=UTF-8''CON%20a_b%20%C3%BC.bin",
            "Content-Disposition: {disposition}"
        );
        ensure!(got.header("x-content-type-options") == Some("nosniff"), "{:?}", got.headers);
        let part = curl(&ca, &url, &["-r", "1000-1999"]).await?;
        ensure!(part.status == 206, "range: {}", part.status);
        ensure!(part.body == bytes[1000..2000], "range bytes differ");
        ensure!(
            part.header("content-range") == Some("bytes 1000-1999/3000000"),
            "{:?}",
            part.headers
        );
        let beyond = curl(&ca, &url, &["-r", "3000000-"]).await?;
        ensure!(beyond.status == 416, "range past the end: {}", beyond.status);
        let forged = format!("{}AAAA", &url[..url.len() - 4]);
        ensure!(curl(&ca, &forged, &[]).await?.status == 403, "forged signature accepted");
        // Posted in a room (here by alice over SIP), the file is the room's: #files lists it
        // with a fresh link that downloads it.
        let mut sip = sip_common::sip(&server, SipTransport::Udp, "alice").await?;
        send_expect(&mut sip, "lobby", "#join", 200).await?;
        send_expect(&mut sip, "lobby", "#files", 200).await?;
        text_from(&mut sip, "lobby", "No files have been posted to lobby").await?;
        send_expect(&mut sip, "lobby", &format!("here it is: {url}"), 200).await?;
        send_expect(&mut sip, "lobby", "#files", 200).await?;
        let listing = text_from(&mut sip, "lobby", "Files posted to lobby").await?.body;
        let id = url.split("/files/").nth(1).and_then(|r| r.get(..36)).context("id")?;
        let line = listing
            .lines()
            .find(|l| l.contains(id))
            .with_context(|| format!("#files does not list {id}: {listing}"))?;
        ensure!(line.starts_with("CON a_b ü.bin (3000000 bytes, alice@localhost): https://"), "{line}");
        let fresh = line.rsplit(' ').next().context("link")?;
        ensure!(curl(&ca, fresh, &[]).await?.body == bytes, "the #files link");
        // On disk: one blob under its hash, nothing else.
        let stored = files_below(&files_dir(&server));
        ensure!(stored.len() == 1, "files on disk: {stored:?}");
        let name = stored[0].file_name().map(|n| n.to_string_lossy().to_string());
        ensure!(
            stored[0].to_string_lossy().contains("/files/sha256/") && name.is_some_and(|n| n.len() == 64),
            "{stored:?}"
        );
        Ok(())
    }
    .await;
    must(r);
    Ok(())
}

#[tokio::test]
async fn slixmpp_uploads_and_curl_downloads_on_sqlite() {
    must(upload_and_download(Store::Sqlite).await);
}

#[tokio::test]
async fn slixmpp_uploads_and_curl_downloads_on_postgres() {
    must(upload_and_download(Store::Postgres).await);
}

/// The PUT URL of a fresh 100-byte slot of alice's.
async fn slot(server: &TestServer, dir: &Path, size: u64) -> Result<(String, String)> {
    let events = upload_py(server, "alice", &dir.join("report.txt"), Some(size)).await?;
    let slot = event(&events, "slot")?;
    Ok((
        slot["put"].as_str().context("put")?.to_string(),
        slot["get"].as_str().context("get")?.to_string(),
    ))
}

/// Sends a PUT whose headers announce `declared` bytes but whose body has only `sent`, then
/// closes the connection.
async fn put_cut_short(server: &TestServer, url: &str, declared: usize, sent: usize) -> Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let https = server.https_addr().context("no https")?;
    let path = url
        .split_once(&format!(":{}", https.port()))
        .context("url")?
        .1;
    let tcp = tokio::net::TcpStream::connect(https).await?;
    let tls = tokio_rustls::TlsConnector::from(palaver_e2e::tls::client_config(&server.ca_path())?);
    let mut s = tls.connect(palaver_e2e::tls::server_name(), tcp).await?;
    s.write_all(
        format!("PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {declared}\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    s.write_all(&vec![b'x'; sent]).await?;
    s.flush().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing() {
    must(require_slixmpp().await);
    let server = TestServer::start_with_users(
        Store::Sqlite,
        server_options("max_file_bytes = 1000\nquota_bytes_per_user = 150"),
        &["alice"],
    )
    .await;
    let r = async {
        let dir = tempfile::tempdir()?;
        let ca = server.ca_path();
        for (name, size) in [("small", 50), ("large", 200), ("exact", 100)] {
            std::fs::write(dir.path().join(name), content(size))?;
        }
        let put_status = |url: String, name: &str| {
            let body = format!("@{}", dir.path().join(name).display());
            let ca = ca.clone();
            async move {
                let r = curl(&ca, &url, &["-X", "PUT", "--data-binary", &body]).await?;
                Ok::<u16, anyhow::Error>(r.status)
            }
        };
        let (put, get) = slot(&server, dir.path(), 100).await?;
        ensure!(
            put_status(put.clone(), "small").await? == 400,
            "short body accepted"
        );
        ensure!(
            put_status(put.clone(), "large").await? == 413,
            "long body accepted"
        );
        let chunked = vec![
            "-X",
            "PUT",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "abc",
        ];
        ensure!(
            curl(&ca, &put, &chunked).await?.status == 411,
            "no Content-Length accepted"
        );
        let forged = put.replace("&z=100&", "&z=50&");
        ensure!(
            put_status(forged, "small").await? == 403,
            "forged grant accepted"
        );
        put_cut_short(&server, &put, 100, 40).await?;
        ensure!(
            curl(&ca, &get, &[]).await?.status == 404,
            "a cut-short upload is visible"
        );
        ensure!(
            put_status(put.clone(), "exact").await? == 201,
            "upload refused"
        );
        ensure!(
            put_status(put.clone(), "exact").await? == 409,
            "slot used twice"
        );
        let got = curl(&ca, &get, &[]).await?;
        ensure!(
            got.status == 200 && got.body == content(100),
            "GET after upload: {}",
            got.status
        );
        // Over the size limit: refused with the limit (XEP-0363 §4.1); over the quota (100 of 150
        // bytes are used): resource-constraint.
        let events = upload_py(&server, "alice", &dir.path().join("big.iso"), Some(5000)).await?;
        let refused = event(&events, "refused")?;
        ensure!(
            refused["condition"] == "not-acceptable" && refused["max"] == 1000,
            "{refused}"
        );
        let events = upload_py(&server, "alice", &dir.path().join("more.bin"), Some(100)).await?;
        let refused = event(&events, "refused")?;
        ensure!(refused["condition"] == "resource-constraint", "{refused}");
        let stored = files_below(&files_dir(&server));
        ensure!(stored.len() == 1, "files on disk: {stored:?}");
        Ok(())
    }
    .await;
    must(r);
}

#[tokio::test]
async fn a_server_killed_mid_upload_leaves_no_partial_file() {
    must(require_slixmpp().await);
    let mut server =
        TestServer::start_with_users(Store::Sqlite, server_options(""), &["alice"]).await;
    let r = async {
        let dir = tempfile::tempdir()?;
        let size = 4_000_000;
        std::fs::write(dir.path().join("big"), content(size))?;
        let (put, get) = slot(&server, dir.path(), size as u64).await?;
        let ca = server.ca_path();
        let body = format!("@{}", dir.path().join("big").display());
        let upload = tokio::spawn(async move {
            curl(
                &ca,
                &put,
                &["-X", "PUT", "--limit-rate", "500k", "--data-binary", &body],
            )
            .await
        });
        // Wait until the upload is under way (a temporary file exists), then kill -9.
        let tmp = files_dir(&server).join("tmp");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while files_below(&tmp).is_empty() {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the upload never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let old_port = server.https_addr().context("https")?.port();
        server.kill().await?;
        let _ = upload.await;
        server.start_again().await?;
        // The restarted server listens on another port (port 0): same URL, new port.
        let new_port = server.https_addr().context("https")?.port();
        let get = get.replace(&format!(":{old_port}/"), &format!(":{new_port}/"));
        let got = curl(&server.ca_path(), &get, &[]).await?;
        ensure!(
            got.status == 404,
            "after the crash the file answers {}",
            got.status
        );
        let left = files_below(&files_dir(&server));
        ensure!(left.is_empty(), "left behind: {left:?}");
        Ok(())
    }
    .await;
    must(r);
}

/// The slot's URLs from an IQ result.
fn slot_urls(reply: &palaver_dialects::xmpp::element::Element) -> Result<(String, String)> {
    let slot = reply
        .children()
        .find(|c| c.name == "slot")
        .with_context(|| format!("no slot in {}", palaver_e2e::xml::show(reply)))?;
    let url = |name: &str| -> Result<String> {
        Ok(slot
            .children()
            .find(|c| c.name == name)
            .and_then(|c| c.attr("url"))
            .with_context(|| format!("no {name} url"))?
            .to_string())
    };
    Ok((url("put")?, url("get")?))
}

/// A slot asked of a room (XEP-0363 request sent to the room's address) is refused to someone
/// not in the room; for an occupant the file belongs to the room from the upload on (SIP's
/// `#files` lists it without the link ever being posted). The MUC service advertises the
/// upload feature and takes requests without a room too.
#[tokio::test]
async fn a_slot_asked_of_a_room_ties_the_file_to_it() {
    let server =
        TestServer::start_with_users(Store::Sqlite, server_options(""), &["alice", "bob"]).await;
    let r = async {
        let room = palaver_e2e::room_jid("papers");
        let muc = room.split('@').nth(1).context("muc domain")?.to_string();
        let mut alice = palaver_e2e::xmpp_available(&server, "alice").await?;
        alice.join(&room, "alice", None).await?.joined()?;
        let id = alice.new_id();
        alice
            .iq_ok(&format!(
                "<iq type='set' to='{room}' id='{id}'>{}</iq>",
                palaver_e2e::xml::roomconfig_submit(&[])
            ))
            .await?;
        let request = |to: &str, id: &str| {
            format!(
                "<iq type='get' to='{to}' id='{id}'><request xmlns='urn:xmpp:http:upload:0' \
                 filename='agenda.txt' size='11' content-type='text/plain'/></iq>"
            )
        };
        let mut bob = palaver_e2e::xmpp_available(&server, "bob").await?;
        let refused = bob.iq(&request(&room, "b1")).await?;
        ensure!(
            palaver_e2e::xml::stanza_error_condition(&refused).as_deref() == Some("forbidden"),
            "a non-occupant got: {}",
            palaver_e2e::xml::show(&refused)
        );
        let info = bob
            .iq_ok(&format!(
                "<iq type='get' to='{muc}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            ))
            .await?;
        ensure!(
            palaver_e2e::xml::show(&info).contains("urn:xmpp:http:upload:0"),
            "MUC disco#info: {}",
            palaver_e2e::xml::show(&info)
        );
        let (_, _) = slot_urls(&bob.iq_ok(&request(&muc, "b2")).await?)?;

        let (put, get) = slot_urls(&alice.iq_ok(&request(&room, "a1")).await?)?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("agenda.txt");
        std::fs::write(&path, b"1. minutes\n")?;
        let path_s = path.to_string_lossy().to_string();
        let ca = server.ca_path();
        let sent = curl(&ca, &put, &["-T", &path_s, "-H", "Content-Type: text/plain"]).await?;
        ensure!(sent.status == 201, "PUT: {sent:?}");
        ensure!(curl(&ca, &get, &[]).await?.body == b"1. minutes\n", "GET");

        let mut sip = sip_common::sip(&server, SipTransport::Udp, "alice").await?;
        send_expect(&mut sip, "papers", "#join", 200).await?;
        send_expect(&mut sip, "papers", "#files", 200).await?;
        let listing = text_from(&mut sip, "papers", "Files posted to papers").await?.body;
        ensure!(listing.contains("agenda.txt (11 bytes, alice@localhost)"), "{listing}");
        Ok(())
    }
    .await;
    must(r);
}

/// The first download link of this server in `xml` (unescaped).
fn link_in(xml: &str) -> Option<String> {
    let at = xml.find("https://localhost:")?;
    let rest = &xml[at..];
    let end = rest.find(|c: char| c == '<' || c == '\'' || c == '"' || c.is_whitespace())?;
    Some(rest[..end].replace("&amp;", "&"))
}

/// Download links expire (`download_ttl_secs`), but a room's history hands its occupants fresh
/// ones: after the link posted live has expired (403), a newcomer's history on join and an
/// archive query (MAM) carry links that download the file.
#[tokio::test]
async fn history_serves_fresh_links_after_they_expire() {
    let server = TestServer::start_with_users(
        Store::Sqlite,
        server_options("download_ttl_secs = 2"),
        &["alice", "bob"],
    )
    .await;
    let r = async {
        let room = palaver_e2e::room_jid("library");
        let mut alice = palaver_e2e::xmpp_available(&server, "alice").await?;
        alice.join(&room, "alice", None).await?.joined()?;
        let id = alice.new_id();
        alice
            .iq_ok(&format!(
                "<iq type='set' to='{room}' id='{id}'>{}</iq>",
                palaver_e2e::xml::roomconfig_submit(&[])
            ))
            .await?;
        let (put, get) = slot_urls(
            &alice
                .iq_ok(&format!(
                    "<iq type='get' to='{room}' id='s1'><request xmlns='urn:xmpp:http:upload:0' \
                     filename='map.txt' size='4' content-type='text/plain'/></iq>"
                ))
                .await?,
        )?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("map.txt");
        std::fs::write(&path, b"map\n")?;
        let ca = server.ca_path();
        let sent = curl(&ca, &put, &["-T", &path.to_string_lossy()]).await?;
        ensure!(sent.status == 201, "PUT: {sent:?}");
        let esc = get.replace('&', "&amp;");
        alice
            .send_str(&format!(
                "<message to='{room}' type='groupchat' id='f1'><body>{esc}</body>\
                 <x xmlns='jabber:x:oob'><url>{esc}</url></x></message>"
            ))
            .await?;
        alice.wait_groupchat(&room, &get).await?;
        ensure!(
            curl(&ca, &get, &[]).await?.status == 200,
            "the live link before it expires"
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ensure!(
            curl(&ca, &get, &[]).await?.status == 403,
            "an expired link still works"
        );

        let mut bob = palaver_e2e::xmpp_available(&server, "bob").await?;
        bob.join_with(&room, "bob", None, "<history maxstanzas='5'/>")
            .await?
            .joined()?;
        let history = bob
            .wait_for(Duration::from_secs(10), "the history message", |el| {
                el.name == "message" && palaver_e2e::xml::show(el).contains("/files/")
            })
            .await?;
        let shown = palaver_e2e::xml::show(&history);
        let fresh = link_in(&shown).with_context(|| format!("no link in {shown}"))?;
        ensure!(fresh != get, "history repeats the expired link");
        let got = curl(&ca, &fresh, &[]).await?;
        ensure!(
            got.status == 200 && got.body == b"map\n",
            "history link: {}",
            got.status
        );
        let oob = shown
            .rsplit("<url>")
            .next()
            .and_then(link_in)
            .context("oob url")?;
        ensure!(
            curl(&ca, &oob, &[]).await?.status == 200,
            "the oob link in history"
        );

        bob.send_str(&format!(
            "<iq type='set' to='{room}' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>"
        ))
        .await?;
        let archived = bob
            .wait_for(Duration::from_secs(10), "the archived message", |el| {
                el.name == "message" && palaver_e2e::xml::show(el).contains("queryid='q1'")
            })
            .await?;
        let shown = palaver_e2e::xml::show(&archived);
        let from_mam = link_in(&shown).with_context(|| format!("no link in {shown}"))?;
        ensure!(curl(&ca, &from_mam, &[]).await?.status == 200, "MAM link");
        Ok(())
    }
    .await;
    must(r);
}
