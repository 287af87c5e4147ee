//! Frame layout on the wire: a 4-byte big-endian length `L`, then `L` bytes: one frame-type
//! byte and the payload. [`encode`] writes one frame; [`FrameDecoder`] cuts frames out of a
//! byte stream (sans-IO: the caller reads into a `BytesMut` and asks for frames), refusing a
//! length above the configured maximum as soon as the 4-byte prefix has arrived, before any
//! of the payload is buffered.

use super::frame::*;
use super::membership::{MemberState, Role};
use super::wire::{Reader, Writer};
use super::FrameError;
use bytes::{Buf, BytesMut};

/// Length prefix plus type byte.
pub const HEADER_LEN: usize = 5;
/// Default maximum of `L` (type byte + payload): 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;
/// Smallest encoded [`MemberInfo`] (empty strings, absent `last_seen_ms`).
const MIN_MEMBER_BYTES: usize = 2 + 2 + 1 + 1 + 1 + 1 + 8 + 4 + 2 + 4 + 4;

/// Encodes `frame` (length prefix included); fails if a field is out of bounds or the frame
/// would exceed `max` bytes.
pub fn encode(frame: &Frame, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0, 0, 0, 0, frame.frame_type() as u8];
    let mut w = Writer { out: &mut out };
    match frame {
        Frame::Hello(h) => {
            w.out.extend_from_slice(&MAGIC);
            w.u16(h.version);
            w.string("pool_id", &h.pool_id)?;
            w.string("node_id", &h.node_id)?;
            w.u8(h.kind as u8);
            w.u64(h.incarnation);
        }
        Frame::HelloAck(a) => {
            w.out.extend_from_slice(&MAGIC);
            w.u16(a.version);
            w.string("pool_id", &a.pool_id)?;
            w.string("node_id", &a.node_id)?;
            w.u64(a.incarnation);
        }
        Frame::Refuse(r) => {
            w.u8(r.code as u8);
            w.string("reason", &r.reason)?;
        }
        Frame::Heartbeat(h) => {
            w.string("node", &h.node)?;
            w.u64(h.incarnation);
            w.u64(h.seq);
            w.u64(h.view.version);
            w.u16(h.view.live);
            w.bool(h.view.majority);
            w.u32(h.users);
            w.u32(h.rooms);
            w.bool(h.draining);
        }
        Frame::MembershipView(v) => {
            w.string("node", &v.node)?;
            w.u64(v.version);
            put_members(&mut w, &v.members)?;
        }
        Frame::AdminRequest { id, request } => {
            w.u32(*id);
            match request {
                AdminRequest::Status => w.u8(1),
                AdminRequest::Drain => w.u8(2),
                AdminRequest::Undrain => w.u8(3),
            }
        }
        Frame::AdminResponse { id, response } => {
            w.u32(*id);
            match response {
                AdminResponse::Status(s) => {
                    w.u8(1);
                    w.string("node", &s.node)?;
                    w.string("pool", &s.pool)?;
                    w.bool(s.majority);
                    put_members(&mut w, &s.members)?;
                }
                AdminResponse::Error(e) => {
                    w.u8(0);
                    w.string("error", e)?;
                }
            }
        }
        Frame::RoomRequest { id, room, body } => {
            w.u64(*id);
            w.string("room", room)?;
            w.bytes("body", body)?;
        }
        Frame::RoomReply { id, body } => {
            w.u64(*id);
            w.bytes("body", body)?;
        }
        Frame::UserStanza {
            user,
            resource,
            stanza,
        } => {
            w.string("user", user)?;
            w.string("resource", resource)?;
            w.bytes("stanza", stanza)?;
        }
        Frame::SipRelay { id, user, request } => {
            w.u64(*id);
            w.string("user", user)?;
            w.bytes("request", request)?;
        }
        Frame::SipRelayReply {
            id,
            found,
            response,
        } => {
            w.u64(*id);
            w.bool(*found);
            w.bytes("response", response)?;
        }
        Frame::RoomEvent { recipients, body } => {
            w.count32("recipients", recipients.len())?;
            for (client, flags) in recipients {
                w.u64(*client);
                w.u8(*flags);
            }
            w.bytes("body", body)?;
        }
    }
    let len = out.len() - 4;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::Oversized { len, max })?;
    out[..4].copy_from_slice(&prefix.to_be_bytes());
    Ok(out)
}

fn put_members(w: &mut Writer<'_>, members: &[MemberInfo]) -> Result<(), FrameError> {
    w.count("members", members.len())?;
    for m in members {
        w.string("member.id", &m.id)?;
        w.string("member.address", &m.address)?;
        w.u8(m.role.to_u8());
        w.u8(m.effective.to_u8());
        w.u8(m.state.to_u8());
        w.opt_u64(m.last_seen_ms);
        w.u64(m.incarnation);
        w.u32(m.links);
        w.string("member.last_error", &m.last_error)?;
        w.u32(m.users);
        w.u32(m.rooms);
    }
    Ok(())
}

/// Decodes one frame from its type byte and payload (the bytes after the type byte).
pub fn decode(ty: u8, payload: &[u8]) -> Result<Frame, FrameError> {
    let mut r = Reader::new(payload);
    let frame = match ty {
        0x01 => {
            let (version, pool_id, node_id) = handshake_head(&mut r)?;
            let kind = match r.u8("kind")? {
                1 => LinkKind::Peer,
                2 => LinkKind::Admin,
                v => return Err(bad("kind", v.into())),
            };
            let incarnation = r.u64("incarnation")?;
            Frame::Hello(Hello {
                version,
                pool_id,
                node_id,
                kind,
                incarnation,
            })
        }
        0x02 => {
            let (version, pool_id, node_id) = handshake_head(&mut r)?;
            let incarnation = r.u64("incarnation")?;
            Frame::HelloAck(HelloAck {
                version,
                pool_id,
                node_id,
                incarnation,
            })
        }
        0x03 => Frame::Refuse(Refuse {
            code: RefuseCode::from_u8(r.u8("code")?),
            reason: r.string("reason")?,
        }),
        0x10 => Frame::Heartbeat(Heartbeat {
            node: r.string("node")?,
            incarnation: r.u64("incarnation")?,
            seq: r.u64("seq")?,
            view: ViewSummary {
                version: r.u64("view.version")?,
                live: r.u16("view.live")?,
                majority: r.bool("view.majority")?,
            },
            users: r.u32("users")?,
            rooms: r.u32("rooms")?,
            draining: r.bool("draining")?,
        }),
        0x11 => Frame::MembershipView(MembershipView {
            node: r.string("node")?,
            version: r.u64("version")?,
            members: get_members(&mut r)?,
        }),
        0x20 => {
            let id = r.u32("id")?;
            let request = match r.u8("request")? {
                1 => AdminRequest::Status,
                2 => AdminRequest::Drain,
                3 => AdminRequest::Undrain,
                v => return Err(bad("request", v.into())),
            };
            Frame::AdminRequest { id, request }
        }
        0x21 => {
            let id = r.u32("id")?;
            let response = match r.u8("response")? {
                1 => AdminResponse::Status(StatusReport {
                    node: r.string("node")?,
                    pool: r.string("pool")?,
                    majority: r.bool("majority")?,
                    members: get_members(&mut r)?,
                }),
                0 => AdminResponse::Error(r.string("error")?),
                v => return Err(bad("response", v.into())),
            };
            Frame::AdminResponse { id, response }
        }
        0x30 => Frame::RoomRequest {
            id: r.u64("id")?,
            room: r.string("room")?,
            body: r.bytes("body")?,
        },
        0x34 => Frame::RoomReply {
            id: r.u64("id")?,
            body: r.bytes("body")?,
        },
        0x35 => Frame::UserStanza {
            user: r.string("user")?,
            resource: r.string("resource")?,
            stanza: r.bytes("stanza")?,
        },
        0x36 => Frame::SipRelay {
            id: r.u64("id")?,
            user: r.string("user")?,
            request: r.bytes("request")?,
        },
        0x37 => Frame::SipRelayReply {
            id: r.u64("id")?,
            found: r.bool("found")?,
            response: r.bytes("response")?,
        },
        0x31 => {
            let n = r.count32("recipients", 9)?;
            let mut recipients = Vec::with_capacity(n);
            for _ in 0..n {
                recipients.push((r.u64("recipient.client")?, r.u8("recipient.flags")?));
            }
            Frame::RoomEvent {
                recipients,
                body: r.bytes("body")?,
            }
        }
        t if FrameType::is_reserved(t) => return Err(FrameError::Reserved(t)),
        t => return Err(FrameError::UnknownType(t)),
    };
    r.finish()?;
    Ok(frame)
}

/// Magic, version (checked against ours: a different version is a typed error, since the rest
/// of the layout may differ), pool id, node id.
fn handshake_head(r: &mut Reader<'_>) -> Result<(u16, String, String), FrameError> {
    if r.u32("magic")?.to_be_bytes() != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let version = r.u16("version")?;
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    Ok((version, r.string("pool_id")?, r.string("node_id")?))
}

fn get_members(r: &mut Reader<'_>) -> Result<Vec<MemberInfo>, FrameError> {
    let n = r.count("members", MIN_MEMBER_BYTES)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.string("member.id")?;
        let address = r.string("member.address")?;
        let role = role(r.u8("member.role")?)?;
        let effective = role_of(r.u8("member.effective")?, "member.effective")?;
        let state = r.u8("member.state")?;
        let state = MemberState::from_u8(state).ok_or(bad("member.state", state.into()))?;
        members.push(MemberInfo {
            id,
            address,
            role,
            effective,
            state,
            last_seen_ms: r.opt_u64("member.last_seen_ms")?,
            incarnation: r.u64("member.incarnation")?,
            links: r.u32("member.links")?,
            last_error: r.string("member.last_error")?,
            users: r.u32("member.users")?,
            rooms: r.u32("member.rooms")?,
        });
    }
    Ok(members)
}

fn role(v: u8) -> Result<Role, FrameError> {
    role_of(v, "member.role")
}

fn role_of(v: u8, field: &'static str) -> Result<Role, FrameError> {
    Role::from_u8(v).ok_or(bad(field, v.into()))
}

fn bad(field: &'static str, value: u64) -> FrameError {
    FrameError::BadValue { field, value }
}

/// Cuts frames out of a byte stream.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames whose length prefix exceeds `max`.
    pub fn new(max: usize) -> Self {
        FrameDecoder { max }
    }

    /// The next complete frame of `buf` (consumed), `Ok(None)` when more bytes are needed.
    /// After an error the stream is unusable: close the link.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(len) = self.pending_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < 4 + len {
            // Make room for the rest of this frame only (len ≤ max, checked above).
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        let body = buf.split_to(len);
        decode(body[0], &body[1..]).map(Some)
    }

    /// The announced length of the frame at the start of `buf`, once its prefix is there.
    pub fn pending_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let mut be = [0u8; 4];
        be.copy_from_slice(prefix);
        let len = usize::try_from(u32::from_be_bytes(be)).unwrap_or(usize::MAX);
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > self.max {
            return Err(FrameError::Oversized { len, max: self.max });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Frame {
        Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            pool_id: "main".into(),
            node_id: "n1".into(),
            kind: LinkKind::Peer,
            incarnation: 42,
        })
    }

    #[test]
    fn hello_layout_is_documented() {
        let bytes = encode(&hello(), DEFAULT_MAX_FRAME).expect("encodes");
        let mut expected = vec![0, 0, 0, 26, 0x01];
        expected.extend_from_slice(b"PLVR\x00\x01\x00\x04main\x00\x02n1\x01");
        expected.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn stream_decoding_handles_splits() {
        let mut stream = encode(&hello(), DEFAULT_MAX_FRAME).expect("encodes");
        stream.extend(
            encode(
                &Frame::Refuse(Refuse {
                    code: RefuseCode::WrongPool,
                    reason: "x".into(),
                }),
                64,
            )
            .expect("encodes"),
        );
        let dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        for cut in 0..stream.len() {
            let mut buf = BytesMut::from(&stream[..cut]);
            let mut got = Vec::new();
            while let Some(f) = dec.decode(&mut buf).expect("valid") {
                got.push(f);
            }
            buf.extend_from_slice(&stream[cut..]);
            while let Some(f) = dec.decode(&mut buf).expect("valid") {
                got.push(f);
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0], hello());
        }
    }

    #[test]
    fn oversized_is_refused_from_the_prefix() {
        let dec = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&[0x00, 0x10, 0x00, 0x00][..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::Oversized {
                len: 0x100000,
                max: 1024
            })
        );
        let mut buf = BytesMut::from(&[0, 0, 0, 0][..]);
        assert_eq!(dec.decode(&mut buf), Err(FrameError::Empty));
        assert!(matches!(
            encode(&hello(), 8),
            Err(FrameError::Oversized { .. })
        ));
    }

    #[test]
    fn unknown_reserved_and_versions_are_typed_errors() {
        assert_eq!(decode(0x7f, &[]), Err(FrameError::UnknownType(0x7f)));
        assert_eq!(decode(0x32, &[]), Err(FrameError::Reserved(0x32)));
        // A room event claiming more recipients than its bytes can hold.
        assert_eq!(
            decode(0x31, &[0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::Truncated("recipients"))
        );
        let mut bytes = encode(&hello(), DEFAULT_MAX_FRAME).expect("encodes");
        bytes[10] = 9; // version low byte
        assert_eq!(
            decode(bytes[4], &bytes[5..]),
            Err(FrameError::UnsupportedVersion(9))
        );
        bytes[5] = b'X';
        assert_eq!(decode(bytes[4], &bytes[5..]), Err(FrameError::BadMagic));
        assert_eq!(
            decode(0x20, &[0, 0, 0, 1, 9]),
            Err(FrameError::BadValue {
                field: "request",
                value: 9
            })
        );
        assert_eq!(
            decode(0x20, &[0, 0, 0, 1, 1, 0]),
            Err(FrameError::Trailing(1))
        );
    }
}
