use beckon_core::{Secret, VerifyError};
use http::HeaderMap;

pub(crate) const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Telegram sends the `secret_token` given to `setWebhook` verbatim in a header; there is
/// no body signature.
pub(crate) fn secret_token(headers: &HeaderMap, secret: &Secret) -> Result<(), VerifyError> {
    let given = headers
        .get(SECRET_HEADER)
        .ok_or(VerifyError::Missing(SECRET_HEADER))?;
    if secret.ct_eq(given.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch(SECRET_HEADER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_secret() {
        let secret = Secret::new("s3cret_-");
        let mut h = HeaderMap::new();
        assert_eq!(
            secret_token(&h, &secret),
            Err(VerifyError::Missing(SECRET_HEADER))
        );
        h.insert(SECRET_HEADER, "s3cret_".parse().unwrap());
        assert_eq!(
            secret_token(&h, &secret),
            Err(VerifyError::Mismatch(SECRET_HEADER))
        );
        h.insert(SECRET_HEADER, "s3cret_-".parse().unwrap());
        assert_eq!(secret_token(&h, &secret), Ok(()));
    }
}
