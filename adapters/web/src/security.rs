//! The security headers on every answer of the console, its API and the website chat.
//!
//! - `Content-Security-Policy`: everything from Closer itself (`default-src 'self'`), scripts
//!   only from files it serves (no inline script or `on…=` attribute anywhere in the console),
//!   styles from its files plus the one `<style>` element the website chat's widget makes, by
//!   its SHA-256 ([`crate::chat::widget_style_source`]), no plugins, no `<base>`, forms only to
//!   Closer, and no page framed by anyone (`frame-ancestors 'none'`, and `X-Frame-Options` for
//!   browsers that predate it).
//! - `X-Content-Type-Options: nosniff`: a browser never reads an answer as another type.
//! - `Referrer-Policy: same-origin`: a link out of the console (a tracker's item) does not carry
//!   the console's address with a conversation id in it.
//!
//! A handler that sets one of these itself keeps its own.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// The console's Content-Security-Policy.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' {}; img-src 'self'; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        crate::chat::widget_style_source()
    )
});

/// Adds the headers to an answer (an `axum::middleware::map_response` function).
pub async fn add_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let policy = HeaderValue::from_str(&CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, policy),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ] {
        headers.entry(name).or_insert(value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_inline_script_and_no_framing() {
        let policy = CONTENT_SECURITY_POLICY.as_str();
        assert!(HeaderValue::from_str(policy).is_ok(), "{policy}");
        assert!(policy.starts_with("default-src 'self';"), "{policy}");
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(!policy.contains("unsafe-eval"), "{policy}");
        assert!(
            policy.contains(&crate::chat::widget_style_source()),
            "{policy}"
        );
    }
}
