//! The fixed words the proxy puts in metric labels and event-log fields, as types: a
//! misspelt label cannot compile, and `as_str` gives the one spelling.

use dicomtap_wire::Side;

/// Which way bytes go through the proxy (`dicomtap_bytes_total{direction}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ToUpstream,
    ToClient,
}

impl Direction {
    /// The direction of what `from` sends.
    pub(crate) fn of(from: Side) -> Direction {
        match from {
            Side::Requestor => Direction::ToUpstream,
            Side::Acceptor => Direction::ToClient,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::ToUpstream => "to_upstream",
            Direction::ToClient => "to_client",
        }
    }
}

/// The `kind` of an `upstream_error` event (and of `dicomtap_upstream_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamErrorKind {
    Refused,
    Unreachable,
    Timeout,
    Resolve,
    Other,
    NoRoute,
    Tls,
    /// The upstream reset (or closed before the A-ASSOCIATE-RQ could be forwarded).
    Reset,
    /// The client reset.
    ClientReset,
}

impl UpstreamErrorKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Refused => "refused",
            UpstreamErrorKind::Unreachable => "unreachable",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Resolve => "resolve",
            UpstreamErrorKind::Other => "other",
            UpstreamErrorKind::NoRoute => "no_route",
            UpstreamErrorKind::Tls => "tls",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::ClientReset => "client_reset",
        }
    }

    /// What a failed connect to the upstream was.
    pub(crate) fn of_connect(e: &std::io::Error) -> UpstreamErrorKind {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => UpstreamErrorKind::Refused,
            HostUnreachable | NetworkUnreachable | AddrNotAvailable => {
                UpstreamErrorKind::Unreachable
            }
            TimedOut => UpstreamErrorKind::Timeout,
            _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
                UpstreamErrorKind::Resolve
            }
            _ => UpstreamErrorKind::Other,
        }
    }
}

/// An association's outcome as the proxy decides it (`dicomtap_associations_total{result}`);
/// the engine's events decide `accepted` and `rejected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    ProxyRejectedLimit,
    ProxyRejectedUpstream,
    ProxyRejectedAccess,
    TlsFailed,
    NoResponse,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::ProxyRejectedLimit => "proxy_rejected_limit",
            Outcome::ProxyRejectedUpstream => "proxy_rejected_upstream",
            Outcome::ProxyRejectedAccess => "proxy_rejected_access",
            Outcome::TlsFailed => "tls_failed",
            Outcome::NoResponse => "no_response",
        }
    }
}
