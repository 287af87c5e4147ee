//! Parsing the body of a SIP MESSAGE sent to a room URI (`sip:room@conference.<domain>`) into a
//! [`PagerCommand`]: `#word args` runs a command, anything else is posted.
//!
//! Command names follow Kamailio's imc module where it has the command (`#create`, `#join`,
//! `#invite`/`#add`, `#accept`, `#reject`, `#remove`, `#members`, `#rooms`, `#leave`,
//! `#destroy`, `#help`), with imc's older names as aliases (`#exit`, `#list`, `#deny`). The
//! command word is case-insensitive. `##text` posts `#text`. Every argument is bounded and
//! checked here so the caller gets either a well-formed command or a [`CommandError`] whose
//! `Display` text can be sent back to the user as is. Pure, allocation-light, never panics.

/// Longest nickname, in characters (the room engine's limit too).
pub const MAX_NICK_CHARS: usize = 64;
/// Longest room name given to `#create`, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest category name given to `#create`, in characters.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 1024;
/// Longest `#remove` reason, in characters.
pub const MAX_REASON_CHARS: usize = 256;
/// Longest `#invite` address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 256;
/// `#history n` asks for at most this many messages; larger numbers are capped to it.
pub const MAX_HISTORY: u32 = 100;
/// An unknown command word is echoed back truncated to this many characters.
const MAX_ECHOED_WORD_CHARS: usize = 32;

mod args;

/// What a MESSAGE to a room asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagerCommand {
    /// `#join [nick]`: enter the room, under `nick` or (None) a nick chosen by the caller.
    Join { nick: Option<String> },
    /// `#leave` (`#exit`).
    Leave,
    /// `#nick name`: change nickname.
    Nick(String),
    /// `#members` (`#who`, `#list`): who is in the room.
    Members,
    /// `#topic`: show the topic; `#topic text` (`#subject`): set it.
    Topic(Option<String>),
    /// `#history [n]`: the last `n` messages (capped at [`MAX_HISTORY`]), or a default amount.
    History(Option<u32>),
    /// `#invite address` (`#add`): a `sip:`, `sips:` or `xmpp:` URI as given (a bare
    /// `user@domain` becomes `sip:user@domain`; surrounding `<…>` are removed).
    Invite(String),
    /// `#accept`: accept the pending invitation to this room.
    Accept,
    /// `#reject` (`#deny`): decline the pending invitation to this room.
    Reject,
    /// `#rooms`: list rooms by category.
    Rooms,
    /// `#files`: the files posted to this room, with their download links.
    Files,
    /// `#create name [private] [category]`.
    Create {
        name: String,
        private: bool,
        category: Option<String>,
    },
    /// `#destroy`: destroy this room (owners).
    Destroy,
    /// `#remove nick [reason]` (`#kick`): kick an occupant (moderators).
    Remove {
        nick: String,
        reason: Option<String>,
    },
    /// `#help`.
    Help,
    /// Any other body: text to post (trailing CR/LF removed; `##x` posts `#x`).
    Post(String),
}

impl PagerCommand {
    /// The canonical command name without `#` (`"post"` for [`PagerCommand::Post`]), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            PagerCommand::Join { .. } => "join",
            PagerCommand::Leave => "leave",
            PagerCommand::Nick(_) => "nick",
            PagerCommand::Members => "members",
            PagerCommand::Topic(_) => "topic",
            PagerCommand::History(_) => "history",
            PagerCommand::Invite(_) => "invite",
            PagerCommand::Accept => "accept",
            PagerCommand::Reject => "reject",
            PagerCommand::Rooms => "rooms",
            PagerCommand::Files => "files",
            PagerCommand::Create { .. } => "create",
            PagerCommand::Destroy => "destroy",
            PagerCommand::Remove { .. } => "remove",
            PagerCommand::Help => "help",
            PagerCommand::Post(_) => "post",
        }
    }
}

/// Why a body could not be turned into a command. `Display` is a complete sentence meant for
/// the user (sent back as a MESSAGE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `#word` is not a command. Holds the word as typed (truncated, control characters
    /// replaced), empty for a lone `#`.
    #[error("{}", unknown_message(.0))]
    Unknown(String),
    /// The command exists but its arguments are wrong; the text says what and how to fix it.
    #[error("{0}")]
    BadArgument(String),
    /// Nothing to post (empty or whitespace-only body).
    #[error("Empty message: there is nothing to post.")]
    Empty,
}

fn unknown_message(word: &str) -> String {
    let what = if word.is_empty() {
        "A lone '#' is not a command.".to_string()
    } else {
        format!("Unknown command #{word}.")
    };
    format!(
        "{what} Send #help for the list of commands, or start the message with ## to post text \
         beginning with #."
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Join,
    Leave,
    Nick,
    Members,
    Topic,
    History,
    Invite,
    Accept,
    Reject,
    Rooms,
    Files,
    Create,
    Destroy,
    Remove,
    Help,
}

/// One command: its name, aliases, usage line and one-line description (also the help text).
struct Spec {
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    about: &'static str,
    kind: Kind,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "join",
        aliases: &[],
        usage: "#join [nick]",
        about: "join this room, optionally under a nickname",
        kind: Kind::Join,
    },
    Spec {
        name: "leave",
        aliases: &["exit"],
        usage: "#leave",
        about: "leave this room",
        kind: Kind::Leave,
    },
    Spec {
        name: "nick",
        aliases: &[],
        usage: "#nick <name>",
        about: "change your nickname",
        kind: Kind::Nick,
    },
    Spec {
        name: "members",
        aliases: &["who", "list"],
        usage: "#members",
        about: "list who is in this room",
        kind: Kind::Members,
    },
    Spec {
        name: "topic",
        aliases: &["subject"],
        usage: "#topic [text]",
        about: "show the topic, or set it to text",
        kind: Kind::Topic,
    },
    Spec {
        name: "history",
        aliases: &[],
        usage: "#history [n]",
        about: "show the last n messages (at most 100)",
        kind: Kind::History,
    },
    Spec {
        name: "invite",
        aliases: &["add"],
        usage: "#invite <sip:user@domain|xmpp:user@domain>",
        about: "invite someone to this room",
        kind: Kind::Invite,
    },
    Spec {
        name: "accept",
        aliases: &[],
        usage: "#accept",
        about: "accept an invitation to this room",
        kind: Kind::Accept,
    },
    Spec {
        name: "reject",
        aliases: &["deny"],
        usage: "#reject",
        about: "decline an invitation to this room",
        kind: Kind::Reject,
    },
    Spec {
        name: "rooms",
        aliases: &[],
        usage: "#rooms",
        about: "list the rooms, by category",
        kind: Kind::Rooms,
    },
    Spec {
        name: "files",
        aliases: &[],
        usage: "#files",
        about: "list the files posted to this room, with download links",
        kind: Kind::Files,
    },
    Spec {
        name: "create",
        aliases: &[],
        usage: "#create <name> [private] [category]",
        about: "create a room (private: members only)",
        kind: Kind::Create,
    },
    Spec {
        name: "destroy",
        aliases: &[],
        usage: "#destroy",
        about: "destroy this room (owners only)",
        kind: Kind::Destroy,
    },
    Spec {
        name: "remove",
        aliases: &["kick"],
        usage: "#remove <nick> [reason]",
        about: "remove someone from this room (moderators only)",
        kind: Kind::Remove,
    },
    Spec {
        name: "help",
        aliases: &[],
        usage: "#help",
        about: "show this help",
        kind: Kind::Help,
    },
];

/// Every command word the parser accepts (names and aliases), lowercase, for tests and docs.
pub fn command_words() -> impl Iterator<Item = &'static str> {
    SPECS
        .iter()
        .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
}

/// The reply to `#help`: one line per command with its usage, aliases and what it does, plus
/// how posting works.
pub fn help_text() -> String {
    let mut out = String::from("Commands (send them to the room's address):\n");
    for spec in SPECS {
        out.push_str(spec.usage);
        for (i, alias) in spec.aliases.iter().enumerate() {
            out.push_str(if i == 0 { " (or #" } else { ", #" });
            out.push_str(alias);
        }
        if !spec.aliases.is_empty() {
            out.push(')');
        }
        out.push_str(" - ");
        out.push_str(spec.about);
        out.push('\n');
    }
    out.push_str(
        "Any other text is posted to the room; start it with ## to post text beginning with #.",
    );
    out
}

/// Parses a MESSAGE body (already decoded to text; for `message/cpim` pass the inner content).
///
/// A body not starting with `#` is a [`PagerCommand::Post`] of the body with trailing CR/LF
/// removed; `##…` posts the text after the first `#`. Otherwise the word after `#` (up to
/// whitespace, case-insensitive) names the command and the rest, trimmed, is its argument.
pub fn parse_command(body: &str) -> Result<PagerCommand, CommandError> {
    let Some(after_hash) = body.strip_prefix('#') else {
        return post(body);
    };
    if after_hash.starts_with('#') {
        return post(after_hash);
    }
    let (word, rest) = match after_hash.find(char::is_whitespace) {
        Some(i) => after_hash.split_at(i),
        None => (after_hash, ""),
    };
    let args = rest.trim();
    let Some(spec) = SPECS.iter().find(|s| {
        s.name.eq_ignore_ascii_case(word) || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(word))
    }) else {
        return Err(CommandError::Unknown(echo_word(word)));
    };
    parse_args(spec, args)
}

fn post(text: &str) -> Result<PagerCommand, CommandError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(PagerCommand::Post(text.to_string()))
}

fn echo_word(word: &str) -> String {
    word.chars()
        .take(MAX_ECHOED_WORD_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

use args::{address, bad, checked_nick, create, first_arg, free_text, history_count, whole_nick};

fn parse_args(spec: &Spec, args: &str) -> Result<PagerCommand, CommandError> {
    let usage = spec.usage;
    Ok(match spec.kind {
        Kind::Join => PagerCommand::Join {
            nick: if args.is_empty() {
                None
            } else {
                Some(whole_nick(args, usage)?)
            },
        },
        Kind::Nick => {
            if args.is_empty() {
                return Err(bad(format!("#nick needs the new nickname. Usage: {usage}")));
            }
            PagerCommand::Nick(whole_nick(args, usage)?)
        }
        Kind::Topic => PagerCommand::Topic(if args.is_empty() {
            None
        } else {
            Some(free_text(args, "topic", MAX_TOPIC_CHARS)?)
        }),
        Kind::History => PagerCommand::History(if args.is_empty() {
            None
        } else {
            Some(history_count(args)?)
        }),
        Kind::Invite => PagerCommand::Invite(address(args, usage)?),
        Kind::Create => create(args, usage)?,
        Kind::Remove => {
            let (nick, reason) = first_arg(args, usage)?;
            if nick.is_empty() {
                return Err(bad(format!(
                    "#remove needs the nickname of the occupant to remove. Usage: {usage}"
                )));
            }
            let nick = checked_nick(nick)?;
            let reason = if reason.is_empty() {
                None
            } else {
                Some(free_text(reason, "reason", MAX_REASON_CHARS)?)
            };
            PagerCommand::Remove { nick, reason }
        }
        // Extra words after #help are harmless; ignore them.
        Kind::Help => PagerCommand::Help,
        Kind::Leave
        | Kind::Members
        | Kind::Accept
        | Kind::Reject
        | Kind::Rooms
        | Kind::Files
        | Kind::Destroy => {
            if !args.is_empty() {
                return Err(bad(format!(
                    "#{} takes no arguments: it acts on the room you send it to. Usage: {usage}",
                    spec.name
                )));
            }
            match spec.kind {
                Kind::Leave => PagerCommand::Leave,
                Kind::Members => PagerCommand::Members,
                Kind::Accept => PagerCommand::Accept,
                Kind::Reject => PagerCommand::Reject,
                Kind::Rooms => PagerCommand::Rooms,
                Kind::Files => PagerCommand::Files,
                _ => PagerCommand::Destroy,
            }
        }
    })
}
