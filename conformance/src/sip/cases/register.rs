//! Registration (RFC 3261 §10): a REGISTER answered 200 with our binding listed, the digest
//! challenge (§22.2, §20.44) and its algorithms (RFC 8760), a wrong password refused and
//! removing a binding with `Expires: 0` (§10.2.2).

use crate::sip::room::{close, user};
use crate::sip::{SCase, SCtx};
use crate::sipua::{tracer, Ua};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use anyhow::{ensure, Result};
use palaver_dialects::sip::SipMessage;

pub fn cases() -> Vec<SCase> {
    vec![
        SCase {
            id: "sip.register.digest-200",
            clause: "RFC 3261 §10.3, §22.2",
            description: "MUST: REGISTER (a digest challenge answered) gets 200 whose Contact lists our binding with an expiration",
            run: digest_200,
        },
        SCase {
            id: "sip.register.challenge",
            clause: "RFC 3261 §22.2, §20.44",
            description: "MUST: a REGISTER without credentials refused for them gets 401 with WWW-Authenticate (or 407 with Proxy-Authenticate); N-A when accepted",
            run: challenge,
        },
        SCase {
            id: "sip.register.sha256-offered",
            clause: "RFC 8760 §2.1, §2.3, §3",
            description: "SHOULD: the digest challenge offers algorithm=SHA-256 (N-A without a challenge)",
            run: sha256_offered,
        },
        SCase {
            id: "sip.register.wrong-password",
            clause: "RFC 3261 §22.1, §22.4",
            description: "MUST: a REGISTER whose digest answer uses a wrong password is refused (401, 403 or 407), not 2xx (N-A without a challenge)",
            run: wrong_password,
        },
        SCase {
            id: "sip.register.unregister",
            clause: "RFC 3261 §10.2.2, §10.3",
            description: "MUST: REGISTER of our Contact with Expires: 0 gets 200 whose Contact no longer lists that binding as live",
            run: unregister,
        },
    ]
}

/// A connected (not registered) UA of user `i`, with `password` instead of the account's
/// when given.
async fn connect(cx: &SCtx, i: usize, password: Option<&str>) -> Result<Ua> {
    let u = cx.user(i).clone();
    let pw = password.unwrap_or(&u.password);
    Ua::connect(tracer(cx), &cx.config.sip, &u.local, pw, &u.domain).await
}

/// The expiration of the binding of `contact_host` (`ip:port`) in a REGISTER response, if
/// listed: the Contact's `expires` parameter, else the Expires header.
fn binding_expires(r: &SipMessage, local: &str) -> Option<u32> {
    r.contacts()
        .iter()
        .find(|c| c.uri.to_string().contains(local))
        .map(|c| c.expires().or(r.expires()).unwrap_or(0))
}

fn digest_200(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut ua = connect(&cx, 0, None).await?;
        let r = ua.register_expires(300).await;
        let local = ua.conn.local.to_string();
        let _ = ua.unregister().await;
        ua.close().await;
        let r = r?;
        ensure!(
            r.status() == Some(200),
            "REGISTER answered {:?}",
            r.status()
        );
        let exp = binding_expires(&r, &local);
        ensure!(exp.is_some(), "the 200 lists no Contact for {local}");
        ensure!(
            exp.is_some_and(|e| e > 0),
            "the binding for {local} has no positive expiration"
        );
        Ok(Outcome::Pass)
    })
}

/// A REGISTER without credentials; the response.
async fn unauthenticated(cx: &SCtx) -> Result<SipMessage> {
    let mut ua = connect(cx, 0, None).await?;
    let r = ua.register_with(60, false).await;
    if r.as_ref().is_ok_and(|r| r.status() == Some(200)) {
        let _ = ua.unregister().await;
    }
    ua.close().await;
    r
}

fn challenge(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let r = unauthenticated(&cx).await?;
        match r.status() {
            Some(200) => Ok(Outcome::NotApplicable(
                "the registrar accepts REGISTER without credentials".into(),
            )),
            Some(401) => {
                ensure!(
                    r.header("WWW-Authenticate").is_some(),
                    "401 without WWW-Authenticate"
                );
                Ok(Outcome::Pass)
            }
            Some(407) => {
                ensure!(
                    r.header("Proxy-Authenticate").is_some(),
                    "407 without Proxy-Authenticate"
                );
                Ok(Outcome::Pass)
            }
            s => Ok(Outcome::Fail(format!(
                "REGISTER without credentials answered {s:?}"
            ))),
        }
    })
}

fn sha256_offered(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let r = unauthenticated(&cx).await?;
        let name = match r.status() {
            Some(401) => "WWW-Authenticate",
            Some(407) => "Proxy-Authenticate",
            s => {
                return Ok(Outcome::NotApplicable(format!(
                    "no challenge (status {s:?})"
                )))
            }
        };
        let offered: Vec<String> = r.header_values(name).map(str::to_string).collect();
        let sha256 = offered.iter().any(|v| {
            v.to_ascii_lowercase()
                .replace(['"', ' '], "")
                .contains("algorithm=sha-256")
        });
        ensure!(sha256, "no SHA-256 challenge among {offered:?}");
        Ok(Outcome::Pass)
    })
}

fn wrong_password(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let wrong = format!("wrong-{:08x}", rand::random::<u32>());
        let mut ua = connect(&cx, 0, Some(&wrong)).await?;
        let first = ua.register_with(60, false).await;
        let r = match first {
            Ok(f) if matches!(f.status(), Some(401 | 407)) => ua.register_expires(60).await,
            Ok(f) => {
                ua.close().await;
                return Ok(Outcome::NotApplicable(format!(
                    "no challenge (status {:?})",
                    f.status()
                )));
            }
            Err(e) => Err(e),
        };
        ua.close().await;
        let status = r?.status().unwrap_or(0);
        ensure!(
            matches!(status, 401 | 403 | 407),
            "REGISTER with a wrong password answered {status}"
        );
        Ok(Outcome::Pass)
    })
}

fn unregister(cx: SCtx) -> CaseFuture {
    boxed(async move {
        let mut ua = user(&cx, 0).await?;
        let local = ua.conn.local.to_string();
        let r = ua.register_expires(0).await;
        close(ua).await;
        let r = r?;
        ensure!(
            r.status() == Some(200),
            "REGISTER Expires: 0 answered {:?}",
            r.status()
        );
        let left = binding_expires(&r, &local).filter(|e| *e > 0);
        ensure!(
            left.is_none(),
            "the 200 still lists {local} with expires {left:?}"
        );
        Ok(Outcome::Pass)
    })
}
