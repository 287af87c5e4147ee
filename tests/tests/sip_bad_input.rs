//! SIP bad input (issue "Bad input", SIP side) against the real server: unparsable requests
//! get a stateless 400 and post nothing, oversized ones 513, unknown and unsupported methods
//! 405 with `Allow`, loops 483, requests to anything but a room 404, unauthenticated ones a
//! 401/407 digest challenge (MD5 only for baresip 1.x), too-short registrations 423; wrong
//! passwords get 403 and then back off one source address, a UDP flood is rate-limited per
//! address (while the answers of a client in a busy room are not), retransmissions are
//! answered again and processed once, and TCP keep-alives are answered while silent
//! connections are closed. Every test checks that an XMPP client and a well-behaved SIP client
//! in the same room keep working. Each test runs its own server (SQLite), so they run in
//! parallel and per-address limits of one test never touch another.

#[path = "sip_bad_input/abuse.rs"]
mod abuse;
#[path = "sip_bad_input/common.rs"]
mod common;
#[path = "sip_bad_input/keepalive.rs"]
mod keepalive;
#[path = "sip_bad_input/malformed.rs"]
mod malformed;
#[path = "sip_bad_input/requests.rs"]
mod requests;
