//! Who is asking: argon2 password hashes, session cookies and API tokens (stored as SHA-256
//! hashes), CSRF tokens, and the sign-in rate limit.
//!
//! A page or API call is answered only for a [`Principal`]: a browser session (cookie
//! `closer_session`, HttpOnly, SameSite=Lax, Secure when configured or when the request came
//! over HTTPS through a proxy that says so: [`secure_cookies`]) or an API token sent as
//! `Authorization: Bearer`. Every state-changing request of a session must carry the session's
//! CSRF token (a hidden form field or the `X-CSRF-Token` header); API tokens are not sent by
//! browsers on their own, so they need none.

use std::num::NonZeroU32;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use base64::Engine as _;
use closer_store::Store;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::WebState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "closer_session";
/// The header a session's API calls carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Why an account or a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the password must be at least {min} characters long")]
    WeakPassword { min: usize },
    #[error("{0:?} is not an e-mail address")]
    BadEmail(String),
    #[error("no console account has the e-mail {0:?}; create it with `closer admin create`")]
    UnknownAccount(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] closer_store::StoreError),
}

/// The shortest password `closer admin create` accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Hashes a password with argon2id and a random salt, in PHC string format.
///
/// # Errors
/// [`AuthError::Hash`] when argon2 refuses (it does not for ordinary passwords).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Hash(error.to_string()))
}

/// Whether `password` matches the stored PHC hash.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates a console account, or sets a new password (signing its sessions out); returns
/// whether the account is new.
///
/// # Errors
/// [`AuthError::BadEmail`], [`AuthError::WeakPassword`], or the store failing.
pub async fn create_account(store: &Store, email: &str, password: &str) -> Result<bool, AuthError> {
    let email = email.trim();
    if !(email.contains('@') && email.len() <= 254 && !email.chars().any(char::is_whitespace)) {
        return Err(AuthError::BadEmail(email.to_owned()));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword {
            min: MIN_PASSWORD_CHARS,
        });
    }
    let hash = hash_password(password)?;
    Ok(store.upsert_console_account(email, &hash).await?)
}

/// Creates an API token for the account; returns the token, shown once (only its hash is kept).
///
/// # Errors
/// [`AuthError::UnknownAccount`], or the store failing.
pub async fn create_api_token(store: &Store, email: &str, name: &str) -> Result<String, AuthError> {
    let token = format!("closer_{}", random_token());
    if store
        .create_api_token(email.trim(), name, &token_hash(&token))
        .await?
    {
        Ok(token)
    } else {
        Err(AuthError::UnknownAccount(email.trim().to_owned()))
    }
}

/// 32 random bytes from a CSPRNG, URL-safe base64.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a session or API token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets without stopping at the first difference.
pub fn same_secret(left: &str, right: &str) -> bool {
    let (left, right) = (
        Sha256::digest(left.as_bytes()),
        Sha256::digest(right.as_bytes()),
    );
    left.iter()
        .zip(right.iter())
        .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Someone signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub email: String,
    /// The session's CSRF token; `None` for an API token, which needs none.
    pub csrf_token: Option<String>,
}

impl Principal {
    /// Whether a state-changing request of this principal carries the right CSRF token.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        match &self.csrf_token {
            None => true,
            Some(expected) => presented.is_some_and(|presented| same_secret(expected, presented)),
        }
    }

    /// The CSRF token to put in forms.
    pub fn csrf(&self) -> &str {
        self.csrf_token.as_deref().unwrap_or("")
    }
}

/// Finds the principal of a request: the bearer token first, then the session cookie.
async fn authenticate(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, closer_store::StoreError> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    {
        let email = state
            .engine
            .store()
            .api_token_account(&token_hash(token.trim()))
            .await?;
        return Ok(email.map(|email| Principal {
            email,
            csrf_token: None,
        }));
    }
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = state
        .engine
        .store()
        .console_session(&token_hash(cookie.value()))
        .await?;
    Ok(session.map(|session| Principal {
        email: session.email,
        csrf_token: Some(session.csrf_token),
    }))
}

/// A principal for a console page; anyone else is sent to the sign-in page.
pub struct PageUser(pub Principal);

/// A principal for the JSON API; anyone else gets 401.
pub struct ApiUser(pub Principal);

impl FromRequestParts<WebState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        match authenticate(state, &parts.headers).await {
            Ok(Some(principal)) => Ok(PageUser(principal)),
            Ok(None) => Err(Redirect::to("/console/login").into_response()),
            Err(error) => Err(unavailable(&error)),
        }
    }
}

impl FromRequestParts<WebState> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        match authenticate(state, &parts.headers).await {
            Ok(Some(principal)) => {
                // A session's state-changing calls must prove they come from our own pages.
                let changes = !matches!(
                    parts.method,
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let presented = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|value| value.to_str().ok());
                if changes && !principal.csrf_ok(presented) {
                    return Err(crate::api::error(
                        StatusCode::FORBIDDEN,
                        "the X-CSRF-Token header is missing or wrong",
                    ));
                }
                Ok(ApiUser(principal))
            }
            Ok(None) => Err(crate::api::error(
                StatusCode::UNAUTHORIZED,
                "sign in, or send an API token as Authorization: Bearer",
            )),
            Err(error) => Err(unavailable(&error)),
        }
    }
}

fn unavailable(error: &closer_store::StoreError) -> Response {
    tracing::warn!(%error, "cannot check a console session");
    (StatusCode::SERVICE_UNAVAILABLE, error.user_message()).into_response()
}

/// Whether the cookies set in answer to a request are marked `Secure`: always with
/// `secure_cookies` configured, and otherwise when the request came over HTTPS as the reverse
/// proxy in front of Closer says (`X-Forwarded-Proto: https`, or `Forwarded: …proto=https`).
/// The header needs no trust: sent by a client over plain HTTP, it only gets that client a
/// cookie its browser will not keep.
pub fn secure_cookies(configured: bool, headers: &HeaderMap) -> bool {
    let says_https = |value: &str| value.trim().eq_ignore_ascii_case("https");
    configured
        || headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|value| value.to_str().ok())
            // A chain of proxies lists each hop's protocol; the first is the browser's.
            .filter_map(|value| value.split(',').next())
            .any(says_https)
        || headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(',').next())
            .flat_map(|element| element.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("proto") && says_https(value.trim_matches('"'))
            })
}

/// The session cookie for `token`.
pub fn session_cookie(token: String, secure: bool, max_age_hours: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::hours(max_age_hours))
        .build()
}

/// An expired session cookie, which makes the browser forget it.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::ZERO)
        .build()
}

/// Sign-in attempts: a few per minute per e-mail address (guessing one password), and a cap
/// for all addresses together (guessing many). Idle keys are swept with the chat's limiters.
pub struct LoginLimiter {
    pub per_account: DefaultKeyedRateLimiter<String>,
    pub overall: governor::DefaultDirectRateLimiter,
}

impl LoginLimiter {
    pub fn new(per_account_per_minute: u32, overall_per_minute: u32) -> Arc<LoginLimiter> {
        let per_minute =
            |count: u32| Quota::per_minute(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN));
        Arc::new(LoginLimiter {
            per_account: RateLimiter::keyed(per_minute(per_account_per_minute)),
            overall: RateLimiter::direct(per_minute(overall_per_minute)),
        })
    }

    /// Whether one more attempt for `email` may be checked now.
    pub fn allow(&self, email: &str) -> bool {
        self.per_account
            .check_key(&email.trim().to_lowercase())
            .is_ok()
            && self.overall.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_secure_when_configured_or_when_the_proxy_says_https() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for &(name, value) in pairs {
                map.append(name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(secure_cookies(true, &headers(&[])));
        assert!(!secure_cookies(false, &headers(&[])));
        for https in [
            headers(&[("x-forwarded-proto", "https")]),
            headers(&[("x-forwarded-proto", "HTTPS")]),
            headers(&[("x-forwarded-proto", "https, http")]),
            headers(&[("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")]),
            headers(&[("forwarded", "proto=\"https\", proto=http")]),
        ] {
            assert!(secure_cookies(false, &https), "{https:?}");
        }
        for plain in [
            headers(&[("x-forwarded-proto", "http")]),
            headers(&[("x-forwarded-proto", "http, https")]),
            headers(&[("forwarded", "for=192.0.2.60;proto=http")]),
            headers(&[("x-forwarded-ssl", "on")]),
        ] {
            assert!(!secure_cookies(false, &plain), "{plain:?}");
        }
    }
}
