//! The delivery task of one SIP occupant: room events become text (through the pager's
//! `RoomView`) and MESSAGEs, a few in flight at a time. Each post goes alone, with its
//! author's nick as the From display name; notices that arrive together are merged (a join's
//! welcome, who is present, history and topic wait for the end of the join sequence and go
//! out as one MESSAGE); a client far behind gets posts merged too, so it catches up instead
//! of overflowing its queue. Consecutive failed deliveries make the occupant leave.

use super::{leave_status, send_text, Occupancy, Queued};
use crate::sip::outbound::FinalStatus;
use crate::sip::SipService;
use futures::stream::{FuturesOrdered, StreamExt};
use palaver_core::engine::{PresenceKind, RoomCommand, RoomEventKind, StatusCodes};
use palaver_dialects::pager::text::RoomView;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// MESSAGEs in flight towards one occupant.
const WINDOW: usize = 16;
/// Most events merged into one MESSAGE (and read ahead of sending).
const MAX_BATCH: usize = 64;
/// Events waiting for a client from which posts are merged too, to catch up.
const CATCH_UP: usize = 64;
/// How long a join's texts wait for the end of the join sequence (the subject).
const JOIN_GATHER: Duration = Duration::from_secs(2);

async fn send_job(
    svc: Arc<SipService>,
    occ: Arc<Occupancy>,
    body: String,
    author: Option<String>,
) -> FinalStatus {
    let targets = occ.targets(&svc);
    let from = svc.room_uri(&occ.room);
    send_text(&svc, &targets, &occ.user, &from, author.as_deref(), &body).await
}

/// The text of one room event, to be sent alone or merged with others.
struct Piece {
    text: String,
    /// The nick of a live post's (or private message's) author: the From display name.
    /// `None` for notices, history and the welcome.
    author: Option<String>,
}

/// What the delivery task knows between events.
struct Reader {
    view: RoomView,
    /// Between our join's self-presence and the subject that ends the join sequence.
    joining: bool,
    /// Our occupancy ended (we left, were removed, or the room was destroyed).
    ended: bool,
}

impl Reader {
    /// Turns one event into a piece of text (if it has one); notes the end of our occupancy
    /// and of our join sequence.
    fn take(&mut self, (event, flags): &Queued, pieces: &mut VecDeque<Piece>) {
        let was_joined = self.view.is_joined();
        if let Some(text) = self.view.event_text(event, *flags) {
            let author = match &event.kind {
                RoomEventKind::Message {
                    message,
                    history: false,
                } => Some(message.nick.clone()),
                RoomEventKind::Private(pm) => Some(pm.from_nick.clone()),
                _ => None,
            };
            pieces.push_back(Piece { text, author });
        }
        match &event.kind {
            RoomEventKind::Presence(p) if flags.is_self => {
                if p.kind == PresenceKind::Available {
                    self.joining |= !was_joined;
                } else if !p.codes.has(StatusCodes::NICK_CHANGED) {
                    self.ended = true;
                }
            }
            RoomEventKind::Subject { .. } => self.joining = false,
            RoomEventKind::Destroyed { .. } => self.ended = true,
            _ => {}
        }
    }
}

/// The next MESSAGE to send: one post alone (its author as display name), or notices merged
/// (a join's welcome, who is there, history and topic are one MESSAGE). When `catching_up`
/// (the client lags far behind) posts are merged too, keeping the display name only when
/// every merged post has the same author.
fn next_message(
    pieces: &mut VecDeque<Piece>,
    catching_up: bool,
) -> Option<(String, Option<String>)> {
    let first = pieces.pop_front()?;
    let post = first.author.is_some();
    let (mut text, mut author, mut count) = (first.text, first.author, 1);
    while count < MAX_BATCH {
        let Some(next) = pieces.front() else { break };
        if !catching_up && (post || next.author.is_some()) {
            break;
        }
        let Some(next) = pieces.pop_front() else {
            break;
        };
        if author != next.author {
            author = None;
        }
        text.push('\n');
        text.push_str(&next.text);
        count += 1;
    }
    Some((text, author))
}

pub(super) async fn deliver(
    svc: Arc<SipService>,
    occ: Arc<Occupancy>,
    mut rx: mpsc::Receiver<Queued>,
) {
    let mut reader = Reader {
        view: RoomView::new(),
        joining: false,
        ended: false,
    };
    let mut pieces = VecDeque::new();
    let mut in_flight = FuturesOrdered::new();
    let mut failures = 0u32;
    let mut join_deadline = Instant::now();
    let max_failures = svc.config.delivery_failures_before_leave.max(1);
    loop {
        // Everything already queued becomes text, in order (bounded).
        while !reader.ended && pieces.len() < MAX_BATCH {
            let Ok(queued) = rx.try_recv() else { break };
            let was_joining = reader.joining;
            reader.take(&queued, &mut pieces);
            if reader.joining && !was_joining {
                join_deadline = Instant::now() + JOIN_GATHER;
            }
        }
        // A join's texts wait for the rest of the sequence, so they go out together.
        if !reader.joining || reader.ended {
            let catching_up = rx.len() + pieces.len() >= CATCH_UP;
            while in_flight.len() < WINDOW {
                let Some((body, author)) = next_message(&mut pieces, catching_up) else {
                    break;
                };
                in_flight.push_back(send_job(svc.clone(), occ.clone(), body, author));
            }
        }
        let more = !reader.ended && (pieces.is_empty() || reader.joining);
        tokio::select! {
            Some(status) = in_flight.next(), if !in_flight.is_empty() => {
                if status < 300 {
                    failures = 0;
                    continue;
                }
                failures += 1;
                tracing::debug!(user = %occ.user, room = %occ.room, status, failures, "SIP delivery failed");
                if failures >= max_failures && !reader.ended {
                    tracing::info!(user = %occ.user, room = %occ.room, status, "SIP occupant unreachable; leaving the room");
                    let cmd = RoomCommand::Leave {
                        client: occ.client,
                        status: Some(leave_status("SIP client unreachable")),
                    };
                    svc.ctx.engine.send(&occ.room, cmd).await;
                    reader.ended = true;
                    pieces.clear();
                }
            }
            queued = rx.recv(), if more => match queued {
                Some(queued) => {
                    let was_joining = reader.joining;
                    reader.take(&queued, &mut pieces);
                    if reader.joining && !was_joining {
                        join_deadline = Instant::now() + JOIN_GATHER;
                    }
                }
                None => reader.ended = true,
            },
            () = tokio::time::sleep_until(join_deadline), if reader.joining && !reader.ended => {
                reader.joining = false;
            }
            else => break,
        }
    }
    let key = (occ.user.to_string(), occ.room.clone());
    svc.occupants.remove_if(&key, |_, o| o.client == occ.client);
}

#[cfg(test)]
mod tests {
    use super::{next_message, Piece};
    use std::collections::VecDeque;

    fn pieces(items: &[(&str, Option<&str>)]) -> VecDeque<Piece> {
        items
            .iter()
            .map(|(text, author)| Piece {
                text: text.to_string(),
                author: author.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn posts_go_alone_and_notices_together() {
        let mut q = pieces(&[
            ("*** welcome", None),
            ("[10:00] a: old", None),
            ("a: one", Some("a")),
            ("a: two", Some("a")),
            ("*** b has joined", None),
            ("*** b has left", None),
        ]);
        let mut out = Vec::new();
        while let Some(m) = next_message(&mut q, false) {
            out.push(m);
        }
        let want = [
            ("*** welcome\n[10:00] a: old", None),
            ("a: one", Some("a")),
            ("a: two", Some("a")),
            ("*** b has joined\n*** b has left", None),
        ];
        let want: Vec<(String, Option<String>)> = want
            .iter()
            .map(|(t, a)| (t.to_string(), a.map(str::to_string)))
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn catching_up_merges_posts_and_keeps_a_common_author() {
        let mut q = pieces(&[("a: one", Some("a")), ("a: two", Some("a"))]);
        assert_eq!(
            next_message(&mut q, true),
            Some(("a: one\na: two".to_string(), Some("a".to_string())))
        );
        let mut q = pieces(&[("a: one", Some("a")), ("b: two", Some("b"))]);
        assert_eq!(
            next_message(&mut q, true),
            Some(("a: one\nb: two".to_string(), None))
        );
        assert_eq!(next_message(&mut q, true), None);
    }
}
