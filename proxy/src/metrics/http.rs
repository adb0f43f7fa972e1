//! The `/metrics` and `/healthz` endpoint, on hyper: HTTP/1.1 with keep-alive, GET and
//! HEAD, the Prometheus text format or OpenMetrics as the scraper's `Accept` prefers,
//! gzip when accepted, an optional bearer token (docs/access-control.md) and optional TLS,
//! with client certificates if asked for (`[metrics_tls]`, docs/tls.md).
//!
//! Bounded like the rest of the proxy: at most [`MAX_CONNECTIONS`] scrapers at once, a
//! TLS handshake and then a request head must each arrive within [`HEAD_TIMEOUT`], a
//! connection lasts at most [`CONNECTION_LIFETIME`] (a scraper simply connects again).

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::Metrics;
use super::openmetrics;
use crate::tls::{Conn, ListenerTls};

/// Scrapers served at once; further connections are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Time for a TLS handshake, and for a request head (also between requests of a
/// kept-alive connection).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Bodies smaller than this go uncompressed (gzip would not pay).
const GZIP_FROM: usize = 1024;

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scraper must bring: a bearer token, TLS (with a client certificate when its
/// configuration asks for one). The default is neither.
#[derive(Clone, Default)]
pub struct Guard {
    /// Answer 401 to any request without `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
    /// Speak TLS only ([`ListenerTls::metrics`]); its certificates reload with
    /// [`ListenerTls::prepare`] and [`ListenerTls::install`].
    pub tls: Option<Arc<ListenerTls>>,
}

/// `http` or `https`: the scheme of the endpoint's address, with or without TLS.
pub fn scheme(tls: bool) -> &'static str {
    if tls { "https" } else { "http" }
}

/// Serves `GET /metrics` and `GET /healthz` on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: watch::Receiver<bool>) {
    serve_guarded(listener, metrics, stop, Guard::default()).await
}

/// [`serve`], with the token and TLS of `guard`. A failed TLS handshake is logged and
/// counted (`dicomtap_tls_handshakes_total{leg="metrics"}`) and ends that connection only.
pub async fn serve_guarded(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    guard: Guard,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::debug!("metrics: {peer} turned away, {MAX_CONNECTIONS} connections open");
                        continue;
                    };
                    let metrics = metrics.clone();
                    let Guard { token, tls } = guard.clone();
                    let mut stop = stop.clone();
                    tokio::spawn(async move {
                        let stream = match tls {
                            None => Conn::Plain(stream),
                            Some(tls) => tokio::select! {
                                r = tls.accept(stream, HEAD_TIMEOUT, &metrics) => match r {
                                    Ok((conn, _)) => conn,
                                    Err(f) => {
                                        tracing::warn!("metrics: TLS handshake with {peer} failed: {}", f.reason);
                                        return;
                                    }
                                },
                                _ = stop.changed() => return,
                            },
                        };
                        let service = hyper::service::service_fn(move |req| {
                            let response = respond(&req, &metrics, token.as_deref());
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEAD_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        let ended = tokio::select! {
                            r = &mut conn => Some(r),
                            _ = tokio::time::sleep(CONNECTION_LIFETIME) => None,
                            _ = stop.changed() => None,
                        };
                        match ended {
                            Some(Err(e)) => tracing::debug!("metrics client {peer}: {e}"),
                            Some(Ok(())) => {}
                            None => {
                                conn.as_mut().graceful_shutdown();
                                let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                            }
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

fn respond(
    req: &Request<Incoming>,
    metrics: &Metrics,
    token: Option<&str>,
) -> Response<Full<Bytes>> {
    let headers = req.headers();
    if let Some(t) = token {
        if !bearer_matches(headers, t) {
            let mut r = plain(
                StatusCode::UNAUTHORIZED,
                "unauthorized: send Authorization: Bearer <metrics token>\n",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dicomtap\""),
            );
            return r;
        }
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let (ctype, body) = match req.uri().path() {
        "/metrics" => {
            if prefers_openmetrics(headers) {
                (
                    openmetrics::CONTENT_TYPE,
                    openmetrics::encode(&metrics.registry().gather()),
                )
            } else {
                (TEXT_FORMAT, metrics.render())
            }
        }
        "/healthz" => ("text/plain; charset=utf-8", "ok\n".to_string()),
        _ => return plain(StatusCode::NOT_FOUND, "not found; try /metrics\n"),
    };
    let mut body = body.into_bytes();
    let mut gzipped = false;
    if body.len() >= GZIP_FROM && accepts_gzip(headers) {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        if enc.write_all(&body).is_ok() {
            if let Ok(z) = enc.finish() {
                body = z;
                gzipped = true;
            }
        }
    }
    let len = body.len();
    let mut r = Response::new(Full::new(if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    }));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The media ranges of an `Accept`-like header with their quality (default 1).
fn ranges(headers: &HeaderMap, name: header::HeaderName) -> Vec<(String, f32)> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (range, q)
        })
        .collect()
}

/// Whether the scraper ranks OpenMetrics above the text format (Prometheus does, unless
/// configured otherwise).
fn prefers_openmetrics(headers: &HeaderMap) -> bool {
    let mut om = 0.0f32;
    let mut text = 0.0f32;
    for (range, q) in ranges(headers, header::ACCEPT) {
        match range.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    om > 0.0 && om >= text
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    ranges(headers, header::ACCEPT_ENCODING)
        .iter()
        .any(|(e, q)| e == "gzip" && *q > 0.0)
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant
/// time).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| {
            let mut v = value.trim().splitn(2, ' ');
            let scheme = v.next().unwrap_or("");
            let given = v.next().unwrap_or("").trim();
            scheme.eq_ignore_ascii_case("bearer")
                && given.len() == token.len()
                && given
                    .bytes()
                    .zip(token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn bearer_token() {
        let h = headers(&[("authorization", "Bearer s3cret")]);
        assert!(bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&h, "s3cres"));
        assert!(!bearer_matches(&h, "s3cret2"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn negotiation_follows_the_scrapers_preference() {
        // What Prometheus 2.x sends by default.
        let prom = headers(&[(
            "accept",
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )]);
        assert!(prefers_openmetrics(&prom));
        assert!(!prefers_openmetrics(&headers(&[("accept", "text/plain")])));
        assert!(!prefers_openmetrics(&HeaderMap::new()));
        assert!(!prefers_openmetrics(&headers(&[(
            "accept",
            "application/openmetrics-text;q=0.2,text/plain;q=0.9"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
    }
}
