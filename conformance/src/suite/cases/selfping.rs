//! MUC self-ping (XEP-0410): with the server optimization advertised on the room, a ping to
//! one's own occupant JID is answered by the service — a result while joined, `<not-acceptable/>`
//! when not. Without the feature the ping is routed to a client, which this suite does not
//! judge, so both cases are N-A.

use super::enter::two_in_room;
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::session::Session;
use crate::suite::xml::is_error;
use anyhow::{ensure, Result};

/// The feature a room advertises when it answers self-pings itself (XEP-0410 §3.3).
const SELF_PING_OPTIMIZATION: &str = "http://jabber.org/protocol/muc#self-ping-optimization";
const PING: &str = "<ping xmlns='urn:xmpp:ping'/>";

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.self-ping.joined-result",
            clause: "XEP-0410 §3.3",
            description: "MUST: with self-ping-optimization advertised, an occupant's ping to its own occupant JID gets a result (N-A unless advertised)",
            needs: &[],
            run: joined,
        },
        Case {
            id: "muc.self-ping.not-joined-not-acceptable",
            clause: "XEP-0410 §3.3",
            description: "MUST: with self-ping-optimization advertised, a ping to room/nick from a user not joined as nick gets <not-acceptable/> (N-A unless advertised)",
            needs: &[],
            run: not_joined,
        },
    ]
}

/// Two users in a fresh room, or N-A when the room does not advertise the optimization.
async fn room_with_optimization(cx: &Ctx) -> Result<Result<(Session, Session, String), Outcome>> {
    let (mut a, b, room, _) = two_in_room(cx).await?;
    let features = a.disco_features(&room).await;
    if !features?.iter().any(|f| f == SELF_PING_OPTIMIZATION) {
        a.close().await;
        b.close().await;
        return Ok(Err(Outcome::NotApplicable(format!(
            "{SELF_PING_OPTIMIZATION} not advertised by the room"
        ))));
    }
    Ok(Ok((a, b, room)))
}

fn joined(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room) = match room_with_optimization(&cx).await? {
            Ok(x) => x,
            Err(na) => return Ok(na),
        };
        let answer = b.iq("get", &format!("{room}/bob"), PING).await;
        a.close().await;
        b.close().await;
        let answer = answer?;
        ensure!(
            answer.attr("type") == Some("result"),
            "bob's self-ping while joined was answered {answer}"
        );
        Ok(Outcome::Pass)
    })
}

fn not_joined(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, b, room) = match room_with_optimization(&cx).await? {
            Ok(x) => x,
            Err(na) => return Ok(na),
        };
        // carol never entered: her ping to the nick she would have is a non-occupant's.
        let mut c = cx.login(2).await?;
        let answer = c.iq("get", &format!("{room}/carol"), PING).await;
        a.close().await;
        b.close().await;
        c.close().await;
        let answer = answer?;
        ensure!(
            is_error(&answer, "not-acceptable"),
            "carol's self-ping without being joined was answered {answer}"
        );
        Ok(Outcome::Pass)
    })
}
