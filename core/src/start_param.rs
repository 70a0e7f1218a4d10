//! The start-parameter alphabet shared by every platform: `A-Z a-z 0-9 _ -`.
//!
//! That is exactly Telegram's rule; Viber's `context` and Messenger's `ref` allow more,
//! so a parameter valid here is valid everywhere. Anything richer belongs in base64url
//! or behind an opaque token.

use crate::DeeplinkError;

/// Telegram's maximum start-parameter length, in characters.
pub const TELEGRAM_MAX_LEN: usize = 64;

/// Checks `param` against the shared alphabet and `max_len`.
pub fn validate(param: &str, max_len: usize) -> Result<(), DeeplinkError> {
    if param.is_empty() {
        return Err(DeeplinkError::Empty);
    }
    if let Some((position, ch)) = param.chars().enumerate().find(|(_, c)| !is_allowed(*c)) {
        return Err(DeeplinkError::InvalidChar { ch, position });
    }
    let len = param.chars().count();
    if len > max_len {
        return Err(DeeplinkError::TooLong { len, max: max_len });
    }
    Ok(())
}

/// True for `A-Z a-z 0-9 _ -`.
pub fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_alphabet_up_to_the_limit() {
        assert_eq!(validate("12345", 64), Ok(()));
        assert_eq!(validate("aZ09_-", 64), Ok(()));
        assert_eq!(validate(&"a".repeat(64), 64), Ok(()));
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(validate("", 64), Err(DeeplinkError::Empty));
        assert_eq!(
            validate(&"a".repeat(65), 64),
            Err(DeeplinkError::TooLong { len: 65, max: 64 })
        );
        assert_eq!(
            validate("ab c", 64),
            Err(DeeplinkError::InvalidChar {
                ch: ' ',
                position: 2
            })
        );
        assert_eq!(
            validate("idé", 64),
            Err(DeeplinkError::InvalidChar {
                ch: 'é',
                position: 2
            })
        );
        assert!(validate("a=b", 64).is_err());
    }
}
