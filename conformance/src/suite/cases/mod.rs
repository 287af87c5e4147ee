//! Every XMPP case, grouped by area: stream/TLS/SASL ([`stream`]), service discovery
//! ([`disco`]), entering rooms and history ([`enter`]), room access variants ([`access`]),
//! occupant use cases ([`occupant`]), subject, presence updates and invitations ([`subject`]),
//! moderator and admin use cases ([`moderation`]), owner use cases ([`owner`]), privilege
//! checks ([`privileges`]), granting affiliations and roles ([`affiliations`]), odds and
//! ends ([`misc`]), stanza ids, archives and occupant ids ([`ids`]) and MUC self-ping
//! ([`selfping`]).

mod access;
mod affiliations;
mod disco;
mod enter;
mod ids;
mod misc;
mod moderation;
mod occupant;
mod owner;
mod privileges;
mod selfping;
mod stream;
mod subject;

use super::case::Case;

/// Every case, in run order.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(stream::cases());
    v.extend(disco::cases());
    v.extend(enter::cases());
    v.extend(access::cases());
    v.extend(occupant::cases());
    v.extend(subject::cases());
    v.extend(moderation::cases());
    v.extend(owner::cases());
    v.extend(privileges::cases());
    v.extend(affiliations::cases());
    v.extend(ids::cases());
    v.extend(misc::cases());
    v.extend(selfping::cases());
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_dotted() {
        let all = super::all();
        let mut ids: Vec<_> = all.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert!(all
            .iter()
            .all(|c| c.id.contains('.') && !c.clause.is_empty()));
    }
}
