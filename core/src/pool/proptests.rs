//! Property tests of the pool codec: every frame round-trips through encode/decode (in one
//! piece and split anywhere), and arbitrary bytes never panic the decoder.

use super::codec::{decode, encode, FrameDecoder, DEFAULT_MAX_FRAME};
use super::frame::*;
use super::membership::{MemberState, Role};
use bytes::BytesMut;
use proptest::prelude::*;

fn id() -> impl Strategy<Value = String> {
    "[a-z0-9-]{0,12}"
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn bytes() -> impl Strategy<Value = bytes::Bytes> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(bytes::Bytes::from)
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Active), Just(Role::Standby)]
}

fn member() -> impl Strategy<Value = MemberInfo> {
    let state = prop_oneof![
        Just(MemberState::Down),
        Just(MemberState::Up),
        Just(MemberState::Draining)
    ];
    (
        (id(), text(), role(), role(), state),
        (
            proptest::option::of(any::<u64>()),
            any::<u64>(),
            any::<u32>(),
            text(),
            (any::<u32>(), any::<u32>()),
        ),
    )
        .prop_map(
            |((id, address, role, effective, state), (last, inc, links, err, (users, rooms)))| {
                MemberInfo {
                    id,
                    address,
                    role,
                    effective,
                    state,
                    last_seen_ms: last,
                    incarnation: inc,
                    links,
                    last_error: err,
                    users,
                    rooms,
                }
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    let kind = prop_oneof![Just(LinkKind::Peer), Just(LinkKind::Admin)];
    let code = prop_oneof![
        Just(RefuseCode::WrongPool),
        Just(RefuseCode::UnknownNode),
        Just(RefuseCode::CertMismatch),
        Just(RefuseCode::UnsupportedVersion),
        Just(RefuseCode::BadHandshake),
        Just(RefuseCode::Other)
    ];
    let members = || proptest::collection::vec(member(), 0..9);
    prop_oneof![
        (id(), id(), kind, any::<u64>()).prop_map(|(p, n, kind, inc)| Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            pool_id: p,
            node_id: n,
            kind,
            incarnation: inc
        })),
        (id(), id(), any::<u64>()).prop_map(|(p, n, inc)| Frame::HelloAck(HelloAck {
            version: PROTOCOL_VERSION,
            pool_id: p,
            node_id: n,
            incarnation: inc
        })),
        (code, text()).prop_map(|(code, reason)| Frame::Refuse(Refuse { code, reason })),
        (
            id(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u16>(),
            any::<bool>(),
            (any::<u32>(), any::<u32>(), any::<bool>())
        )
            .prop_map(
                |(node, incarnation, seq, version, live, majority, (users, rooms, draining))| {
                    Frame::Heartbeat(Heartbeat {
                        node,
                        incarnation,
                        seq,
                        view: ViewSummary {
                            version,
                            live,
                            majority,
                        },
                        users,
                        rooms,
                        draining,
                    })
                }
            ),
        (id(), any::<u64>(), members()).prop_map(|(node, version, members)| {
            Frame::MembershipView(MembershipView {
                node,
                version,
                members,
            })
        }),
        (
            any::<u32>(),
            prop_oneof![
                Just(AdminRequest::Status),
                Just(AdminRequest::Drain),
                Just(AdminRequest::Undrain)
            ]
        )
            .prop_map(|(id, request)| Frame::AdminRequest { id, request }),
        (any::<u32>(), id(), id(), any::<bool>(), members()).prop_map(
            |(rid, node, pool, majority, members)| Frame::AdminResponse {
                id: rid,
                response: AdminResponse::Status(StatusReport {
                    node,
                    pool,
                    majority,
                    members
                })
            }
        ),
        (any::<u64>(), id(), bytes()).prop_map(|(id, room, body)| Frame::RoomRequest {
            id,
            room,
            body
        }),
        (any::<u64>(), bytes()).prop_map(|(id, body)| Frame::RoomReply { id, body }),
        (id(), id(), bytes()).prop_map(|(user, resource, stanza)| Frame::UserStanza {
            user,
            resource,
            stanza
        }),
        (any::<u64>(), id(), bytes()).prop_map(|(id, user, request)| Frame::SipRelay {
            id,
            user,
            request
        }),
        (any::<u64>(), any::<bool>(), bytes()).prop_map(|(id, found, response)| {
            Frame::SipRelayReply {
                id,
                found,
                response,
            }
        }),
        (
            proptest::collection::vec((any::<u64>(), any::<u8>()), 0..40),
            bytes()
        )
            .prop_map(|(recipients, body)| Frame::RoomEvent { recipients, body }),
        (any::<u32>(), text()).prop_map(|(id, e)| Frame::AdminResponse {
            id,
            response: AdminResponse::Error(e)
        }),
    ]
}

proptest! {
    #[test]
    fn frames_round_trip(f in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&f, DEFAULT_MAX_FRAME).expect("in bounds");
        prop_assert_eq!(decode(bytes[4], &bytes[5..]), Ok(f.clone()));
        let dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let cut = cut.index(bytes.len());
        let mut buf = BytesMut::from(&bytes[..cut]);
        prop_assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&bytes[cut..]);
        prop_assert_eq!(dec.decode(&mut buf), Ok(Some(f)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dec = FrameDecoder::new(256);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = dec.decode(&mut buf) {}
        if let Some((&ty, rest)) = data.split_first() {
            let _ = decode(ty, rest);
        }
    }

    #[test]
    fn mutated_frames_never_panic(f in frame(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&f, DEFAULT_MAX_FRAME).expect("in bounds");
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = FrameDecoder::new(DEFAULT_MAX_FRAME).decode(&mut buf);
    }
}
