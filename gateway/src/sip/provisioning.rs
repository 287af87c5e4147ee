//! Lync in-band provisioning (`Event: vnd-microsoft-provisioning-v2`, [MS-SIPREGE]): a Lync-
//! dialect client (pidgin-sipe) subscribes to it right after registering and turns group
//! chat on only when the answer says so. palaver answers the fetch with a piggy-backed
//! document in the 200 itself (`ms-piggyback-cseq`, `subscription-state: terminated`) holding
//! one group, `persistentChatConfiguration`: persistent chat enabled, and the lookup URI
//! (`sip:<sip.chat_lookup_user>@<domain>`) as the default pool. Nothing else is provisioned.

use super::auth::authenticate_sender;
use super::transport::Flow;
use super::SipService;
use palaver_dialects::sip::SipMessage;

/// The event package.
pub const EVENT: &str = "vnd-microsoft-provisioning-v2";

/// The body type of the answer.
const CONTENT_TYPE: &str = "application/vnd-microsoft-roaming-provisioning-v2+xml";

/// The provisioning document: persistent chat on, with `pool_uri` as its pool.
fn document(pool_uri: &str) -> String {
    let mut uri = Vec::new();
    palaver_dialects::xmpp::escape::escape_text(pool_uri, &mut uri);
    let uri = String::from_utf8_lossy(&uri);
    format!(
        "<provisionGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/provisiongrouplist\">\
         <provisionGroup name=\"persistentChatConfiguration\"><propertyEntryList>\
         <property name=\"EnablePersistentChat\">true</property>\
         <property name=\"DefaultPersistentChatPoolUri\">{uri}</property>\
         </propertyEntryList></provisionGroup></provisionGroupList>"
    )
}

/// A SUBSCRIBE for `vnd-microsoft-provisioning-v2`: only for the subscriber's own address.
pub async fn on_subscribe(svc: &SipService, req: &SipMessage, flow: &Flow) {
    let Some(user) = authenticate_sender(svc, req, flow).await else {
        return;
    };
    let own = req
        .request_uri()
        .and_then(|u| super::auth::local_user(svc, u))
        .is_some_and(|target| target == user);
    if !own {
        let resp = svc.reply(req, 403, "Only Your Own Provisioning");
        return svc.respond(req, flow, resp).await;
    }
    let lookup = format!("sip:{}@{}", svc.config.chat_lookup_user, svc.domain);
    let resp = svc
        .ok(req)
        .with_header("Event", EVENT)
        .with_header("ms-piggyback-cseq", "1")
        .with_header("Expires", "0")
        .with_header("Subscription-State", "terminated;expires=0")
        .with_body(CONTENT_TYPE, document(&lookup).into_bytes());
    tracing::debug!(user = %user, "Lync provisioning answered");
    svc.respond(req, flow, resp).await;
}

#[cfg(test)]
mod tests {
    use super::document;

    #[test]
    fn the_document_enables_persistent_chat_with_the_lookup_uri() {
        let doc = document("sip:ocschat@example.org");
        let parsed =
            palaver_dialects::xmpp::element::Element::parse(doc.as_bytes()).expect("well-formed");
        let props: Vec<(String, String)> = parsed
            .children()
            .flat_map(|g| g.children())
            .flat_map(|l| l.children())
            .map(|p| (p.attr("name").unwrap_or_default().to_string(), p.text()))
            .collect();
        assert_eq!(
            props,
            vec![
                ("EnablePersistentChat".into(), "true".into()),
                (
                    "DefaultPersistentChatPoolUri".into(),
                    "sip:ocschat@example.org".into()
                ),
            ]
        );
    }
}
