//! The SIP share of `rows.rs`: the digest-credential columns of `users` (`sip_realm`,
//! `sip_ha1_md5`, `sip_ha1_sha256`) and the `registrations` table (the registrar's location
//! service). Same rules as `rows.rs`: SQL text identical on both backends, values bound as
//! [`Val`]s, rows read through [`RowGet`].

use super::rows::{corrupt, text, user_id, RowGet, Val};
use crate::model::*;
use crate::store::StoreResult;
use std::borrow::Cow;

// ---- users: SIP digest columns ----

/// `sip_realm, sip_ha1_md5, sip_ha1_sha256`: three NULLs when there is no digest.
pub(in crate::store) fn sip_digest_vals(d: Option<&SipDigest>) -> [Val<'_>; 3] {
    let opt = |f: fn(&SipDigest) -> &str| Val::OptText(d.map(|d| Cow::Borrowed(f(d))));
    [
        opt(|d| &d.realm),
        opt(|d| &d.ha1_md5),
        opt(|d| &d.ha1_sha256),
    ]
}

/// The digest of a `users` row: `None` when all three columns are NULL (accounts from before
/// migration 0002), `Corrupt` when only some are.
pub(in crate::store) fn sip_digest_from_row(r: &impl RowGet) -> StoreResult<Option<SipDigest>> {
    match (
        r.opt_text("sip_realm")?,
        r.opt_text("sip_ha1_md5")?,
        r.opt_text("sip_ha1_sha256")?,
    ) {
        (None, None, None) => Ok(None),
        (Some(realm), Some(ha1_md5), Some(ha1_sha256)) => Ok(Some(SipDigest {
            realm,
            ha1_md5,
            ha1_sha256,
        })),
        _ => Err(corrupt("sip_realm", "partial SIP digest credentials")),
    }
}

// ---- registrations ----

macro_rules! registration_cols {
    () => {
        "user_id, contact, instance, transport, source, node, call_id, cseq, expires_at, \
         user_agent"
    };
}

/// Binds: [`registration_vals`]. Registering the same (user, contact) again replaces the row.
pub(in crate::store) const UPSERT_REGISTRATION: &str = concat!(
    "INSERT INTO registrations (",
    registration_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (user_id, contact) DO UPDATE SET instance = excluded.instance, \
     transport = excluded.transport, source = excluded.source, node = excluded.node, \
     call_id = excluded.call_id, cseq = excluded.cseq, expires_at = excluded.expires_at, \
     user_agent = excluded.user_agent"
);
/// Binds: user, contact.
pub(in crate::store) const DELETE_REGISTRATION: &str =
    "DELETE FROM registrations WHERE user_id = $1 AND contact = $2";
/// Binds: user, now. Unexpired bindings (`expires_at > now`), sorted by contact.
pub(in crate::store) const LIST_REGISTRATIONS: &str = concat!(
    "SELECT ",
    registration_cols!(),
    " FROM registrations WHERE user_id = $1 AND expires_at > $2 ORDER BY contact"
);
/// Binds: now. Deletes the expired bindings (`expires_at <= now`) and returns them (in no
/// particular order).
pub(in crate::store) const EXPIRE_REGISTRATIONS: &str = concat!(
    "DELETE FROM registrations WHERE expires_at <= $1 RETURNING ",
    registration_cols!()
);

/// The columns of `registrations`, in `registration_cols!` order.
pub(in crate::store) fn registration_vals(r: &Registration) -> Vec<Val<'_>> {
    vec![
        text(r.user.as_str()),
        text(&r.contact),
        text(&r.instance),
        text(&r.transport),
        text(&r.source),
        text(&r.node),
        text(&r.call_id),
        Val::I64(r.cseq),
        Val::I64(r.expires_at),
        text(&r.user_agent),
    ]
}

pub(in crate::store) fn registration_from_row(r: &impl RowGet) -> StoreResult<Registration> {
    Ok(Registration {
        user: user_id(r.text("user_id")?, "user_id")?,
        contact: r.text("contact")?,
        instance: r.text("instance")?,
        transport: r.text("transport")?,
        source: r.text("source")?,
        node: r.text("node")?,
        call_id: r.text("call_id")?,
        cseq: r.i64("cseq")?,
        expires_at: r.i64("expires_at")?,
        user_agent: r.text("user_agent")?,
    })
}

/// Sorts bindings by (user, contact), the order `expire_registrations` returns.
pub(in crate::store) fn sort_registrations(mut list: Vec<Registration>) -> Vec<Registration> {
    list.sort_by(|a, b| (&a.user, &a.contact).cmp(&(&b.user, &b.contact)));
    list
}
