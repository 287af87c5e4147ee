//! Argument parsing and validation for the pager commands: nicknames (optionally quoted),
//! bounded free text, `#history` counts, `#invite` addresses and `#create` arguments. Every
//! failure is a [`CommandError::BadArgument`] with a message meant for the user.

use super::{
    CommandError, PagerCommand, MAX_ADDRESS_CHARS, MAX_CATEGORY_CHARS, MAX_HISTORY, MAX_NICK_CHARS,
    MAX_ROOM_CHARS,
};

pub(super) fn bad(msg: String) -> CommandError {
    CommandError::BadArgument(msg)
}

/// Splits off the first argument: a `"quoted string"` or a run of non-whitespace. Returns the
/// argument and the trimmed remainder.
pub(super) fn first_arg<'a>(
    args: &'a str,
    usage: &str,
) -> Result<(&'a str, &'a str), CommandError> {
    if let Some(quoted) = args.strip_prefix('"') {
        let Some(end) = quoted.find('"') else {
            return Err(bad(format!("Missing closing quote. Usage: {usage}")));
        };
        let (arg, rest) = quoted.split_at(end);
        return Ok((arg, rest.get(1..).unwrap_or("").trim()));
    }
    Ok(match args.find(char::is_whitespace) {
        Some(i) => {
            let (arg, rest) = args.split_at(i);
            (arg, rest.trim())
        }
        None => (args, ""),
    })
}

/// A nickname that is the whole argument (spaces allowed), optionally in double quotes.
pub(super) fn whole_nick(args: &str, usage: &str) -> Result<String, CommandError> {
    if args.starts_with('"') {
        let (nick, rest) = first_arg(args, usage)?;
        if !rest.is_empty() {
            return Err(bad(format!(
                "Unexpected text after the quoted nickname. Usage: {usage}"
            )));
        }
        return checked_nick(nick);
    }
    checked_nick(args)
}

pub(super) fn checked_nick(nick: &str) -> Result<String, CommandError> {
    let nick = nick.trim();
    if nick.is_empty() {
        return Err(bad("The nickname is empty.".into()));
    }
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(bad(format!(
            "That nickname is too long (at most {MAX_NICK_CHARS} characters)."
        )));
    }
    if nick.chars().any(char::is_control) {
        return Err(bad("A nickname cannot contain control characters.".into()));
    }
    Ok(nick.to_string())
}

/// Free text (topic, reason): bounded, no control characters other than tab and line breaks.
pub(super) fn free_text(text: &str, what: &str, max: usize) -> Result<String, CommandError> {
    if text.chars().count() > max {
        return Err(bad(format!(
            "The {what} is too long (at most {max} characters)."
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(bad(format!(
            "The {what} cannot contain control characters."
        )));
    }
    Ok(text.to_string())
}

pub(super) fn history_count(args: &str) -> Result<u32, CommandError> {
    let usage = "Usage: #history [n], e.g. #history 20";
    if args.is_empty() || !args.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "#history takes a number of messages (1 to {MAX_HISTORY}). {usage}"
        )));
    }
    let digits = args.trim_start_matches('0');
    if digits.is_empty() {
        return Err(bad(format!(
            "Ask for at least one message (1 to {MAX_HISTORY}). {usage}"
        )));
    }
    // Too many digits for u32 is simply "a lot": cap it like any other large number.
    Ok(digits
        .parse::<u32>()
        .map_or(MAX_HISTORY, |n| n.min(MAX_HISTORY)))
}

pub(super) fn address(args: &str, usage: &str) -> Result<String, CommandError> {
    if args.is_empty() {
        return Err(bad(format!(
            "#invite needs the address of the person to invite. Usage: {usage}"
        )));
    }
    if args.contains(char::is_whitespace) {
        return Err(bad(format!(
            "#invite takes one address (it invites to the room you send it to). Usage: {usage}"
        )));
    }
    let addr = args
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(args);
    if addr.chars().count() > MAX_ADDRESS_CHARS || addr.chars().any(char::is_control) {
        return Err(bad(format!("That address is not valid. Usage: {usage}")));
    }
    let full_address = || {
        bad(format!(
            "Give the full address, like sip:bob@example.com or xmpp:bob@example.com. Usage: \
             {usage}"
        ))
    };
    if addr.contains(['<', '>', '"']) {
        return Err(full_address());
    }
    let scheme_end = addr.find(':');
    let (uri, user_part) = match scheme_end {
        Some(i) => {
            let scheme = &addr[..i];
            if !["sip", "sips", "xmpp"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
            {
                return Err(bad(format!(
                    "Only sip:, sips: and xmpp: addresses can be invited. Usage: {usage}"
                )));
            }
            (addr.to_string(), &addr[i + 1..])
        }
        None => (format!("sip:{addr}"), addr),
    };
    let ok = user_part
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !host.contains('@'));
    if !ok {
        return Err(full_address());
    }
    Ok(uri)
}

pub(super) fn create(args: &str, usage: &str) -> Result<PagerCommand, CommandError> {
    let mut words = args.split_whitespace();
    let Some(name) = words.next() else {
        return Err(bad(format!("#create needs a room name. Usage: {usage}")));
    };
    if name.chars().count() > MAX_ROOM_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@'))
    {
        return Err(bad(format!(
            "A room name has at most {MAX_ROOM_CHARS} characters and none of \" & ' / : < > @. \
             Usage: {usage}"
        )));
    }
    let mut rest: Vec<&str> = words.collect();
    let is_flag = |w: &&str| w.eq_ignore_ascii_case("private") || w.eq_ignore_ascii_case("public");
    let mut private = false;
    if rest.first().is_some_and(is_flag) {
        private = rest.remove(0).eq_ignore_ascii_case("private");
    } else if rest.last().is_some_and(is_flag) {
        private = rest
            .pop()
            .is_some_and(|w| w.eq_ignore_ascii_case("private"));
    }
    let category = rest.join(" ");
    if category.chars().count() > MAX_CATEGORY_CHARS {
        return Err(bad(format!(
            "The category name is too long (at most {MAX_CATEGORY_CHARS} characters)."
        )));
    }
    if category.chars().any(char::is_control) {
        return Err(bad(
            "A category name cannot contain control characters.".into()
        ));
    }
    Ok(PagerCommand::Create {
        name: name.to_string(),
        private,
        category: (!category.is_empty()).then_some(category),
    })
}
