//! `subagent mcp --listen ADDR`: the MCP server over streamable HTTP, at
//! `http://ADDR/mcp`.
//!
//! Loopback by default. Any other address needs a bearer token (from the
//! `SUBAGENT_MCP_TOKEN` environment variable, never a command-line argument
//! that `ps` shows), and a token, once set, is required on every request.
//! The `Host` header is checked against loopback names (DNS rebinding), and a
//! browser's `Origin` must be loopback (or one given with `--allow-origin`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::{Host, Session, stop_signal};

/// The path the server answers on.
pub const PATH: &str = "/mcp";

/// The environment variable that holds the bearer token.
pub const TOKEN_VAR: &str = "SUBAGENT_MCP_TOKEN";

/// How `subagent mcp --listen` serves.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub listen: SocketAddr,
    /// Required as `Authorization: Bearer <token>` on every request.
    pub token: Option<String>,
    /// Browser origins allowed besides loopback ones (`https://app.example:443`).
    pub allowed_origins: Vec<String>,
}

impl HttpOptions {
    /// Refuse what would expose the host: a non-loopback address without a
    /// token, or an empty token.
    ///
    /// # Errors
    ///
    /// A message that says how to fix it.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(token) = &self.token
            && token.trim().len() < 16
        {
            anyhow::bail!(
                "{TOKEN_VAR} is set but shorter than 16 characters; use a long random token (e.g. `openssl rand -hex 32`)"
            );
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            anyhow::bail!(
                "--listen {}: serving beyond loopback needs a bearer token: set {TOKEN_VAR} (e.g. `export {TOKEN_VAR}=$(openssl rand -hex 32)`), or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(())
    }
}

/// Serve until SIGINT or SIGTERM; `ready` is told the bound address first
/// (the port, when `listen` asked for port 0).
///
/// # Errors
///
/// When the options are refused ([`HttpOptions::check`]) or the address
/// cannot be bound.
pub async fn serve(
    host: Arc<Host>,
    options: HttpOptions,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    options.check()?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|err| anyhow::anyhow!("--listen {}: {err}", options.listen))?;
    let bound = listener.local_addr()?;
    host.watch_registries();

    let stop = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(stop.clone());
    if bound.ip().is_loopback() {
        let mut origins: Vec<String> =
            ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                .into_iter()
                .map(String::from)
                .collect();
        origins.extend(options.allowed_origins.iter().cloned());
        config = config.with_allowed_origins(origins);
    } else {
        // The token guards the door; browsers from elsewhere stay out unless named.
        config = config.disable_allowed_hosts();
        config = if options.allowed_origins.is_empty() {
            config.enforce_origin_validation()
        } else {
            config.with_allowed_origins(options.allowed_origins.clone())
        };
    }
    let service = {
        let host = host.clone();
        Arc::new(StreamableHttpService::new(
            move || Ok(Session::new(host.clone())),
            Arc::new(LocalSessionManager::default()),
            config,
        ))
    };
    let token: Option<Arc<str>> = options.token.as_deref().map(Arc::from);
    ready(bound);

    let signal = stop_signal();
    tokio::pin!(signal);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors, or a connection reset before it was taken:
            // keep serving the others.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let service = service.clone();
        let token = token.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
                let service = service.clone();
                let token = token.clone();
                async move { Ok::<_, Infallible>(handle(&service, token.as_deref(), request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
    stop.cancel();
    host.cancel_foreground();
    host.manager()
        .shutdown(host.manager().config().cancel_grace)
        .await;
    Ok(())
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(
    service: &StreamableHttpService<Session, LocalSessionManager>,
    token: Option<&str>,
    request: Request<Incoming>,
) -> Response<Body> {
    if request.uri().path() != PATH {
        return plain(
            StatusCode::NOT_FOUND,
            format!("subagent mcp answers on {PATH}\n"),
        );
    }
    if let Some(token) = token
        && !authorized(&request, token)
    {
        let mut response = plain(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required: Authorization: Bearer <token>\n".into(),
        );
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    service.handle(request).await
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn authorized<B>(request: &Request<B>, token: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri("/mcp");
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let token = "0123456789abcdef0123";
        assert!(authorized(
            &request(Some("Bearer 0123456789abcdef0123")),
            token
        ));
        assert!(!authorized(
            &request(Some("Bearer 0123456789abcdef012")),
            token
        ));
        assert!(!authorized(
            &request(Some("Basic 0123456789abcdef0123")),
            token
        ));
        assert!(!authorized(&request(None), token));
    }

    #[test]
    fn beyond_loopback_needs_a_long_token() {
        let mut options = HttpOptions {
            listen: "0.0.0.0:0".parse().unwrap(),
            token: None,
            allowed_origins: vec![],
        };
        let err = options.check().unwrap_err().to_string();
        assert!(err.contains(TOKEN_VAR), "{err}");
        options.token = Some("short".into());
        assert!(options.check().unwrap_err().to_string().contains("16"));
        options.token = Some("x".repeat(32));
        options.check().unwrap();
        options.listen = "127.0.0.1:0".parse().unwrap();
        options.token = None;
        options.check().unwrap();
    }
}
