//! One pool link after its handshake: [`FramedIo`] reads and writes whole frames with a
//! timeout on every read and write and the configured maximum frame size, and [`run_peer`]
//! drives a member-to-member link — heartbeats and views in, the bounded outbound queue out —
//! until the peer goes silent for `dead_after_ms`, sends something invalid, or the queue is
//! dropped (link replaced, queue overflow, shutdown).

use super::state::Membership;
use bytes::BytesMut;
use palaver_core::engine::Engine;
use palaver_core::pool::{encode, Frame, FrameDecoder, FrameError, MemberState};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long one frame write may take before the link is considered stuck.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// Why reading or writing a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no data within {0:?}")]
    Timeout(Duration),
    #[error("closed by the peer")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Frame(#[from] FrameError),
}

impl LinkError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            LinkError::Timeout(_) => "timeout",
            LinkError::Closed => "closed",
            LinkError::Io(_) => "io",
            LinkError::Frame(FrameError::Oversized { .. }) => "oversized",
            LinkError::Frame(_) => "protocol",
        }
    }
}

/// A stream carrying pool frames.
pub struct FramedIo<S> {
    stream: S,
    buf: BytesMut,
    decoder: FrameDecoder,
    max: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedIo<S> {
    /// Frames of at most `max` bytes (length prefix excluded) either way.
    pub fn new(stream: S, max: usize) -> Self {
        FramedIo {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: FrameDecoder::new(max),
            max,
        }
    }

    /// The next frame, waiting at most `within` for it.
    pub async fn read(&mut self, within: Duration) -> Result<Frame, LinkError> {
        self.read_until(Instant::now() + within, within).await
    }

    /// The next frame, if it is complete by `deadline` (`window` is only reported in the
    /// timeout error). Cancel-safe: bytes already read stay buffered.
    pub async fn read_until(
        &mut self,
        deadline: Instant,
        window: Duration,
    ) -> Result<Frame, LinkError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                metrics::counter!("palaver_pool_frames_in_total").increment(1);
                return Ok(frame);
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Err(LinkError::Timeout(window)),
                Ok(Ok(0)) => return Err(LinkError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Writes and flushes one frame within [`WRITE_TIMEOUT`].
    pub async fn write(&mut self, frame: &Frame) -> Result<(), LinkError> {
        let bytes = encode(frame, self.max)?;
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Err(_) => Err(LinkError::Timeout(WRITE_TIMEOUT)),
            Ok(r) => Ok(r?),
        }
    }

    /// Closes the write side (best effort, bounded).
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}

/// Room frames received from one peer and not yet handed to the engine; when full the link
/// is dropped (the peer's sessions' rooms resync when it comes back).
const INBOUND_QUEUE: usize = 65_536;

/// Hands a link's room frames to the engine, one at a time in arrival order (a command may
/// wait for its room to load; the link keeps reading and writing meanwhile).
async fn room_inbound(
    peer: String,
    engine: Engine,
    membership: Arc<Membership>,
    mut rx: mpsc::Receiver<Frame>,
) {
    while let Some(frame) = rx.recv().await {
        match frame {
            Frame::UserStanza {
                user,
                resource,
                stanza,
            } => membership.user_stanza(&user, &resource, stanza),
            room => engine.pool_frame(&peer, room).await,
        }
    }
}

/// A member-to-member link whose handshake just succeeded (either side): the member is seen,
/// the link's queue registered, and the link runs until it ends.
pub async fn serve_link<S: AsyncRead + AsyncWrite + Unpin>(
    io: FramedIo<S>,
    peer: String,
    incarnation: u64,
    shared: &super::Shared,
) {
    shared.membership.seen(&peer, incarnation);
    let (tx, rx) = mpsc::channel(shared.cfg.peer_queue);
    let id = shared.membership.register_link(&peer, tx);
    let dead_after = Duration::from_millis(shared.cfg.dead_after_ms);
    let membership = shared.membership.clone();
    run_peer(
        io,
        peer,
        membership,
        shared.engine.clone(),
        rx,
        id,
        dead_after,
    )
    .await;
}

/// Runs a member-to-member link with `peer` until it ends; the link must already be
/// registered in `membership` under `link_id` with the sender of `rx`. Room frames go to
/// `engine`.
pub async fn run_peer<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: FramedIo<S>,
    peer: String,
    membership: Arc<Membership>,
    engine: Engine,
    mut rx: mpsc::Receiver<Frame>,
    link_id: u64,
    dead_after: Duration,
) {
    tracing::info!(member = %peer, "pool link up");
    let (inbound, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let inbound_task = tokio::spawn(room_inbound(
        peer.clone(),
        engine,
        membership.clone(),
        inbound_rx,
    ));
    // One deadline across loop turns: sending must not extend the time a silent peer gets.
    let mut deadline = Instant::now() + dead_after;
    let reason: String = loop {
        tokio::select! {
            read = io.read_until(deadline, dead_after) => match read {
                Ok(Frame::Heartbeat(h)) if h.node == peer => {
                    deadline = Instant::now() + dead_after;
                    membership.seen(&peer, h.incarnation);
                    membership.peer_load(&peer, h.users, h.rooms);
                    membership.peer_draining(&peer, h.draining);
                }
                Ok(Frame::MembershipView(v)) if v.node == peer => {
                    deadline = Instant::now() + dead_after;
                    tracing::debug!(member = %peer, version = v.version, "pool view received");
                    // A member that starts or stops draining says so at once in its view.
                    if let Some(me) = v.members.iter().find(|m| m.id == peer) {
                        membership.peer_draining(&peer, me.state == MemberState::Draining);
                    }
                }
                Ok(frame @ (Frame::RoomRequest { .. }
                | Frame::RoomReply { .. }
                | Frame::RoomEvent { .. }
                | Frame::UserStanza { .. })) => {
                    // Room traffic proves the peer alive as well as a heartbeat does.
                    deadline = Instant::now() + dead_after;
                    if inbound.try_send(frame).is_err() {
                        metrics::counter!("palaver_pool_link_drops_total", "reason" => "inbound-full")
                            .increment(1);
                        break "room traffic from the peer is not being consumed fast enough".into();
                    }
                }
                Ok(Frame::SipRelay { id, user, request }) => {
                    deadline = Instant::now() + dead_after;
                    membership.sip_relay_request(&peer, id, user, request);
                }
                Ok(Frame::SipRelayReply { id, found, response }) => {
                    deadline = Instant::now() + dead_after;
                    membership.sip_relay_reply(&peer, id, found, response);
                }
                Ok(other) => {
                    break format!("unexpected {:?} frame on a peer link", other.frame_type());
                }
                Err(e) => {
                    metrics::counter!("palaver_pool_link_drops_total", "reason" => e.label())
                        .increment(1);
                    break e.to_string();
                }
            },
            out = rx.recv() => match out {
                Some(frame) => {
                    if let Err(e) = io.write(&frame).await {
                        break format!("write failed: {e}");
                    }
                }
                None => break "link closed locally (replaced, queue overflow or shutdown)".into(),
            },
        }
    };
    membership.unregister_link(&peer, link_id);
    drop(inbound);
    inbound_task.abort();
    io.shutdown().await;
    tracing::info!(member = %peer, %reason, "pool link down");
}
