//! RFC 6120 stream basics: STARTTLS offered and mandatory before authentication, SASL failure
//! on a wrong password, resource binding, iq error semantics; XEP-0199 ping.

use crate::client::{Client, ErrorKind};
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Need, Outcome};
use crate::suite::session::raw_features;
use crate::suite::xml::is_error;
use anyhow::{bail, ensure};

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "stream.starttls.offered",
            clause: "RFC 6120 §5.3.1",
            description: "MUST: the initial stream features offer <starttls/>",
            needs: &[],
            run: starttls_offered,
        },
        Case {
            id: "stream.starttls.required-alone",
            clause: "RFC 6120 §5.3.1",
            description: "SHOULD: when STARTTLS is <required/>, no other feature is offered before it (N-A if optional)",
            needs: &[],
            run: starttls_required_alone,
        },
        Case {
            id: "stream.sasl.not-authorized",
            clause: "RFC 6120 §6.5.10",
            description: "MUST: a wrong password is answered <failure><not-authorized/></failure>",
            needs: &[],
            run: sasl_not_authorized,
        },
        Case {
            id: "stream.bind.full-jid",
            clause: "RFC 6120 §7.6.1",
            description: "MUST: bind returns a full JID whose bare part is the account",
            needs: &[],
            run: bind_full_jid,
        },
        Case {
            id: "stream.iq.unknown-payload-error",
            clause: "RFC 6120 §8.4",
            description: "MUST: an iq get with an unknown payload to the server gets an error reply",
            needs: &[],
            run: iq_unknown_payload,
        },
        Case {
            id: "stream.ping.server",
            clause: "XEP-0199 §4.2",
            description: "MUST: a ping to the server is answered with an empty result",
            needs: &[Need::Domain("urn:xmpp:ping")],
            run: ping_server,
        },
    ]
}

fn starttls_offered(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let f = raw_features(&cx).await?;
        ensure!(
            f.get_child("starttls", NS_TLS).is_some(),
            "no <starttls/> in {f}"
        );
        Ok(Outcome::Pass)
    })
}

fn starttls_required_alone(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let f = raw_features(&cx).await?;
        let Some(tls) = f.get_child("starttls", NS_TLS) else {
            return Ok(Outcome::NotApplicable("STARTTLS is not offered".into()));
        };
        if tls.get_child("required", NS_TLS).is_none() {
            return Ok(Outcome::NotApplicable("STARTTLS is not <required/>".into()));
        }
        let others: Vec<_> = f.children().filter(|c| c.ns != NS_TLS).collect();
        ensure!(
            others.is_empty(),
            "features other than STARTTLS offered before it: {f}"
        );
        Ok(Outcome::Pass)
    })
}

fn sasl_not_authorized(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let u = cx.user(0).clone();
        let wrong = format!("{}-wrong", u.password);
        match Client::login(&cx.config.connect, None, &u.local, &wrong).await {
            Ok(c) => {
                c.close().await;
                bail!("a wrong password was accepted")
            }
            Err(e) if e.kind == ErrorKind::Auth && e.message.contains("not-authorized") => {
                Ok(Outcome::Pass)
            }
            Err(e) => bail!("expected <failure><not-authorized/>, got {e}"),
        }
    })
}

fn bind_full_jid(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let s = cx.login(0).await?;
        let jid = s.jid().to_string();
        let want = cx.user(0).jid.to_lowercase();
        s.close().await;
        let Some((bare, resource)) = jid.split_once('/') else {
            bail!("bound JID {jid} has no resource");
        };
        ensure!(
            !resource.is_empty(),
            "bound JID {jid} has an empty resource"
        );
        ensure!(
            bare.to_lowercase() == want,
            "bound {jid} for account {want}"
        );
        Ok(Outcome::Pass)
    })
}

fn iq_unknown_payload(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut s = cx.login(0).await?;
        let domain = cx.config.domain.clone();
        let answer = s
            .iq(
                "get",
                &domain,
                "<query xmlns='urn:example:no-such-namespace'/>",
            )
            .await?;
        s.close().await;
        ensure!(
            is_error(&answer, "service-unavailable")
                || is_error(&answer, "feature-not-implemented"),
            "expected an error (service-unavailable or feature-not-implemented), got {answer}"
        );
        Ok(Outcome::Pass)
    })
}

fn ping_server(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut s = cx.login(0).await?;
        let domain = cx.config.domain.clone();
        s.iq_ok("get", &domain, "<ping xmlns='urn:xmpp:ping'/>")
            .await?;
        s.close().await;
        Ok(Outcome::Pass)
    })
}
