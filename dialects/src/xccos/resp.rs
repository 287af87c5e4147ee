//! Reply codes (`<resp code="…">TEXT</resp>`): 200 is success (pidgin-sipe treats any other
//! code, or a missing `resp`, as failure and shows the text). MS-XCCOSIP's own code table is
//! not public in full; palaver uses HTTP-like codes with `ERR_` texts and maps every room
//! error to one of them.

use palaver_core::engine::RoomError;

/// A reply's code and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resp {
    pub code: u16,
    pub text: &'static str,
}

impl Resp {
    pub const OK: Resp = Resp::new(200, "SUCCESS_OK");
    pub const BAD_REQUEST: Resp = Resp::new(400, "ERR_BAD_REQUEST");
    pub const NOT_AUTHORIZED: Resp = Resp::new(401, "ERR_NOT_AUTHORIZED");
    pub const NOT_ALLOWED: Resp = Resp::new(403, "ERR_NOT_ALLOWED");
    pub const NO_CHANNEL: Resp = Resp::new(404, "ERR_CHANNEL_DOES_NOT_EXIST");
    pub const NOT_IN_CHANNEL: Resp = Resp::new(406, "ERR_NOT_IN_CHANNEL");
    pub const CONFLICT: Resp = Resp::new(409, "ERR_CONFLICT");
    pub const TOO_LARGE: Resp = Resp::new(413, "ERR_MESSAGE_TOO_LARGE");
    pub const LOCKED: Resp = Resp::new(423, "ERR_CHANNEL_LOCKED");
    pub const TOO_MANY: Resp = Resp::new(429, "ERR_TOO_MANY_REQUESTS");
    pub const INTERNAL: Resp = Resp::new(500, "ERR_INTERNAL");
    pub const UNKNOWN_COMMAND: Resp = Resp::new(501, "ERR_UNKNOWN_COMMAND");
    pub const UNAVAILABLE: Resp = Resp::new(503, "ERR_SERVICE_UNAVAILABLE");

    const fn new(code: u16, text: &'static str) -> Resp {
        Resp { code, text }
    }

    /// The reply code for a room's refusal.
    pub fn from_room_error(err: &RoomError) -> Resp {
        match err {
            RoomError::ItemNotFound | RoomError::RecipientUnavailable => Resp::NO_CHANNEL,
            RoomError::Forbidden | RoomError::NotAllowed(_) => Resp::NOT_ALLOWED,
            RoomError::RegistrationRequired | RoomError::NotAuthorized => Resp::NOT_AUTHORIZED,
            RoomError::Conflict => Resp::CONFLICT,
            RoomError::NotAcceptable => Resp::NOT_IN_CHANNEL,
            RoomError::BadRequest(_) => Resp::BAD_REQUEST,
            RoomError::ResourceConstraint => Resp::TOO_MANY,
            RoomError::Locked => Resp::LOCKED,
            RoomError::ServiceUnavailable => Resp::UNAVAILABLE,
            RoomError::Internal => Resp::INTERNAL,
        }
    }

    pub fn is_ok(self) -> bool {
        self.code == 200
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_success_is_200_and_every_room_error_is_an_error() {
        assert!(Resp::OK.is_ok());
        for err in [
            RoomError::ItemNotFound,
            RoomError::Forbidden,
            RoomError::RegistrationRequired,
            RoomError::NotAuthorized,
            RoomError::Conflict,
            RoomError::ServiceUnavailable,
            RoomError::NotAllowed("x".into()),
            RoomError::NotAcceptable,
            RoomError::BadRequest("x".into()),
            RoomError::ResourceConstraint,
            RoomError::Internal,
            RoomError::Locked,
            RoomError::RecipientUnavailable,
        ] {
            let r = Resp::from_room_error(&err);
            assert!(!r.is_ok() && r.text.starts_with("ERR_"), "{err:?} → {r:?}");
        }
        assert_eq!(Resp::from_room_error(&RoomError::ItemNotFound).code, 404);
    }
}
