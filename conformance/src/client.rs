//! A small XMPP client for tests and load: STARTTLS (trusting a given CA), SASL PLAIN, resource
//! binding, sending raw stanzas and waiting for a stanza that matches a predicate.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::reader::{Limits, StreamEvent, StreamReader};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A TLS client config trusting exactly the CA certificates in `ca`.
pub fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))?
    {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A logged-in client session.
pub struct Client {
    io: TlsStream<TcpStream>,
    reader: StreamReader,
    pub jid: String,
    buf: Vec<u8>,
}

async fn read_plain(
    tcp: &mut TcpStream,
    reader: &mut StreamReader,
    until: impl Fn(&StreamEvent) -> bool,
) -> Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        while let Some(ev) = reader.next_event()? {
            if until(&ev) {
                return Ok(());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await??;
        if n == 0 {
            bail!("server closed the connection");
        }
        reader.feed(&buf[..n])?;
    }
}

impl Client {
    /// Connects to `addr`, does STARTTLS, authenticates `user` (local part) with PLAIN and
    /// binds a resource.
    pub async fn login(
        addr: &str,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
        user: &str,
        password: &str,
    ) -> Result<Client> {
        let mut tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        );
        tcp.write_all(header.as_bytes()).await?;
        let mut reader = StreamReader::new(Limits::default());
        read_plain(
            &mut tcp,
            &mut reader,
            |ev| matches!(ev, StreamEvent::Stanza(e) if e.name == "features"),
        )
        .await?;
        tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        read_plain(
            &mut tcp,
            &mut reader,
            |ev| matches!(ev, StreamEvent::Stanza(e) if e.name == "proceed"),
        )
        .await?;
        let name = ServerName::try_from(domain.to_string())?;
        let io = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        let mut c = Client {
            io,
            reader: StreamReader::new(Limits::default()),
            jid: String::new(),
            buf: Vec::new(),
        };
        c.send(header.as_bytes()).await?;
        c.next_stanza(|e| e.name == "features").await?;
        let plain =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        c.send(
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
            )
            .as_bytes(),
        )
        .await?;
        let answer = c
            .next_stanza(|e| e.name == "success" || e.name == "failure")
            .await?;
        if answer.name != "success" {
            bail!("authentication failed for {user}: {answer}");
        }
        c.reader.reset();
        c.send(header.as_bytes()).await?;
        c.next_stanza(|e| e.name == "features").await?;
        c.send(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await?;
        let bound = c.next_stanza(|e| e.attr("id") == Some("bind")).await?;
        c.jid = bound
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.child_text("jid", "urn:ietf:params:xml:ns:xmpp-bind"))
            .ok_or_else(|| anyhow!("no bound jid in {bound}"))?;
        Ok(c)
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads until a stanza matching `pred` arrives (others are dropped); 10 s limit.
    pub async fn next_stanza(&mut self, pred: impl Fn(&Element) -> bool) -> Result<Element> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(ev) = self.reader.next_event()? {
                match ev {
                    StreamEvent::Stanza(e) if pred(&e) => return Ok(e),
                    StreamEvent::Close => bail!("stream closed"),
                    _ => {}
                }
            }
            self.buf.resize(16 * 1024, 0);
            let n = tokio::time::timeout_at(deadline, self.io.read(&mut self.buf))
                .await
                .context("timed out waiting for a stanza")??;
            if n == 0 {
                bail!("server closed the connection");
            }
            self.reader.feed(&self.buf[..n])?;
        }
    }

    /// Joins `room@service/nick` and waits for the self-presence (status 110).
    pub async fn join(&mut self, occupant: &str, maxstanzas: u32) -> Result<()> {
        let stanza = format!(
            "<presence to='{occupant}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='{maxstanzas}'/></x></presence>"
        );
        self.send(stanza.as_bytes()).await?;
        let me = occupant.to_string();
        let p = self
            .next_stanza(|e| e.name == "presence" && e.attr("from") == Some(me.as_str()))
            .await?;
        if p.attr("type") == Some("error") {
            bail!("join refused: {p}");
        }
        Ok(())
    }
}
