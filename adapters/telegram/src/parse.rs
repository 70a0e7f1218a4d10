use beckon_core::{Event, EventKind, ParseError, UserProfile};
use serde::Deserialize;
use serde::de::IgnoredAny;
use teloxide_core::types::{ChatMemberKind, Message, Update, UpdateKind, User};

use crate::NAME;

/// Parses one webhook body (one `Update`) into at most one event.
pub(crate) fn update(body: &[u8], bot_username: &str) -> Result<Vec<Event>, ParseError> {
    let update: Update = serde_json::from_slice(body).map_err(describe)?;
    let dedupe_key = update.id.0.to_string();
    let event = match update.kind {
        UpdateKind::Message(msg) => message(&msg, bot_username),
        UpdateKind::CallbackQuery(q) => q.data.map(|payload| {
            // An inaccessible (too old) message still tells the chat; without a message
            // the button was pressed in a private chat, whose id is the user's id.
            let chat_id = match &q.message {
                Some(m) => m.chat().id.0.to_string(),
                None => q.from.id.0.to_string(),
            };
            (chat_id, user(&q.from), EventKind::Button { payload })
        }),
        UpdateKind::MyChatMember(m) => match m.new_chat_member.kind {
            ChatMemberKind::Banned(_) => Some((
                m.chat.id.0.to_string(),
                user(&m.from),
                EventKind::Unsubscribed,
            )),
            _ => None,
        },
        UpdateKind::Error(_) => {
            reject_known_kind_with_wrong_shape(body)?;
            None
        }
        _ => None,
    };
    Ok(event
        .map(|(chat_id, user, kind)| Event {
            channel: NAME.to_owned(),
            chat_id,
            user,
            kind,
            dedupe_key,
        })
        .into_iter()
        .collect())
}

type Parts = (String, UserProfile, EventKind);

fn message(msg: &Message, bot_username: &str) -> Option<Parts> {
    let text = msg.text()?;
    let chat_id = msg.chat.id.0.to_string();
    let profile = msg.from.as_ref().map(user).unwrap_or_default();
    let kind = match command(text) {
        Some(cmd) => {
            if let Some(target) = cmd.bot {
                let ours = bot_username.trim_start_matches('@');
                if !target.eq_ignore_ascii_case(ours) {
                    return None; // addressed to another bot in the same group
                }
            }
            if cmd.name == "start" {
                let param = (!cmd.args.is_empty()).then(|| cmd.args.to_owned());
                EventKind::Start { param }
            } else {
                EventKind::Command {
                    name: cmd.name,
                    args: cmd.args.to_owned(),
                }
            }
        }
        None => EventKind::Text {
            text: text.to_owned(),
        },
    };
    Some((chat_id, profile, kind))
}

struct Command<'a> {
    name: String,
    bot: Option<&'a str>,
    args: &'a str,
}

/// `/name[@bot] args`: `/` plus 1–32 Latin letters, digits and underscores.
fn command(text: &str) -> Option<Command<'_>> {
    let rest = text.strip_prefix('/')?;
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (name, bot) = match head.split_once('@') {
        Some((name, bot)) => (name, Some(bot)),
        None => (head, None),
    };
    let valid = (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| Command {
        name: name.to_ascii_lowercase(),
        bot,
        args,
    })
}

fn user(u: &User) -> UserProfile {
    UserProfile {
        id: Some(u.id.0.to_string()),
        first_name: Some(u.first_name.clone()).filter(|s| !s.is_empty()),
        last_name: u.last_name.clone(),
        username: u.username.clone(),
        language_code: u.language_code.clone(),
    }
}

/// teloxide maps an update kind it cannot deserialize to `UpdateKind::Error`, whether the
/// kind is new to it or a known kind has the wrong shape. A wrong shape of a kind we act
/// on is a malformed request (400) rather than something to ignore silently.
fn reject_known_kind_with_wrong_shape(body: &[u8]) -> Result<(), ParseError> {
    #[derive(Deserialize)]
    struct KnownKinds {
        message: Option<IgnoredAny>,
        callback_query: Option<IgnoredAny>,
        my_chat_member: Option<IgnoredAny>,
    }
    let kinds: KnownKinds = serde_json::from_slice(body).map_err(describe)?;
    for (present, name) in [
        (kinds.message.is_some(), "message"),
        (kinds.callback_query.is_some(), "callback_query"),
        (kinds.my_chat_member.is_some(), "my_chat_member"),
    ] {
        if present {
            return Err(ParseError::new(format!(
                "`{name}` is not a Telegram {name} object"
            )));
        }
    }
    Ok(())
}

/// Describes a JSON error without quoting the body (which may carry personal data).
fn describe(e: serde_json::Error) -> ParseError {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io | Category::Syntax => "invalid JSON",
        Category::Eof => "truncated JSON",
        Category::Data => "not a Telegram update",
    };
    ParseError::new(format!("{what} at line {} column {}", e.line(), e.column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> String {
        format!(
            r#"{{"update_id":873000101,"message":{{"message_id":1,
            "from":{{"id":398866372,"is_bot":false,"first_name":"Ivan","last_name":"Petrov","username":"ivan_p","language_code":"ru"}},
            "chat":{{"id":398866372,"first_name":"Ivan","type":"private"}},
            "date":1764000000,"text":{}}}}}"#,
            serde_json::to_string(text).unwrap()
        )
    }

    fn kind(text: &str) -> Option<EventKind> {
        update(msg(text).as_bytes(), "ShopBot")
            .unwrap()
            .pop()
            .map(|e| e.kind)
    }

    #[test]
    fn start_with_and_without_param() {
        assert_eq!(
            kind("/start 12345"),
            Some(EventKind::Start {
                param: Some("12345".into())
            })
        );
        assert_eq!(kind("/start"), Some(EventKind::Start { param: None }));
        assert_eq!(
            kind("/start   abc  "),
            Some(EventKind::Start {
                param: Some("abc".into())
            })
        );
    }

    #[test]
    fn start_addressed_to_us_is_ours_in_any_case_and_others_are_not() {
        let ours = Some(EventKind::Start {
            param: Some("p1".into()),
        });
        assert_eq!(kind("/start@ShopBot p1"), ours);
        assert_eq!(kind("/start@shopbot p1"), ours);
        assert_eq!(kind("/start@OtherBot p1"), None);
        assert_eq!(kind("/help@OtherBot"), None);
    }

    #[test]
    fn other_commands_and_text() {
        assert_eq!(
            kind("/Help me now"),
            Some(EventKind::Command {
                name: "help".into(),
                args: "me now".into()
            })
        );
        assert_eq!(
            kind("hello"),
            Some(EventKind::Text {
                text: "hello".into()
            })
        );
        assert_eq!(kind("/"), Some(EventKind::Text { text: "/".into() }));
        assert_eq!(
            kind("/путь"),
            Some(EventKind::Text {
                text: "/путь".into()
            })
        );
    }

    #[test]
    fn event_carries_chat_user_and_update_id() {
        let e = update(msg("/start 1").as_bytes(), "ShopBot")
            .unwrap()
            .remove(0);
        assert_eq!(e.channel, "telegram");
        assert_eq!(e.chat_id, "398866372");
        assert_eq!(e.dedupe_key, "873000101");
        assert_eq!(e.user.first_name.as_deref(), Some("Ivan"));
        assert_eq!(e.user.last_name.as_deref(), Some("Petrov"));
        assert_eq!(e.user.username.as_deref(), Some("ivan_p"));
    }

    #[test]
    fn kicked_is_unsubscribed_and_member_is_ignored() {
        let body = |status: &str| {
            format!(
                r#"{{"update_id":5,"my_chat_member":{{"chat":{{"id":42,"first_name":"I","type":"private"}},
                "from":{{"id":42,"is_bot":false,"first_name":"I"}},"date":1764000000,
                "old_chat_member":{{"user":{{"id":1,"is_bot":true,"first_name":"B"}},"status":"member"}},
                "new_chat_member":{{"user":{{"id":1,"is_bot":true,"first_name":"B"}},"status":"{status}"{}}}}}}}"#,
                if status == "kicked" {
                    r#","until_date":0"#
                } else {
                    ""
                }
            )
        };
        let events = update(body("kicked").as_bytes(), "ShopBot").unwrap();
        assert_eq!(events[0].kind, EventKind::Unsubscribed);
        assert_eq!(events[0].chat_id, "42");
        assert!(
            update(body("member").as_bytes(), "ShopBot")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ignored_and_unknown_kinds_give_no_events() {
        let poll = br#"{"update_id":7,"some_future_kind":{"x":1}}"#;
        assert!(update(poll, "ShopBot").unwrap().is_empty());
        let location = br#"{"update_id":8,"message":{"message_id":1,"chat":{"id":1,"type":"private","first_name":"a"},"date":1764000000,"location":{"latitude":1.5,"longitude":2.5}}}"#;
        assert!(update(location, "ShopBot").unwrap().is_empty());
        let edited = br#"{"update_id":9,"edited_message":{"message_id":1,"chat":{"id":1,"type":"private","first_name":"a"},"date":1764000000,"edit_date":1764000001,"text":"/start 1"}}"#;
        assert!(update(edited, "ShopBot").unwrap().is_empty());
    }

    #[test]
    fn malformed_bodies_are_parse_errors() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"update_id\":\"x\"}",
            b"{\"message\":{}}",
            b"{\"update_id\":1,\"message\":5}",
        ] {
            assert!(
                update(body, "ShopBot").is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let full = msg("/start 1");
        for cut in [1, full.len() / 2, full.len() - 1] {
            assert!(update(&full.as_bytes()[..cut], "ShopBot").is_err());
        }
    }
}
