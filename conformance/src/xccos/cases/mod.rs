//! Every XCCOS case, grouped by area: signing in and the SIP dialog ([`signin`]), server
//! information, channel search and invitations ([`info`]), joining and leaving rooms with
//! their notices ([`rooms`]), room messages and history ([`chat`]) and bad input
//! ([`bad`]).

mod bad;
mod chat;
mod info;
mod rooms;
mod signin;

use super::XCase;

/// Every case, in run order.
pub fn all() -> Vec<XCase> {
    let mut v = Vec::new();
    v.extend(signin::cases());
    v.extend(info::cases());
    v.extend(rooms::cases());
    v.extend(chat::cases());
    v.extend(bad::cases());
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_prefixed() {
        assert!(crate::sipua::case::well_formed(&super::all(), "xccos.", 18));
    }
}
