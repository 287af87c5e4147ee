//! XEP-0045 privilege rules as pure functions: the role an affiliation gets on entry and who
//! may change whose role or affiliation (§8 moderator, §9 admin, §10 owner use cases).

use super::commands::RoomError;
use crate::model::{Affiliation, Role};

/// Role given on entry.
pub(super) fn role_on_entry(affiliation: Affiliation, moderated: bool) -> Role {
    match affiliation {
        Affiliation::Owner | Affiliation::Admin => Role::Moderator,
        Affiliation::Member => Role::Participant,
        Affiliation::None if moderated => Role::Visitor,
        Affiliation::None => Role::Participant,
        Affiliation::Outcast => Role::None,
    }
}

/// May an occupant with (`actor_role`, `actor_aff`) give `new_role` to an occupant whose
/// affiliation is `target_aff` and role `target_role`?
pub(super) fn check_role_change(
    actor_role: Role,
    actor_aff: Affiliation,
    target_role: Role,
    target_aff: Affiliation,
    new_role: Role,
) -> Result<(), RoomError> {
    if actor_role != Role::Moderator {
        return Err(RoomError::NotAllowed(
            "only moderators may change roles".into(),
        ));
    }
    // Granting or revoking moderator needs admin or owner.
    if (new_role == Role::Moderator || target_role == Role::Moderator)
        && actor_aff < Affiliation::Admin
    {
        return Err(RoomError::NotAllowed(
            "only admins and owners may grant or revoke moderator".into(),
        ));
    }
    // Admins and owners keep their moderator role and can't be kicked or muted.
    if target_aff >= Affiliation::Admin && new_role != Role::Moderator {
        return Err(RoomError::NotAllowed(
            "admins and owners can't be kicked or lose their role".into(),
        ));
    }
    if target_aff > actor_aff && new_role < target_role {
        return Err(RoomError::NotAllowed(
            "target has a higher affiliation".into(),
        ));
    }
    Ok(())
}

/// May `actor_aff` change a user's affiliation from `current` to `new`?
pub(super) fn check_affiliation_change(
    actor_aff: Affiliation,
    current: Affiliation,
    new: Affiliation,
) -> Result<(), RoomError> {
    match actor_aff {
        Affiliation::Owner => Ok(()),
        Affiliation::Admin => {
            if current >= Affiliation::Admin || new >= Affiliation::Admin {
                Err(RoomError::NotAllowed(
                    "only owners may change admins and owners".into(),
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(RoomError::NotAllowed(
            "only admins and owners may change affiliations".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Affiliation as A;
    use Role as R;

    #[test]
    fn entry_roles() {
        assert_eq!(role_on_entry(A::Owner, true), R::Moderator);
        assert_eq!(role_on_entry(A::Admin, false), R::Moderator);
        assert_eq!(role_on_entry(A::Member, true), R::Participant);
        assert_eq!(role_on_entry(A::None, true), R::Visitor);
        assert_eq!(role_on_entry(A::None, false), R::Participant);
    }

    #[test]
    fn moderator_kicks_participant_but_not_admin() {
        assert!(
            check_role_change(R::Moderator, A::Member, R::Participant, A::None, R::None).is_ok()
        );
        assert!(
            check_role_change(R::Moderator, A::Owner, R::Moderator, A::Admin, R::None).is_err()
        );
        assert!(
            check_role_change(R::Participant, A::Member, R::Participant, A::None, R::None).is_err()
        );
    }

    #[test]
    fn voice_and_moderator_grants() {
        assert!(
            check_role_change(R::Moderator, A::None, R::Visitor, A::None, R::Participant).is_ok()
        );
        assert!(check_role_change(
            R::Moderator,
            A::Member,
            R::Participant,
            A::None,
            R::Moderator
        )
        .is_err());
        assert!(check_role_change(
            R::Moderator,
            A::Admin,
            R::Participant,
            A::None,
            R::Moderator
        )
        .is_ok());
    }

    #[test]
    fn affiliation_rules() {
        assert!(check_affiliation_change(A::Owner, A::Admin, A::None).is_ok());
        assert!(check_affiliation_change(A::Admin, A::None, A::Member).is_ok());
        assert!(check_affiliation_change(A::Admin, A::Member, A::Outcast).is_ok());
        assert!(check_affiliation_change(A::Admin, A::Admin, A::None).is_err());
        assert!(check_affiliation_change(A::Admin, A::None, A::Admin).is_err());
        assert!(check_affiliation_change(A::Member, A::None, A::Member).is_err());
    }
}
