//! Every SIP case, grouped by area: registration ([`register`]), the server's answers to
//! requests (RFC 3261 / RFC 3428 statuses, [`message`]), the pager-mode `#command`
//! convention ([`pager`]) and RFC 4575 conference events ([`conference`]).

mod conference;
mod message;
mod pager;
mod register;

use super::SCase;

/// Every case, in run order.
pub fn all() -> Vec<SCase> {
    let mut v = Vec::new();
    v.extend(register::cases());
    v.extend(message::cases());
    v.extend(pager::cases());
    v.extend(conference::cases());
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_prefixed() {
        assert!(crate::sipua::case::well_formed(&super::all(), "sip.", 20));
    }
}
