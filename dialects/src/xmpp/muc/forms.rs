//! XEP-0004 data forms used by MUC and MAM: the room configuration form (muc#roomconfig,
//! XEP-0045 §10.2), the room info form (muc#roominfo, §15.5.4) and the MAM query form.

use crate::xmpp::element::Element;
use crate::xmpp::ns;
use palaver_core::{RoomConfig, Whois};

/// A field of a form to build.
struct Field<'a> {
    var: &'a str,
    kind: &'a str,
    label: &'a str,
    values: Vec<String>,
    options: &'a [(&'a str, &'a str)],
}

fn form(kind: &str, form_type: &str, title: Option<&str>, fields: Vec<Field<'_>>) -> Element {
    let mut x = Element::new("x", ns::DATA_FORMS).with_attr("type", kind);
    if let Some(t) = title {
        x.append_child(Element::new("title", ns::DATA_FORMS).with_text(t));
    }
    x.append_child(
        Element::new("field", ns::DATA_FORMS)
            .with_attr("var", "FORM_TYPE")
            .with_attr("type", "hidden")
            .with_child(Element::new("value", ns::DATA_FORMS).with_text(form_type)),
    );
    for f in fields {
        let mut el = Element::new("field", ns::DATA_FORMS).with_attr("var", f.var);
        if !f.kind.is_empty() {
            el.set_attr("type", f.kind);
        }
        if !f.label.is_empty() {
            el.set_attr("label", f.label);
        }
        for v in f.values {
            el.append_child(Element::new("value", ns::DATA_FORMS).with_text(v));
        }
        for (label, value) in f.options {
            el.append_child(
                Element::new("option", ns::DATA_FORMS)
                    .with_attr("label", *label)
                    .with_child(Element::new("value", ns::DATA_FORMS).with_text(*value)),
            );
        }
        x.append_child(el);
    }
    x
}

fn boolean(b: bool) -> Vec<String> {
    vec![if b { "1" } else { "0" }.to_string()]
}

fn field<'a>(var: &'a str, kind: &'a str, label: &'a str, values: Vec<String>) -> Field<'a> {
    Field {
        var,
        kind,
        label,
        values,
        options: &[],
    }
}

const WHOIS_OPTIONS: &[(&str, &str)] = &[("Moderators only", "moderators"), ("Anyone", "anyone")];
const PM_OPTIONS: &[(&str, &str)] = &[("Anyone", "anyone"), ("Nobody", "none")];

/// The owner's configuration form with the room's current values.
pub fn config_form(config: &RoomConfig) -> Element {
    let c = config;
    form(
        "form",
        ns::MUC_ROOMCONFIG,
        Some("Room configuration"),
        vec![
            field(
                "muc#roomconfig_roomname",
                "text-single",
                "Title",
                vec![c.title.clone()],
            ),
            field(
                "muc#roomconfig_roomdesc",
                "text-single",
                "Description",
                vec![c.description.clone()],
            ),
            field(
                "muc#roomconfig_persistentroom",
                "boolean",
                "Persistent",
                boolean(c.persistent),
            ),
            field(
                "muc#roomconfig_publicroom",
                "boolean",
                "Listed in the room directory",
                boolean(c.public),
            ),
            field(
                "muc#roomconfig_membersonly",
                "boolean",
                "Members only",
                boolean(c.members_only),
            ),
            field(
                "muc#roomconfig_moderatedroom",
                "boolean",
                "Moderated",
                boolean(c.moderated),
            ),
            field(
                "muc#roomconfig_passwordprotectedroom",
                "boolean",
                "Password protected",
                boolean(c.password.is_some()),
            ),
            field(
                "muc#roomconfig_roomsecret",
                "text-private",
                "Password",
                vec![c.password.clone().unwrap_or_default()],
            ),
            field(
                "muc#roomconfig_maxusers",
                "text-single",
                "Maximum occupants (0 = no limit)",
                vec![c.max_users.to_string()],
            ),
            Field {
                var: "muc#roomconfig_whois",
                kind: "list-single",
                label: "Who may see real addresses",
                values: vec![match c.whois {
                    Whois::Anyone => "anyone",
                    Whois::Moderators => "moderators",
                }
                .into()],
                options: WHOIS_OPTIONS,
            },
            Field {
                var: "muc#roomconfig_allowpm",
                kind: "list-single",
                label: "Who may send private messages",
                values: vec![if c.allow_private_messages {
                    "anyone"
                } else {
                    "none"
                }
                .into()],
                options: PM_OPTIONS,
            },
            field(
                "muc#roomconfig_allowinvites",
                "boolean",
                "Occupants may invite",
                boolean(c.allow_invites),
            ),
            field(
                "muc#roomconfig_changesubject",
                "boolean",
                "Occupants may change the subject",
                boolean(c.occupants_may_change_subject),
            ),
            field(
                "muc#roomconfig_enablelogging",
                "boolean",
                "Keep a public archive",
                boolean(c.logged),
            ),
            field(
                "muc#roomconfig_historylength",
                "text-single",
                "Messages of history sent on join",
                vec![c.history_length.to_string()],
            ),
        ],
    )
}

/// Why a submitted form was refused (maps to `<bad-request/>` / `<not-acceptable/>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad form: {0}")]
pub struct FormError(pub String);

/// Values of a submitted form: (var, values).
pub fn submitted_values(x: &Element) -> Vec<(String, Vec<String>)> {
    x.children_named("field", ns::DATA_FORMS)
        .filter_map(|f| {
            let var = f.attr("var")?.to_string();
            let values = f
                .children_named("value", ns::DATA_FORMS)
                .map(|v| v.text())
                .collect();
            Some((var, values))
        })
        .collect()
}

fn parse_bool(v: &str) -> Result<bool, FormError> {
    match v.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(FormError(format!("not a boolean: {other:?}"))),
    }
}

/// Applies a submitted configuration form to `base`. Unknown fields are ignored (XEP-0004).
pub fn apply_config_form(base: &RoomConfig, x: &Element) -> Result<RoomConfig, FormError> {
    let mut c = base.clone();
    let mut password_protected = None;
    let mut secret = None;
    for (var, values) in submitted_values(x) {
        let first = values.first().cloned().unwrap_or_default();
        match var.as_str() {
            "muc#roomconfig_roomname" => c.title = first,
            "muc#roomconfig_roomdesc" => c.description = first,
            "muc#roomconfig_persistentroom" => c.persistent = parse_bool(&first)?,
            "muc#roomconfig_publicroom" => c.public = parse_bool(&first)?,
            "muc#roomconfig_membersonly" => c.members_only = parse_bool(&first)?,
            "muc#roomconfig_moderatedroom" => c.moderated = parse_bool(&first)?,
            "muc#roomconfig_passwordprotectedroom" => {
                password_protected = Some(parse_bool(&first)?)
            }
            "muc#roomconfig_roomsecret" => secret = Some(first),
            "muc#roomconfig_maxusers" => {
                c.max_users = match first.trim() {
                    "" | "none" => 0,
                    n => n.parse().map_err(|_| FormError("maxusers".into()))?,
                }
            }
            "muc#roomconfig_whois" => {
                c.whois = match first.as_str() {
                    "anyone" => Whois::Anyone,
                    "moderators" => Whois::Moderators,
                    other => return Err(FormError(format!("whois {other:?}"))),
                }
            }
            "muc#roomconfig_allowpm" => c.allow_private_messages = first != "none",
            "muc#roomconfig_allowinvites" => c.allow_invites = parse_bool(&first)?,
            "muc#roomconfig_changesubject" => c.occupants_may_change_subject = parse_bool(&first)?,
            "muc#roomconfig_enablelogging" => c.logged = parse_bool(&first)?,
            "muc#roomconfig_historylength" => {
                c.history_length = first
                    .trim()
                    .parse()
                    .map_err(|_| FormError("historylength".into()))?
            }
            _ => {}
        }
    }
    if c.title.chars().count() > 256 || c.description.chars().count() > 2048 {
        return Err(FormError("title or description too long".into()));
    }
    match (password_protected, secret) {
        (Some(false), _) => c.password = None,
        (_, Some(s)) if !s.is_empty() => c.password = Some(s),
        (Some(true), _) if c.password.is_none() => {
            return Err(FormError("password protection needs a password".into()))
        }
        (None, Some(_)) => c.password = None,
        _ => {}
    }
    Ok(c)
}

/// muc#roominfo extended disco form.
pub fn roominfo_form(config: &RoomConfig, subject: &str, occupants: u32) -> Element {
    form(
        "result",
        ns::MUC_ROOMINFO,
        None,
        vec![
            field(
                "muc#roominfo_description",
                "",
                "Description",
                vec![config.description.clone()],
            ),
            field(
                "muc#roominfo_subject",
                "",
                "Subject",
                vec![subject.to_string()],
            ),
            field(
                "muc#roominfo_occupants",
                "",
                "Number of occupants",
                vec![occupants.to_string()],
            ),
            field(
                "muc#roomconfig_roomname",
                "",
                "Title",
                vec![config.title.clone()],
            ),
            field(
                "muc#roominfo_changesubject",
                "",
                "Occupants may change the subject",
                boolean(config.occupants_may_change_subject),
            ),
        ],
    )
}

/// The MAM query form fields a client may fill (XEP-0313 §5.1.1).
pub fn mam_query_form() -> Element {
    form(
        "form",
        ns::MAM,
        None,
        vec![
            field("with", "jid-single", "", vec![]),
            field("start", "text-single", "", vec![]),
            field("end", "text-single", "", vec![]),
            field("before-id", "text-single", "", vec![]),
            field("after-id", "text-single", "", vec![]),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip_through_submitted_form() {
        let c = RoomConfig {
            title: "Ops & <friends>".into(),
            members_only: true,
            password: Some("s3cret".into()),
            whois: Whois::Anyone,
            max_users: 42,
            ..Default::default()
        };
        let mut x = config_form(&c);
        x.set_attr("type", "submit");
        let back = apply_config_form(&RoomConfig::default(), &x).expect("valid form");
        assert_eq!(back, c);
    }

    #[test]
    fn bad_values_are_refused() {
        let x = Element::new("x", ns::DATA_FORMS).with_child(
            Element::new("field", ns::DATA_FORMS)
                .with_attr("var", "muc#roomconfig_membersonly")
                .with_child(Element::new("value", ns::DATA_FORMS).with_text("maybe")),
        );
        assert!(apply_config_form(&RoomConfig::default(), &x).is_err());
    }

    #[test]
    fn empty_submit_keeps_config() {
        let x = Element::new("x", ns::DATA_FORMS).with_attr("type", "submit");
        let c = RoomConfig::default();
        assert_eq!(apply_config_form(&c, &x).expect("ok"), c);
    }
}
