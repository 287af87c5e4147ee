//! SUBSCRIBE dialogs of a [`SipClient`] (RFC 6665 as a subscriber): the initial SUBSCRIBE to
//! a room's `conference` event package, refreshes within the dialog (to-tag, route set,
//! increasing CSeq) and the final `Expires: 0`.

use super::client::{Dialog, Spec};
use super::{sip_uri, Response, SipClient};
use anyhow::{Context as _, Result};
use palaver_dialects::sip::Method;

impl SipClient {
    /// SUBSCRIBE to `room`'s conference events (`Event: conference`, `Accept:
    /// application/conference-info+xml`) for `expires` seconds. A 2xx starts a dialog that
    /// [`SipClient::resubscribe`] and [`SipClient::unsubscribe`] continue; NOTIFYs arrive in
    /// the inbox ([`SipClient::wait_notify`]).
    pub async fn subscribe(&mut self, room: &str, expires: u32) -> Result<Response> {
        let room = sip_uri(room);
        let mut spec = Spec::out_of_dialog(
            Method::Subscribe,
            &room,
            true,
            subscribe_headers(expires, &[]),
            None,
        );
        let response = self
            .send_spec(&mut spec, true)
            .await
            .with_context(|| format!("SUBSCRIBE {room}"))?;
        if response.is_success() {
            let m = &response.message;
            self.subscriptions.insert(
                room.clone(),
                Dialog {
                    call_id: spec.call_id,
                    local_tag: spec.from_tag,
                    remote_tag: m.to().tag().map(str::to_string),
                    target: m.contact().map_or(room, |c| c.uri.to_string()),
                    route: route_set(&response),
                    cseq: spec.cseq,
                },
            );
        }
        Ok(response)
    }

    /// Refreshes the subscription to `room` within its dialog (`Expires: 0` ends it; the
    /// dialog is forgotten after a 2xx or 481 to that).
    pub async fn resubscribe(&mut self, room: &str, expires: u32) -> Result<Response> {
        let room = sip_uri(room);
        let dialog = self
            .subscriptions
            .get(&room)
            .cloned()
            .with_context(|| format!("no subscription dialog for {room}"))?;
        let route: Vec<&str> = dialog.route.iter().map(String::as_str).collect();
        let mut spec = Spec {
            method: Method::Subscribe,
            request_uri: dialog.target.clone(),
            to_uri: room.clone(),
            to_tag: dialog.remote_tag.clone(),
            from_tag: dialog.local_tag.clone(),
            call_id: dialog.call_id.clone(),
            cseq: dialog.cseq + 1,
            contact: true,
            headers: subscribe_headers(expires, &route),
            body: None,
        };
        let result = self.send_spec(&mut spec, true).await;
        if let Some(d) = self.subscriptions.get_mut(&room) {
            d.cseq = spec.cseq;
        }
        let response =
            result.with_context(|| format!("re-SUBSCRIBE {room} (expires {expires})"))?;
        if expires == 0 && (response.is_success() || response.code == 481) {
            self.subscriptions.remove(&room);
        }
        Ok(response)
    }

    /// Ends the subscription to `room` (`Expires: 0` in its dialog).
    pub async fn unsubscribe(&mut self, room: &str) -> Result<Response> {
        self.resubscribe(room, 0).await
    }
}

fn subscribe_headers(expires: u32, route: &[&str]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = route
        .iter()
        .map(|r| ("Route".into(), r.to_string()))
        .collect();
    headers.extend([
        ("Event".into(), "conference".into()),
        ("Accept".into(), "application/conference-info+xml".into()),
        ("Expires".into(), expires.to_string()),
    ]);
    headers
}

/// The route set of a dialog from the 2xx that established it: its Record-Route values,
/// reversed (RFC 3261 §12.1.2, the UAC's view).
pub(super) fn route_set(response: &Response) -> Vec<String> {
    let mut route: Vec<String> = response
        .message
        .header_values("Record-Route")
        .map(str::to_string)
        .collect();
    route.reverse();
    route
}
