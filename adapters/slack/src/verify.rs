//! Request signing: every HTTP request from Slack carries `X-Slack-Signature`,
//! `v0=` + hex(HMAC-SHA256(signing secret, `v0:{timestamp}:{raw body}`)), and
//! `X-Slack-Request-Timestamp`. slack-morphism's verifier compares in constant time and
//! refuses a timestamp more than five minutes away from now (either way), so a captured
//! request cannot be replayed later. The check runs on the raw bytes, before anything parses.

use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the request is not signed (X-Slack-Signature and X-Slack-Request-Timestamp)")]
    Unsigned,
    #[error("the request's signature does not match")]
    BadSignature,
    #[error("the request's timestamp is more than five minutes away")]
    Stale,
}

/// The verifier of one app's signing secret.
#[derive(Clone)]
pub struct Verifier {
    verifier: SlackEventSignatureVerifier,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(signing_secret: &SecretString) -> Verifier {
        Verifier {
            verifier: SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
                signing_secret.expose_secret().to_owned(),
            )),
        }
    }

    /// Checks a request's signature headers against its raw body.
    ///
    /// # Errors
    /// [`Refused`], saying why.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let (Some(signature), Some(timestamp)) = (
            header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
            header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
        ) else {
            return Err(Refused::Unsigned);
        };
        // Slack signs UTF-8 (JSON or form-encoded); anything else was not signed by Slack.
        let body = std::str::from_utf8(body).map_err(|_| Refused::BadSignature)?;
        self.verifier
            .verify(signature, body, timestamp)
            .map_err(|error| match error {
                slack_morphism::signature_verifier::SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_) => Refused::Stale,
                _ => Refused::BadSignature,
            })
    }
}
