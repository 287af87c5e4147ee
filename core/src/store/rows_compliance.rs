//! The compliance share of `rows.rs`: the `compliance_outbox` table (events waiting for the
//! compliance database). Same rules as `rows.rs`: SQL text identical on both backends, values
//! bound as [`Val`]s, rows read through [`RowGet`].

use super::rows::{corrupt, text, RowGet, Val};
use crate::compliance::{ComplianceEvent, EventKind};
use crate::store::StoreResult;

/// Binds: [`outbox_vals`].
pub(in crate::store) const OUTBOX_PUSH: &str = "INSERT INTO compliance_outbox \
     (at, room, actor, protocol, kind, detail) VALUES ($1, $2, $3, $4, $5, $6)";
/// Binds: limit. Oldest first.
pub(in crate::store) const OUTBOX_PEEK: &str = "SELECT id, at, room, actor, protocol, kind, \
     detail FROM compliance_outbox ORDER BY id LIMIT $1";
/// Most ids in one `DELETE … IN (…)`.
pub(in crate::store) const OUTBOX_DELETE_CHUNK: usize = 100;

/// `DELETE FROM compliance_outbox WHERE id IN ($1, …, $n)`, binds: n ids. Only placeholders
/// are generated, never values.
pub(in crate::store) fn outbox_delete_sql(n: usize) -> String {
    let marks: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "DELETE FROM compliance_outbox WHERE id IN ({})",
        marks.join(", ")
    )
}

/// The columns of `compliance_outbox` after `id`.
pub(in crate::store) fn outbox_vals(e: &ComplianceEvent) -> Vec<Val<'_>> {
    vec![
        Val::I64(e.at),
        text(&e.room),
        text(&e.actor),
        text(&e.protocol),
        text(e.kind.as_str()),
        text(&e.detail),
    ]
}

pub(in crate::store) fn outbox_from_row(r: &impl RowGet) -> StoreResult<(i64, ComplianceEvent)> {
    let kind = r.text("kind")?;
    Ok((
        r.i64("id")?,
        ComplianceEvent {
            at: r.i64("at")?,
            room: r.text("room")?,
            actor: r.text("actor")?,
            protocol: r.text("protocol")?,
            kind: EventKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
            detail: r.text("detail")?,
        },
    ))
}
