//! XEP-0045 / XEP-0313 mapping between core room events and XMPP stanzas: encoding room events
//! (once per event and recipient view), room addresses, and parsing MUC requests.

pub mod encode;
pub mod forms;
pub mod writer;

pub use encode::{encode_event, encode_slot, room_jid};
