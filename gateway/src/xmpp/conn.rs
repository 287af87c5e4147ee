//! Byte-level I/O of one XMPP connection during negotiation: read with a timeout into the
//! sans-IO stream reader until the next event, write and flush, and end the stream with a
//! stream error (RFC 6120 §4.9).

use bytes::BytesMut;
use palaver_dialects::xmpp::reader::{Limits, StreamError, StreamEvent, StreamReader};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest time from TCP accept (or from the TLS handshake) to a bound resource.
pub const NEGOTIATION_DEADLINE: Duration = Duration::from_secs(60);

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("peer closed the connection")]
    Closed,
    #[error("stream: {0}")]
    Stream(StreamError),
}

/// One connection's transport plus its stream reader.
pub struct Conn<S> {
    pub io: S,
    pub reader: StreamReader,
    buf: BytesMut,
    domain: String,
    /// Negotiation must finish by then, however slowly the peer drips bytes.
    deadline: tokio::time::Instant,
    /// Whether our stream header for the current stream went out (a stream error must follow
    /// one, RFC 6120 §4.9.1.2).
    header_sent: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S, limits: Limits, domain: &str) -> Self {
        Conn {
            io,
            reader: StreamReader::new(limits),
            buf: BytesMut::with_capacity(4096),
            domain: domain.to_string(),
            deadline: tokio::time::Instant::now() + NEGOTIATION_DEADLINE,
            header_sent: false,
        }
    }

    /// Sends our stream header (once per stream).
    pub async fn send_header(&mut self) -> std::io::Result<()> {
        let header = stream_header(&self.domain);
        self.send(&header).await?;
        self.header_sent = true;
        Ok(())
    }

    /// A new stream starts (after SASL success): forget the old one's state.
    pub fn restart_stream(&mut self) {
        self.reader.reset();
        self.header_sent = false;
    }

    /// The next complete stream event, reading as needed; fails after `timeout` of silence.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<StreamEvent, ConnError> {
        loop {
            if let Some(ev) = self.reader.next_event().map_err(ConnError::Stream)? {
                return Ok(ev);
            }
            self.buf.clear();
            let until = (tokio::time::Instant::now() + timeout).min(self.deadline);
            let n = tokio::time::timeout_at(until, self.io.read_buf(&mut self.buf))
                .await
                .map_err(|_| ConnError::Timeout)??;
            if n == 0 {
                return Err(ConnError::Closed);
            }
            self.reader
                .feed(&self.buf[..n])
                .map_err(ConnError::Stream)?;
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Sends `<stream:error>` with `condition` and closes the stream. Best effort.
    pub async fn stream_error(&mut self, condition: &str, text: Option<&str>) {
        let mut bytes = if self.header_sent {
            Vec::new()
        } else {
            stream_header(&self.domain)
        };
        bytes.extend_from_slice(&stream_error_bytes(condition, text));
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = self.io.write_all(&bytes).await;
            let _ = self.io.flush().await;
            let _ = self.io.shutdown().await;
        })
        .await;
    }
}

/// Our stream header, with a fresh stream id.
pub fn stream_header(domain: &str) -> Vec<u8> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' id='",
    );
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"' from='");
    palaver_dialects::xmpp::escape::escape_attr(domain, &mut out);
    out.extend_from_slice(b"' version='1.0' xml:lang='en'>");
    out
}

/// `<stream:error>…</stream:error></stream:stream>`.
pub fn stream_error_bytes(condition: &str, text: Option<&str>) -> Vec<u8> {
    use palaver_dialects::xmpp::muc::writer::XmlWriter;
    use palaver_dialects::xmpp::ns;
    let mut out = Vec::with_capacity(200);
    let mut w = XmlWriter::new(&mut out);
    w.open("stream:error").close_start();
    w.open(condition)
        .attr("xmlns", ns::STREAM_ERRORS)
        .close_empty();
    if let Some(t) = text {
        w.open("text")
            .attr("xmlns", ns::STREAM_ERRORS)
            .close_start()
            .text(t)
            .end("text");
    }
    w.end("stream:error");
    out.extend_from_slice(b"</stream:stream>");
    out
}

/// `<see-other-host/>` naming `host` (RFC 6120 §4.9.3.19), then the end of the stream.
pub fn see_other_host_bytes(host: &str) -> Vec<u8> {
    use palaver_dialects::xmpp::muc::writer::XmlWriter;
    use palaver_dialects::xmpp::ns;
    let mut out = Vec::with_capacity(160);
    let mut w = XmlWriter::new(&mut out);
    w.open("stream:error").close_start();
    w.open("see-other-host")
        .attr("xmlns", ns::STREAM_ERRORS)
        .close_start()
        .text(host)
        .end("see-other-host");
    w.end("stream:error");
    out.extend_from_slice(b"</stream:stream>");
    out
}

/// The stream error condition for a reader error.
pub fn condition_for(err: &StreamError) -> &'static str {
    match err {
        StreamError::DepthExceeded => "policy-violation",
        other => other.condition(),
    }
}
