//! Membership rules of a pool, as pure functions: member roles and states, which node ids and
//! pool ids are valid, the certificate name a node must present, which standby takes the place
//! of a dead active member, and the split-brain (majority) guard.

/// The most active members a pool may have.
pub const MAX_ACTIVE: usize = 4;
/// The most standby members a pool may have.
pub const MAX_STANDBY: usize = 4;

/// A member's role: configured in the topology, or effective after promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Serves clients and homes rooms.
    Active,
    /// Waits to replace an active member that is down.
    Standby,
}

impl Role {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Role::Active => 1,
            Role::Standby => 2,
        }
    }

    /// From a wire value.
    pub fn from_u8(v: u8) -> Option<Role> {
        match v {
            1 => Some(Role::Active),
            2 => Some(Role::Standby),
            _ => None,
        }
    }

    /// `active` / `standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
        }
    }
}

/// What a node currently believes about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// No heartbeat within the dead-after interval (or never seen).
    Down,
    /// Heartbeats arrive.
    Up,
    /// Up, but moving its rooms away (reserved for `pool drain`).
    Draining,
}

impl MemberState {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            MemberState::Down => 0,
            MemberState::Up => 1,
            MemberState::Draining => 2,
        }
    }

    /// From a wire value.
    pub fn from_u8(v: u8) -> Option<MemberState> {
        match v {
            0 => Some(MemberState::Down),
            1 => Some(MemberState::Up),
            2 => Some(MemberState::Draining),
            _ => None,
        }
    }

    /// `down` / `up` / `draining`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Down => "down",
            MemberState::Up => "up",
            MemberState::Draining => "draining",
        }
    }

    /// Up or draining: the member answers heartbeats.
    pub fn is_live(self) -> bool {
        !matches!(self, MemberState::Down)
    }
}

/// A node id or pool id: 1–63 characters of `a-z`, `0-9` and `-`, not starting or ending with
/// `-` (a DNS label, because it becomes part of the certificate name).
pub fn valid_id(id: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    !id.is_empty()
        && id.len() <= 63
        && id.chars().all(ok_char)
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// The DNS name a node's pool certificate must carry: `<node_id>.palaver-pool`. The pool is
/// identified by its CA (one CA per pool) and by the pool id of the Hello, which is checked
/// after the handshake so a node of another pool is refused with a clear reason.
pub fn cert_name(node_id: &str) -> String {
    format!("{node_id}.palaver-pool")
}

/// Each member's effective role, in the order given. `members` lists `(configured role,
/// live)` in topology order. Every live standby stays standby unless active members are down:
/// then the first live standbys (in topology order) are promoted, one per down active member.
/// Everyone who sees the same liveness computes the same result.
pub fn effective_roles(members: &[(Role, bool)]) -> Vec<Role> {
    let down_active = members
        .iter()
        .filter(|(role, live)| *role == Role::Active && !*live)
        .count();
    let mut promotions = down_active;
    members
        .iter()
        .map(|&(role, live)| match role {
            Role::Active => Role::Active,
            Role::Standby if live && promotions > 0 => {
                promotions -= 1;
                Role::Active
            }
            Role::Standby => Role::Standby,
        })
        .collect()
}

/// The split-brain guard: whether a node that sees `seen_live` of the `configured_active`
/// active members of the topology (itself included when it is one, and counting standbys it
/// sees promoted in their place) sees a strict majority. A node without a majority must stop
/// homing rooms.
pub fn has_majority(configured_active: usize, seen_live: usize) -> bool {
    configured_active > 0 && seen_live.min(configured_active) * 2 > configured_active
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Active as A, Standby as S};

    #[test]
    fn ids_are_dns_labels() {
        for good in ["n1", "node-2", "a", "pool0"] {
            assert!(valid_id(good), "{good}");
        }
        for bad in ["", "-a", "a-", "N1", "a.b", "a b", &"x".repeat(64)] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(cert_name("n1"), "n1.palaver-pool");
    }

    #[test]
    fn no_promotion_while_actives_live() {
        let roles = effective_roles(&[(A, true), (A, true), (S, true)]);
        assert_eq!(roles, [A, A, S]);
    }

    #[test]
    fn first_live_standby_replaces_a_dead_active() {
        let roles = effective_roles(&[(A, false), (A, true), (S, false), (S, true), (S, true)]);
        assert_eq!(roles, [A, A, S, A, S]);
        let roles = effective_roles(&[(A, false), (A, false), (S, true), (S, true)]);
        assert_eq!(roles, [A, A, A, A]);
        let roles = effective_roles(&[(A, false), (S, false)]);
        assert_eq!(roles, [A, S]);
    }

    #[test]
    fn majority_is_strict() {
        assert!(has_majority(1, 1));
        assert!(!has_majority(2, 1));
        assert!(has_majority(2, 2));
        assert!(has_majority(3, 2));
        assert!(!has_majority(4, 2));
        assert!(has_majority(4, 3));
        assert!(!has_majority(0, 0));
        assert!(has_majority(3, 7), "more than configured counts as all");
    }
}
