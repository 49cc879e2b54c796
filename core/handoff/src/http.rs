//! One classification of HTTP outcomes for every target.

use std::time::Duration;

use reqwest::{header, Response, StatusCode};

use crate::Failure;

/// The HTTP client of one target: rustls, and a bound on every request.
///
/// # Errors
/// The client cannot be built (no TLS backend).
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|error| error.to_string())
}

/// A request that did not get an answer: timeouts and connection failures are transient. The
/// URL is left out of the reason: it can hold a secret (Bitrix24's webhook code, Trello's token).
pub fn request_failed(target: &str, error: reqwest::Error) -> Failure {
    let error = error.without_url();
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::transient(format!("{target}: the request {what}: {reason}"))
}

/// Turns a non-success answer into a failure: 408, 425, 429 and 5xx are transient (with the
/// answer's `Retry-After`), other statuses permanent. `body` is quoted, shortened, in the reason.
pub fn status_failure(
    target: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> Failure {
    let body: String = body.trim().chars().take(300).collect();
    let reason = format!("{target}: HTTP {status}: {body}");
    let transient = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
    if transient {
        Failure::Transient {
            reason,
            retry_after,
        }
    } else {
        Failure::Permanent { reason }
    }
}

/// Sends a request and reads its answer, as [`read`] does.
///
/// # Errors
/// No answer (transient), or the answer's failure.
pub async fn send(
    target: &str,
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, String), Failure> {
    let response = request
        .send()
        .await
        .map_err(|error| request_failed(target, error))?;
    read(target, response).await
}

/// Sends a request to an API that reports errors in its JSON body, even with HTTP 200
/// (Bitrix24, GraphQL). `body_error` reads the answer's error, if any, as its description and
/// whether it is transient; 5xx and 429 are transient whatever it says.
///
/// # Errors
/// No answer (transient), the body's error, or a failing status.
pub async fn send_reading_body_errors(
    target: &str,
    request: reqwest::RequestBuilder,
    body_error: impl Fn(&serde_json::Value) -> Option<(String, bool)>,
) -> Result<serde_json::Value, Failure> {
    let response = request
        .send()
        .await
        .map_err(|error| request_failed(target, error))?;
    let status = response.status();
    let retry_after = retry_after(&response);
    let text = response
        .text()
        .await
        .map_err(|error| request_failed(target, error))?;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if let Some((detail, transient)) = body_error(&answer) {
        let reason = format!("{target}: {detail} (HTTP {status})");
        return Err(
            if transient || status.is_server_error() || status.as_u16() == 429 {
                Failure::Transient {
                    reason,
                    retry_after,
                }
            } else {
                Failure::Permanent { reason }
            },
        );
    }
    if !status.is_success() {
        return Err(status_failure(target, status, retry_after, &text));
    }
    Ok(answer)
}

/// Reads an answer: the body of a success, or the failure it means.
///
/// # Errors
/// The answer's failure, or a transient one when its body cannot be read.
pub async fn read(target: &str, response: Response) -> Result<(StatusCode, String), Failure> {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = response
        .text()
        .await
        .map_err(|error| request_failed(target, error))?;
    if status.is_success() {
        Ok((status, body))
    } else {
        Err(status_failure(target, status, retry_after, &body))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and read as absent).
pub fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_request_never_shows_its_url_and_its_secrets() {
        let client = client(Duration::from_secs(2)).unwrap();
        let error = client
            .post("http://127.0.0.1:9/rest/1/secret-code/crm.lead.add.json?token=secret-token")
            .send()
            .await
            .unwrap_err();
        let Failure::Transient { reason, .. } = request_failed("bitrix", error) else {
            panic!("a connection failure is transient");
        };
        assert!(!reason.contains("secret"), "{reason}");
        assert!(reason.contains("could not connect"), "{reason}");
    }

    #[test]
    fn rate_limits_and_outages_are_transient_and_refusals_permanent() {
        let wait = Some(Duration::from_secs(7));
        for code in [408, 429, 500, 502, 503, 504] {
            let failure = status_failure("t", StatusCode::from_u16(code).unwrap(), wait, "");
            assert!(
                matches!(failure, Failure::Transient { retry_after, .. } if retry_after == wait),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            let failure = status_failure(
                "t",
                StatusCode::from_u16(code).unwrap(),
                None,
                "{\"error\":\"x\"}",
            );
            assert!(
                matches!(&failure, Failure::Permanent { reason } if reason.contains("x")),
                "{code}"
            );
        }
    }
}
