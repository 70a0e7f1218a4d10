use beckon_core::{DeeplinkError, Url, start_param};

/// `https://t.me/<bot>?start=<param>`; the parameter must be 1–64 of `A-Za-z0-9_-`,
/// otherwise Telegram's START button would silently drop it.
pub(crate) fn build(bot_username: &str, param: Option<&str>) -> Result<Url, DeeplinkError> {
    let bot = bot_username.trim_start_matches('@');
    let mut url = Url::parse(&format!("https://t.me/{bot}"))
        .map_err(|e| DeeplinkError::Invalid(e.to_string()))?;
    if let Some(param) = param {
        start_param::validate(param, start_param::TELEGRAM_MAX_LEN)?;
        // The alphabet needs no escaping, so the link reads exactly as the parameter.
        url.set_query(Some(&format!("start={param}")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_links_with_and_without_param() {
        assert_eq!(
            build("ShopBot", Some("12345")).unwrap().as_str(),
            "https://t.me/ShopBot?start=12345"
        );
        assert_eq!(
            build("@ShopBot", None).unwrap().as_str(),
            "https://t.me/ShopBot"
        );
    }

    #[test]
    fn refuses_params_telegram_would_drop() {
        assert_eq!(build("ShopBot", Some("")), Err(DeeplinkError::Empty));
        assert!(matches!(
            build("ShopBot", Some("a b")),
            Err(DeeplinkError::InvalidChar { ch: ' ', .. })
        ));
        assert!(matches!(
            build("ShopBot", Some(&"x".repeat(65))),
            Err(DeeplinkError::TooLong { .. })
        ));
    }
}
