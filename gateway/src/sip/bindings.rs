//! The registrar's live location table: for each user, the contacts registered and the
//! [`Flow`] each REGISTER arrived on, so requests reach the client the way it connected. The
//! durable copy (for other pool nodes and `palaver` admin views) is the store's
//! `registrations` table, written by the registrar.
//!
//! A contact registered through a proxy (RFC 3327: the REGISTER carried `Path`) keeps the
//! Path values as its route set: requests to it carry them as `Route` headers and go over
//! the flow the REGISTER came on (the proxy's), which the proxy relays to the client. Such a
//! flow is shared by every user behind the proxy, so it proves nobody's identity.

use super::transport::Flow;
use dashmap::DashMap;
use std::time::Instant;

/// One registered contact.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The Contact URI as registered.
    pub contact: String,
    pub flow: Flow,
    pub expires: Instant,
    /// Call-ID and CSeq of the REGISTER that made or refreshed it (RFC 3261 §10.3 step 7).
    pub call_id: String,
    pub cseq: u32,
    /// The `+sip.instance` Contact parameter (RFC 5626), unquoted; `""` when absent.
    pub instance: String,
    /// The `Path` values of the REGISTER (RFC 3327), in order (nearest proxy first); empty
    /// when the client registered directly.
    pub route: Vec<String>,
}

/// Where to send a request for a user: the request URI, the flow, and the `Route` headers
/// (in order) when the contact is reached through proxies.
#[derive(Clone, Debug)]
pub struct Target {
    pub uri: String,
    pub flow: Flow,
    pub route: Vec<String>,
}

/// Splits the values of a header that may list several comma-separated name-addrs (`Path`,
/// `Record-Route`) into one value each, in order: commas inside `<…>` or quotes do not
/// split. Empty items are dropped.
pub fn split_list<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        let (mut in_angle, mut in_quote, mut escaped) = (false, false, false);
        let mut current = String::new();
        for c in line.chars() {
            if in_quote {
                current.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_quote = false;
                }
                continue;
            }
            match c {
                '"' => in_quote = true,
                '<' => in_angle = true,
                '>' => in_angle = false,
                ',' if !in_angle => {
                    let item = current.trim();
                    if !item.is_empty() {
                        out.push(item.to_string());
                    }
                    current.clear();
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        let item = current.trim();
        if !item.is_empty() {
            out.push(item.to_string());
        }
    }
    out
}

/// Bindings by user (`alice@localhost`).
#[derive(Default)]
pub struct Bindings {
    by_user: DashMap<String, Vec<Binding>>,
    /// Users that joined a room without registering, reachable only through the TCP/TLS
    /// connection their `#join` came on: connection id → users, so they leave when it closes.
    unregistered: DashMap<u64, Vec<String>>,
}

impl Bindings {
    /// Adds or refreshes the binding of `contact` for `user`.
    pub fn upsert(&self, user: &str, binding: Binding) {
        let mut list = self.by_user.entry(user.to_string()).or_default();
        list.retain(|b| b.contact != binding.contact);
        list.push(binding);
    }

    /// The binding of `contact`, if any (for the Call-ID/CSeq ordering check).
    pub fn get(&self, user: &str, contact: &str) -> Option<Binding> {
        self.by_user
            .get(user)
            .and_then(|l| l.iter().find(|b| b.contact == contact).cloned())
    }

    /// Removes one contact; true when the user has no binding left.
    pub fn remove(&self, user: &str, contact: &str) -> bool {
        self.retain(user, |b| b.contact != contact)
    }

    /// Removes every binding of `user`.
    pub fn remove_all(&self, user: &str) {
        self.by_user.remove(user);
    }

    /// Live bindings of `user`, most recent first.
    pub fn list(&self, user: &str) -> Vec<Binding> {
        let now = Instant::now();
        let mut out: Vec<Binding> = self
            .by_user
            .get(user)
            .map(|l| {
                l.iter()
                    .filter(|b| b.expires > now && b.flow.is_open())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.reverse();
        out
    }

    /// Where requests for `user` go (every live binding).
    pub fn targets(&self, user: &str) -> Vec<Target> {
        self.list(user)
            .into_iter()
            .map(|b| Target {
                uri: b.contact,
                flow: b.flow,
                route: b.route,
            })
            .collect()
    }

    /// Whether `flow` carries a live registration of `user` (requests on it need no digest).
    /// Registrations made through a proxy (with a Path) do not count: the proxy's flow
    /// carries every user behind it.
    pub fn is_registered_flow(&self, user: &str, flow: &Flow) -> bool {
        let now = Instant::now();
        self.by_user.get(user).is_some_and(|l| {
            l.iter().any(|b| {
                b.expires > now && b.route.is_empty() && b.flow.same(flow) && b.flow.is_open()
            })
        })
    }

    /// Drops expired bindings; returns the users left with none, and the (user, contact)
    /// pairs removed.
    pub fn expire(&self, now: Instant) -> (Vec<String>, Vec<(String, String)>) {
        self.sweep(|b| b.expires > now)
    }

    /// Drops the bindings of a closed connection; same result as [`Bindings::expire`], and
    /// the users [`Bindings::watch_unregistered`] tied to it count as left without bindings.
    pub fn drop_connection(&self, connection: u64) -> (Vec<String>, Vec<(String, String)>) {
        let (mut emptied, removed) = self.sweep(|b| b.flow.connection() != Some(connection));
        if let Some((_, users)) = self.unregistered.remove(&connection) {
            for user in users {
                if !emptied.contains(&user) {
                    emptied.push(user);
                }
            }
        }
        (emptied, removed)
    }

    /// Notes that `user`, without a registration, is reached through `flow` (a TCP/TLS
    /// connection; UDP flows never close), so that closing it makes the user leave.
    pub fn watch_unregistered(&self, user: &str, flow: &Flow) {
        if let Some(id) = flow.connection() {
            let mut users = self.unregistered.entry(id).or_default();
            if !users.iter().any(|u| u == user) {
                users.push(user.to_string());
            }
        }
    }

    /// Whether an unregistered user's `flow` still reaches it: UDP always, a connection until
    /// it closes.
    pub fn unregistered_flow_open(&self, flow: &Flow) -> bool {
        match flow.connection() {
            Some(id) => flow.is_open() && self.unregistered.contains_key(&id),
            None => true,
        }
    }

    fn sweep(&self, keep: impl Fn(&Binding) -> bool) -> (Vec<String>, Vec<(String, String)>) {
        let mut emptied = Vec::new();
        let mut removed = Vec::new();
        self.by_user.retain(|user, list| {
            let before = list.len();
            list.retain(|b| {
                let k = keep(b);
                if !k {
                    removed.push((user.clone(), b.contact.clone()));
                }
                k
            });
            if list.is_empty() && before > 0 {
                emptied.push(user.clone());
            }
            !list.is_empty()
        });
        (emptied, removed)
    }

    fn retain(&self, user: &str, keep: impl Fn(&Binding) -> bool) -> bool {
        let mut empty = true;
        if let Some(mut list) = self.by_user.get_mut(user) {
            list.retain(|b| keep(b));
            empty = list.is_empty();
        }
        if empty {
            self.by_user.remove_if(user, |_, l| l.is_empty());
        }
        empty
    }
}

#[cfg(test)]
mod tests {
    use super::split_list;

    #[test]
    fn lists_split_on_commas_outside_angles_and_quotes() {
        let got = split_list([
            "<sip:a.example;lr>, \"x, \\\"y\" <sip:b.example;lr>",
            "<sip:c.example;lr;foo=\"1,2\">",
            " , ",
        ]);
        assert_eq!(
            got,
            vec![
                "<sip:a.example;lr>".to_string(),
                "\"x, \\\"y\" <sip:b.example;lr>".to_string(),
                "<sip:c.example;lr;foo=\"1,2\">".to_string(),
            ]
        );
    }
}
