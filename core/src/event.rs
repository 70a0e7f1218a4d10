use serde::{Deserialize, Serialize};

/// One normalized inbound event, whatever the platform's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The channel's [`crate::Channel::name`].
    pub channel: String,
    /// Where replies go, as an opaque string (Telegram's i64, Viber's base64-ish id, a PSID).
    pub chat_id: String,
    /// Who acted, as far as the platform tells.
    pub user: UserProfile,
    /// What happened.
    pub kind: EventKind,
    /// Identical for re-deliveries of the same platform update, unique otherwise.
    pub dedupe_key: String,
}

/// What happened in an [`Event`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The user opened the bot, possibly through a deeplink carrying `param`.
    Start {
        /// The deeplink's start parameter, as the platform delivered it (unvalidated).
        param: Option<String>,
    },
    /// A command other than start, such as `/help now`.
    Command {
        /// Lowercase command name without the slash or bot suffix: `help`.
        name: String,
        /// Everything after the command, trimmed; empty when none.
        args: String,
    },
    /// Plain text.
    Text {
        /// The message text.
        text: String,
    },
    /// A button press carrying the button's payload.
    Button {
        /// The payload the button was created with.
        payload: String,
    },
    /// The user blocked the bot or unsubscribed.
    Unsubscribed,
}

impl EventKind {
    /// The command name the scenario's `get_command` branches on: `start` for
    /// [`EventKind::Start`] (on every platform), the name for [`EventKind::Command`].
    pub fn command_name(&self) -> Option<&str> {
        match self {
            Self::Start { .. } => Some("start"),
            Self::Command { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// What the platform tells about the user. Every field may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// The platform's user id, when it differs from or adds to the chat id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Handle such as Telegram's `@username`, without the `@`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IETF language tag, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

impl UserProfile {
    /// The name to greet the user with: first and last name joined by a space, or
    /// whichever exists, or the username, or empty.
    pub fn display_name(&self) -> String {
        match (self.first_name.as_deref(), self.last_name.as_deref()) {
            (Some(f), Some(l)) if !f.is_empty() && !l.is_empty() => format!("{f} {l}"),
            (Some(f), _) if !f.is_empty() => f.to_owned(),
            (_, Some(l)) if !l.is_empty() => l.to_owned(),
            _ => self.username.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_prefers_full_name_then_parts_then_username() {
        let mut u = UserProfile {
            first_name: Some("Ivan".into()),
            last_name: Some("Petrov".into()),
            username: Some("ivan_p".into()),
            ..Default::default()
        };
        assert_eq!(u.display_name(), "Ivan Petrov");
        u.last_name = None;
        assert_eq!(u.display_name(), "Ivan");
        u.first_name = None;
        assert_eq!(u.display_name(), "ivan_p");
        u.username = None;
        assert_eq!(u.display_name(), "");
    }

    #[test]
    fn start_branches_as_start_command_on_every_platform() {
        assert_eq!(
            EventKind::Start { param: None }.command_name(),
            Some("start")
        );
        let help = EventKind::Command {
            name: "help".into(),
            args: String::new(),
        };
        assert_eq!(help.command_name(), Some("help"));
        assert_eq!(EventKind::Text { text: "/x".into() }.command_name(), None);
    }

    #[test]
    fn event_round_trips_through_json() {
        let e = Event {
            channel: "telegram".into(),
            chat_id: "-100".into(),
            user: UserProfile::default(),
            kind: EventKind::Start {
                param: Some("12345".into()),
            },
            dedupe_key: "1".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }
}
