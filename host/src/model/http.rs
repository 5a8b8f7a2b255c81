//! The HTTP side the providers share: the client, reading the API key at
//! call time, retries with exponential backoff and jitter on 429, 5xx and
//! connection errors (honouring `Retry-After`), the per-request timeout, and
//! turning every failure into a typed [`ModelError`].

use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::ModelError;
use super::config::{EnvLookup, KeySource, ModelSpec};
use crate::units::format_duration;

/// First backoff delay; doubles per retry.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest backoff delay between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// The longest `Retry-After` the host waits inside a call. A provider asking
/// for more gets no further attempts: the caller sees `rate-limited` with the
/// provider's `retry_after` and decides.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Build an HTTP client (one per [`super::Models`], so its connection pool
/// lives on the runtime that uses it). With `direct`, proxies are ignored:
/// for servers on the loopback interface, which a proxy could not reach.
/// Otherwise the usual `HTTPS_PROXY` / `NO_PROXY` variables apply.
///
/// TLS is rustls with the `ring` provider, installed as the process default
/// unless the embedding program installed another one first; certificates
/// are checked against the operating system's trust store.
///
/// # Errors
///
/// The client's own message, when TLS cannot be set up.
pub fn client(direct: bool) -> Result<reqwest::Client, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another thread installing one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut builder =
        reqwest::Client::builder().user_agent(concat!("subagent-host/", env!("CARGO_PKG_VERSION")));
    if direct {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|err| format!("cannot set up the HTTP client: {}", root_cause(&err)))
}

/// Is `base_url` on this machine's loopback interface?
pub(crate) fn is_loopback(base_url: &str) -> bool {
    let Some(url) = reqwest::Url::parse(base_url).ok() else {
        return false;
    };
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An API key read from the environment; never printed.
pub(crate) struct ApiKey {
    /// The variable it came from, for messages.
    pub var: String,
    pub value: String,
}

impl ApiKey {
    /// A header carrying this key (as `format`ted, e.g. `Bearer {key}`),
    /// marked sensitive so it is never logged.
    ///
    /// # Errors
    ///
    /// `auth` when the key cannot be a header value (naming the variable).
    pub fn header(
        &self,
        name: HeaderName,
        value: String,
    ) -> Result<(HeaderName, HeaderValue), ModelError> {
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ModelError::Auth(format!(
                "the API key in `{}` is not a valid header value (stray characters?)",
                self.var
            ))
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey(from `{}`)", self.var)
    }
}

/// Read the key of `spec` now.
///
/// # Errors
///
/// `auth`, naming the variable, when it is unset or empty.
pub(crate) fn read_key(spec: &ModelSpec, env: &EnvLookup) -> Result<Option<ApiKey>, ModelError> {
    match &spec.api_key {
        KeySource::None => Ok(None),
        KeySource::Env(var) => match env(var).filter(|v| !v.trim().is_empty()) {
            Some(value) => Ok(Some(ApiKey {
                var: var.clone(),
                value: value.trim().to_owned(),
            })),
            None => Err(ModelError::Auth(format!(
                "the environment variable `{var}`, which should hold the API key of model `{}`, is not set; export it in the environment of the host (not the subagent)",
                spec.name
            ))),
        },
    }
}

/// One provider endpoint of one model.
pub(crate) struct Endpoint {
    pub client: reqwest::Client,
    /// The full URL requests are posted to.
    pub url: String,
    /// The provider, for messages ("OpenAI-compatible server", "Anthropic").
    pub provider: &'static str,
    /// The model's name (alias or `provider/model`), for messages.
    pub model: String,
    pub timeout: Duration,
    pub max_retries: u32,
}

/// What one attempt came back with.
enum Attempt {
    Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    Transport(reqwest::Error),
    TimedOut,
}

impl Endpoint {
    /// POST `body` (see [`Endpoint::post_json`]) and read the answer with
    /// `parse`; an answer `parse` cannot read is a `bad-request` ("malformed
    /// response") naming the endpoint.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::post_json`], or the malformed answer.
    pub async fn exchange<T>(
        &self,
        headers: &[(HeaderName, HeaderValue)],
        body: &Value,
        key: Option<&ApiKey>,
        parse: impl FnOnce(Value) -> Result<T, String>,
    ) -> Result<T, ModelError> {
        let answer = self.post_json(headers, body, key).await?;
        parse(answer).map_err(|problem| {
            ModelError::BadRequest(format!(
                "malformed response from {}: {problem}",
                self.shown_url()
            ))
        })
    }

    /// POST `body` as JSON with `headers`, retrying what is worth retrying,
    /// and return the JSON answer.
    ///
    /// # Errors
    ///
    /// The typed error of the last attempt; anything taken from the
    /// provider's answer has `key` redacted.
    pub async fn post_json(
        &self,
        headers: &[(HeaderName, HeaderValue)],
        body: &Value,
        key: Option<&ApiKey>,
    ) -> Result<Value, ModelError> {
        let body = serde_json::to_vec(body)
            .map_err(|err| ModelError::BadRequest(format!("cannot encode the request: {err}")))?;
        let attempts = self.max_retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt == attempts;
            let (error, wait) = match self.attempt(headers, &body).await {
                Attempt::TimedOut => {
                    return Err(ModelError::Timeout(format!(
                        "{} at {} did not answer within {} (model `{}`); raise `timeout` for this model in the host config if it is slow",
                        self.provider,
                        self.shown_url(),
                        format_duration(self.timeout),
                        self.model
                    )));
                }
                Attempt::Transport(err) if err.is_timeout() => {
                    return Err(ModelError::Timeout(format!(
                        "{} at {} did not answer within {} (model `{}`): {}",
                        self.provider,
                        self.shown_url(),
                        format_duration(self.timeout),
                        self.model,
                        root_cause(&err)
                    )));
                }
                Attempt::Transport(err) => (
                    ModelError::Unavailable(format!(
                        "cannot reach {} at {} (model `{}`){}: {}",
                        self.provider,
                        self.shown_url(),
                        self.model,
                        tries(attempt),
                        root_cause(&err)
                    )),
                    None,
                ),
                Attempt::Answer {
                    status,
                    headers,
                    body,
                } => {
                    if status.is_success() {
                        return serde_json::from_slice(&body).map_err(|err| {
                            ModelError::BadRequest(redact(
                                format!(
                                    "malformed response from {} at {}: {err}; the answer began {:?}",
                                    self.provider,
                                    self.shown_url(),
                                    snippet(&String::from_utf8_lossy(&body), 200)
                                ),
                                key,
                            ))
                        });
                    }
                    let message = redact(error_message(&body), key);
                    let retry_after = retry_after(&headers, SystemTime::now());
                    match status.as_u16() {
                        429 => {
                            let error = ModelError::RateLimited {
                                message: format!(
                                    "{} rate-limited model `{}` (HTTP 429){}: {message}",
                                    self.provider,
                                    self.model,
                                    tries(attempt)
                                ),
                                retry_after,
                            };
                            if retry_after.is_some_and(|d| d > MAX_RETRY_AFTER) {
                                return Err(error);
                            }
                            (error, retry_after)
                        }
                        401 | 403 => {
                            return Err(ModelError::Auth(match key {
                                Some(key) => format!(
                                    "{} refused the API key in `{}` for model `{}` (HTTP {}): {message}",
                                    self.provider,
                                    key.var,
                                    self.model,
                                    status.as_u16()
                                ),
                                None => format!(
                                    "{} at {} wants an API key for model `{}` (HTTP {}): {message}; set `api_key_env` for this model in the host config",
                                    self.provider,
                                    self.shown_url(),
                                    self.model,
                                    status.as_u16()
                                ),
                            }));
                        }
                        408 | 409 | 500..=599 => {
                            let error = ModelError::Unavailable(format!(
                                "{} at {} failed for model `{}` (HTTP {}){}: {message}",
                                self.provider,
                                self.shown_url(),
                                self.model,
                                status.as_u16(),
                                tries(attempt)
                            ));
                            if retry_after.is_some_and(|d| d > MAX_RETRY_AFTER) {
                                return Err(error);
                            }
                            (error, retry_after)
                        }
                        code => {
                            return Err(ModelError::BadRequest(format!(
                                "{} rejected the request for model `{}` (HTTP {code}): {message}",
                                self.provider, self.model
                            )));
                        }
                    }
                }
            };
            if last {
                return Err(error);
            }
            tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt))).await;
        }
    }

    pub(crate) fn shown_url(&self) -> String {
        shown_url(&self.url)
    }

    async fn attempt(&self, headers: &[(HeaderName, HeaderValue)], body: &[u8]) -> Attempt {
        let send = async {
            let mut request = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body.to_vec()))
        };
        match tokio::time::timeout(self.timeout, send).await {
            Err(_) => Attempt::TimedOut,
            Ok(Err(err)) => Attempt::Transport(err),
            Ok(Ok((status, headers, body))) => Attempt::Answer {
                status,
                headers,
                body,
            },
        }
    }
}

/// `url` for messages, which a guest may see: without credentials or query
/// (where some gateways take a key).
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        Err(_) => "(an invalid URL)".to_owned(),
    }
}

/// " after 3 attempts", or nothing after one.
fn tries(attempt: u32) -> String {
    if attempt > 1 {
        format!(" after {attempt} attempts")
    } else {
        String::new()
    }
}

/// The delay before retry `attempt` (1-based): 0.5 s, 1 s, 2 s, … capped at
/// 8 s, each scaled by a random factor in [0.5, 1) so that callers hit by
/// the same outage do not retry in lockstep.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << (attempt - 1).min(16));
    let full = exp.min(BACKOFF_CAP);
    // Each RandomState has fresh keys: a cheap source of jitter.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let fraction = 0.5 + (random >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    full.mul_f64(fraction)
}

/// How long the provider asked to wait: `retry-after-ms` (OpenAI), else
/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the date format
/// servers send.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let (_, rest) = text.split_once(", ")?;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The provider's own words from an error answer: `error.message` (OpenAI,
/// Anthropic, LiteLLM, vLLM), else `error` or `message` or `detail`, else
/// the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let found = [
            json.pointer("/error/message"),
            json.get("error"),
            json.get("message"),
            json.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null | Value::Object(_) => None,
            other => Some(other.to_string()),
        });
        if let Some(message) = found {
            return snippet(&message, 1000);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "(no message)".to_owned()
    } else {
        snippet(text.trim(), 300)
    }
}

/// At most `max` characters of `text`, marked when cut.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `message` without the key in it.
fn redact(message: String, key: Option<&ApiKey>) -> String {
    match key {
        Some(key) if !key.value.is_empty() && message.contains(&key.value) => {
            message.replace(&key.value, "[redacted]")
        }
        _ => message,
    }
}

/// What went wrong at the bottom of `err`: reqwest's own message repeats
/// the URL, and the useful part ("Connection refused", "invalid peer
/// certificate") is its innermost cause.
fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_millis(250)));
        let mut past = HeaderMap::new();
        past.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        past.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&past, now), None);
    }

    #[test]
    fn loopback_servers_are_recognised() {
        for url in [
            "http://localhost:11434/v1",
            "http://127.0.0.1:8000/v1",
            "http://[::1]:8000",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://10.0.0.2:8000/v1",
            "not a url",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn urls_in_messages_hold_no_credentials() {
        assert_eq!(
            shown_url("https://user:pw@gw.example/v1/chat/completions?api-key=k"),
            "https://gw.example/v1/chat/completions"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:8000/v1/chat/completions"),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
    }

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        let t = parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_835_481_599
        );
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let full = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn error_messages_come_from_the_provider() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad tool","type":"invalid_request_error"}}"#),
            "bad tool"
        );
        assert_eq!(error_message(br#"{"detail":"nope"}"#), "nope");
        assert_eq!(error_message(b"  "), "(no message)");
        assert_eq!(error_message(b"<html>oops</html>"), "<html>oops</html>");
    }
}
