//! DICOM TLS (PS3.15 Annex B secure transport connection profiles) on both legs of the
//! proxy, with rustls and its `ring` provider: the `[listener.tls]` (the proxy terminates
//! TLS from devices) and `[listener.upstream_tls]` (the proxy originates TLS to the
//! upstream) configuration tables, the rustls configurations built from them and swapped
//! on reload (SIGHUP), the handshakes with their facts (version, cipher suite, peer
//! certificate subject and SHA-256 fingerprint) or their failure reason, and [`Conn`], the
//! stream type the forwarding loops use whether a leg is plain or TLS.
//!
//! The engine and the recorder only ever see the decrypted DICOM. Nothing here decodes
//! DICOM, and nothing here looks at passive captures (the analyzer recognises TLS there).

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::metrics::Metrics;

// ---------------------------------------------------------------------------------------
// Configuration

/// A TLS protocol version; configured as `"1.2"` or `"1.3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// BCP 195 (RFC 9325): TLS 1.2 and 1.3, nothing older.
pub fn default_versions() -> Vec<TlsVersion> {
    vec![TlsVersion::Tls12, TlsVersion::Tls13]
}

/// The default cipher suites: those of the BCP 195 profiles of PS3.15 (B.9 Non-downgrading
/// BCP 195, B.10 BCP 195) that rustls implements: ECDHE with AES-GCM for TLS 1.2 (the DHE
/// suites of the profile are not implemented by rustls), and the TLS 1.3 AEAD suites.
pub const DEFAULT_CIPHER_SUITES: &[&str] = &[
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
];

/// [`DEFAULT_CIPHER_SUITES`] as configuration values.
pub fn default_cipher_suites() -> Vec<String> {
    DEFAULT_CIPHER_SUITES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Whether the proxy asks devices for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A certificate signed by `client_ca` is required (the DICOM profiles' default).
    Required,
    /// A certificate is asked for; when one is presented it must verify.
    Optional,
    /// No certificate is asked for.
    Off,
}

/// `[listener.tls]`: the proxy terminates TLS from the devices on this listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawServerTls")]
pub struct ServerTlsConfig {
    /// The proxy's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Trust store (PEM) for client certificates.
    pub client_ca: Option<PathBuf>,
    /// Effective client authentication: default `required` with a `client_ca`, else `off`.
    pub client_auth: ClientAuth,
    pub versions: Vec<TlsVersion>,
    /// Cipher suite names (IANA or rustls spelling); default [`DEFAULT_CIPHER_SUITES`].
    pub cipher_suites: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
    #[serde(default = "default_versions")]
    versions: Vec<TlsVersion>,
    cipher_suites: Option<Vec<String>>,
}

impl TryFrom<RawServerTls> for ServerTlsConfig {
    type Error = String;
    fn try_from(raw: RawServerTls) -> Result<Self, String> {
        let client_auth = raw.client_auth.unwrap_or(if raw.client_ca.is_some() {
            ClientAuth::Required
        } else {
            ClientAuth::Off
        });
        if client_auth != ClientAuth::Off && raw.client_ca.is_none() {
            return Err("client_auth = \"required\" or \"optional\" needs `client_ca`".into());
        }
        Ok(ServerTlsConfig {
            cipher_suites: checked_suites(&raw.versions, raw.cipher_suites)?,
            cert: raw.cert,
            key: raw.key,
            client_ca: raw.client_ca,
            client_auth,
            versions: raw.versions,
        })
    }
}

impl ServerTlsConfig {
    /// The configuration of `cert`, `key` and, when given, `client_ca` (then a client
    /// certificate is required), with the BCP 195 versions and cipher suites: what the
    /// command line's flags make.
    pub fn new(
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    ) -> Result<ServerTlsConfig, String> {
        ServerTlsConfig::try_from(RawServerTls {
            cert,
            key,
            client_ca,
            client_auth: None,
            versions: default_versions(),
            cipher_suites: None,
        })
    }
}

/// `suites` (default [`DEFAULT_CIPHER_SUITES`]) once checked against `versions`.
fn checked_suites(
    versions: &[TlsVersion],
    suites: Option<Vec<String>>,
) -> Result<Vec<String>, String> {
    let suites = suites.unwrap_or_else(default_cipher_suites);
    provider(versions, &suites)?;
    Ok(suites)
}

/// `[listener.upstream_tls]`: the proxy originates TLS to the upstream of this listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawClientTls")]
pub struct ClientTlsConfig {
    /// Trust store (PEM) for the upstream's certificate.
    pub ca: PathBuf,
    /// The proxy's client certificate chain (PEM), when the upstream asks for one.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// Name the upstream certificate is verified against (and sent as SNI when it is a DNS
    /// name); default: the host of the upstream address.
    pub server_name: Option<String>,
    pub versions: Vec<TlsVersion>,
    pub cipher_suites: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientTls {
    ca: PathBuf,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
    #[serde(default = "default_versions")]
    versions: Vec<TlsVersion>,
    cipher_suites: Option<Vec<String>>,
}

impl TryFrom<RawClientTls> for ClientTlsConfig {
    type Error = String;
    fn try_from(raw: RawClientTls) -> Result<Self, String> {
        if raw.cert.is_some() != raw.key.is_some() {
            return Err("`cert` and `key` go together".into());
        }
        if let Some(name) = &raw.server_name {
            ServerName::try_from(name.clone())
                .map_err(|_| format!("server_name {name:?} is not a DNS name or IP address"))?;
        }
        Ok(ClientTlsConfig {
            cipher_suites: checked_suites(&raw.versions, raw.cipher_suites)?,
            ca: raw.ca,
            cert: raw.cert,
            key: raw.key,
            server_name: raw.server_name,
            versions: raw.versions,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Building rustls configurations

/// Why TLS could not be set up from the configuration. The message is complete (file and
/// cause), so the causes are not chained again as sources.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    #[error("{what}: {}", rustls_error_text(error))]
    Rustls { what: String, error: rustls::Error },
    #[error("{0}")]
    Config(String),
}

fn normalise_suite(name: &str) -> String {
    let n = name.trim().to_ascii_uppercase();
    // IANA spells the TLS 1.3 suites TLS_AES_…, rustls TLS13_AES_….
    match n.strip_prefix("TLS_") {
        Some(rest) if !rest.contains("_WITH_") => format!("TLS13_{rest}"),
        _ => n,
    }
}

/// The negotiated protocol version (`TLSv1.2`, `TLSv1.3`) and cipher suite of a
/// connection, named as in the event log and the reports.
pub fn negotiated(conn: &rustls::CommonState) -> (String, String) {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(v) => format!("{v:?}"),
        None => "unknown".into(),
    };
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| suite_name(&s))
        .unwrap_or_else(|| "unknown".into());
    (version, cipher_suite)
}

fn suite_name(s: &SupportedCipherSuite) -> String {
    s.suite()
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:?}", s.suite()))
}

/// The `ring` provider restricted to `suites`, checked against `versions`.
fn provider(versions: &[TlsVersion], suites: &[String]) -> Result<CryptoProvider, String> {
    if versions.is_empty() {
        return Err("`versions` is empty (use [\"1.2\", \"1.3\"])".into());
    }
    let base = rustls::crypto::ring::default_provider();
    let mut chosen = Vec::new();
    for name in suites {
        let want = normalise_suite(name);
        let Some(s) = base.cipher_suites.iter().find(|s| suite_name(s) == want) else {
            let known: Vec<String> = base.cipher_suites.iter().map(suite_name).collect();
            return Err(format!(
                "unknown cipher suite {name:?} (available: {})",
                known.join(", ")
            ));
        };
        chosen.push(*s);
    }
    let usable = chosen.iter().any(|s| {
        versions
            .iter()
            .any(|v| s.version().version == v.rustls().version)
    });
    if !usable {
        return Err("no cipher suite of `cipher_suites` belongs to a configured version".into());
    }
    Ok(CryptoProvider {
        cipher_suites: chosen,
        ..base
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_path_buf(),
        error,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        message: format!("no usable private key ({e})"),
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|error| TlsError::Rustls {
            what: format!("{}: trust anchor", path.display()),
            error,
        })?;
    }
    Ok(roots)
}

fn versions_of(v: &[TlsVersion]) -> Vec<&'static SupportedProtocolVersion> {
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for x in v {
        let r = x.rustls();
        if !out.iter().any(|o| o.version == r.version) {
            out.push(r);
        }
    }
    out
}

/// Builds the server side of a listener from its files.
pub fn build_server_config(c: &ServerTlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config(c, Leg::Client.table())
}

/// [`build_server_config`] for the table `table` (named in the errors).
fn server_config(c: &ServerTlsConfig, table: &str) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(provider(&c.versions, &c.cipher_suites).map_err(TlsError::Config)?);
    let what = |w: &str| format!("{table} {w}");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions_of(&c.versions))
        .map_err(|error| TlsError::Rustls {
            what: what("versions"),
            error,
        })?;
    let builder = match (&c.client_ca, c.client_auth) {
        (Some(ca), ClientAuth::Required | ClientAuth::Optional) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut vb = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots,
                provider.clone(),
            );
            if c.client_auth == ClientAuth::Optional {
                vb = vb.allow_unauthenticated();
            }
            let verifier = vb
                .build()
                .map_err(|e| TlsError::Config(format!("{}: client verifier: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let certs = load_certs(&c.cert)?;
    let key = load_key(&c.key)?;
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|error| TlsError::Rustls {
            what: what(&format!("{} / {}", c.cert.display(), c.key.display())),
            error,
        })?;
    Ok(Arc::new(config))
}

/// Builds the client side (towards the upstream) of a listener from its files.
pub fn build_client_config(c: &ClientTlsConfig) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(provider(&c.versions, &c.cipher_suites).map_err(TlsError::Config)?);
    let roots = load_roots(&c.ca)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions_of(&c.versions))
        .map_err(|error| TlsError::Rustls {
            what: "[listener.upstream_tls] versions".into(),
            error,
        })?
        .with_root_certificates(roots);
    let config = match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|error| TlsError::Rustls {
                what: format!("{} / {}", cert.display(), key.display()),
                error,
            })?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

// ---------------------------------------------------------------------------------------
// Runtime state of one listener

struct Swappable<C, R> {
    config: C,
    current: RwLock<Arc<R>>,
}

impl<C, R> Swappable<C, R> {
    fn get(&self) -> Arc<R> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, new: Arc<R>) {
        match self.current.write() {
            Ok(mut g) => *g = new,
            Err(p) => *p.into_inner() = new,
        }
    }
}

/// The TLS of one listener: what it terminates, what it originates. Plain legs are `None`.
/// The metrics endpoint's TLS is one too ([`ListenerTls::metrics`]): it terminates only.
pub struct ListenerTls {
    server: Option<Swappable<ServerTlsConfig, rustls::ServerConfig>>,
    client: Option<Swappable<ClientTlsConfig, rustls::ClientConfig>>,
    /// The leg `server`'s handshakes count as (`Client`, or `Metrics`); its table is named
    /// in the errors of a reload.
    leg: Leg,
}

impl Default for ListenerTls {
    fn default() -> Self {
        ListenerTls {
            server: None,
            client: None,
            leg: Leg::Client,
        }
    }
}

/// The terminating side of `leg` from `c`, its files read now.
fn terminating(
    c: &ServerTlsConfig,
    leg: Leg,
) -> Result<Swappable<ServerTlsConfig, rustls::ServerConfig>, TlsError> {
    Ok(Swappable {
        current: RwLock::new(server_config(c, leg.table())?),
        config: c.clone(),
    })
}

/// New rustls configurations read from the files, not yet in use.
pub struct Prepared {
    server: Option<Arc<rustls::ServerConfig>>,
    client: Option<Arc<rustls::ClientConfig>>,
}

impl ListenerTls {
    /// Reads the certificate files of `server` (terminate) and `client` (originate).
    pub fn load(
        server: Option<&ServerTlsConfig>,
        client: Option<&ClientTlsConfig>,
    ) -> Result<ListenerTls, TlsError> {
        Ok(ListenerTls {
            server: server.map(|c| terminating(c, Leg::Client)).transpose()?,
            client: match client {
                Some(c) => Some(Swappable {
                    current: RwLock::new(build_client_config(c)?),
                    config: c.clone(),
                }),
                None => None,
            },
            ..ListenerTls::default()
        })
    }

    /// The TLS of the metrics endpoint (`[metrics_tls]`): its handshakes count as
    /// `leg="metrics"`, its errors name `[metrics_tls]`.
    pub fn metrics(c: &ServerTlsConfig) -> Result<ListenerTls, TlsError> {
        Ok(ListenerTls {
            server: Some(terminating(c, Leg::Metrics)?),
            client: None,
            leg: Leg::Metrics,
        })
    }

    /// Whether either leg uses TLS.
    pub fn is_active(&self) -> bool {
        self.server.is_some() || self.client.is_some()
    }

    /// Whether the proxy terminates TLS from clients on this listener.
    pub fn terminates(&self) -> bool {
        self.server.is_some()
    }

    /// Re-reads every file (for a reload); nothing changes until [`ListenerTls::install`].
    pub fn prepare(&self) -> Result<Prepared, TlsError> {
        Ok(Prepared {
            server: match &self.server {
                Some(s) => Some(server_config(&s.config, self.leg.table())?),
                None => None,
            },
            client: match &self.client {
                Some(c) => Some(build_client_config(&c.config)?),
                None => None,
            },
        })
    }

    /// Puts prepared configurations in use for the handshakes from now on (connections
    /// already up keep theirs).
    pub fn install(&self, p: Prepared) {
        if let (Some(s), Some(new)) = (&self.server, p.server) {
            s.set(new);
        }
        if let (Some(c), Some(new)) = (&self.client, p.client) {
            c.set(new);
        }
    }

    /// The client leg: a TLS handshake as server when this listener terminates TLS, else
    /// the plain stream. Counts `dicomtap_tls_handshakes_total{leg="client"}` (or
    /// `leg="metrics"` on the metrics endpoint).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        timeout: Duration,
        metrics: &Metrics,
    ) -> Result<(Conn, Option<TlsFacts>), HandshakeFailure> {
        let Some(server) = &self.server else {
            return Ok((Conn::Plain(tcp), None));
        };
        let leg = self.leg;
        let acceptor = tokio_rustls::TlsAcceptor::from(server.get());
        let result = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Err(_) => Err(HandshakeFailure::timeout(leg, timeout)),
            Ok(Err(e)) => Err(HandshakeFailure::from_io(leg, &e)),
            Ok(Ok(s)) => {
                let facts = TlsFacts::of(s.get_ref().1, s.get_ref().1.server_name());
                Ok((Conn::Server(Box::new(s)), Some(facts)))
            }
        };
        count(metrics, leg, &result);
        result
    }

    /// The upstream leg: a TLS handshake as client when this listener originates TLS, else
    /// the plain stream. `host` is the upstream's host, used for verification unless
    /// `server_name` is configured. Counts `dicomtap_tls_handshakes_total{leg="upstream"}`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
        timeout: Duration,
        metrics: &Metrics,
    ) -> Result<(Conn, Option<TlsFacts>), HandshakeFailure> {
        let Some(client) = &self.client else {
            return Ok((Conn::Plain(tcp), None));
        };
        let name = client
            .config
            .server_name
            .clone()
            .unwrap_or_else(|| host.trim_matches(|c| c == '[' || c == ']').to_string());
        let result = match ServerName::try_from(name.clone()) {
            Err(_) => Err(HandshakeFailure {
                leg: Leg::Upstream,
                result: "other",
                reason: format!(
                    "{name:?} is not a name the upstream certificate can be verified against; \
                     set upstream_tls.server_name"
                ),
            }),
            Ok(server_name) => {
                let connector = tokio_rustls::TlsConnector::from(client.get());
                match tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await {
                    Err(_) => Err(HandshakeFailure::timeout(Leg::Upstream, timeout)),
                    Ok(Err(e)) => Err(HandshakeFailure::from_io(Leg::Upstream, &e)),
                    Ok(Ok(s)) => {
                        let sni = name.parse::<IpAddr>().is_err().then_some(name.as_str());
                        let facts = TlsFacts::of(s.get_ref().1, sni);
                        Ok((Conn::Client(Box::new(s)), Some(facts)))
                    }
                }
            }
        };
        count(metrics, Leg::Upstream, &result);
        result
    }
}

fn count<T>(metrics: &Metrics, leg: Leg, r: &Result<T, HandshakeFailure>) {
    let result = match r {
        Ok(_) => "ok",
        Err(f) => f.result,
    };
    metrics
        .tls_handshakes_total
        .with_label_values(&[leg.as_str(), result])
        .inc();
}

// ---------------------------------------------------------------------------------------
// Handshake outcomes

/// Which leg of an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// Device (client) to proxy.
    Client,
    /// Proxy to upstream.
    Upstream,
    /// A scraper to the metrics endpoint.
    Metrics,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Client => "client",
            Leg::Upstream => "upstream",
            Leg::Metrics => "metrics",
        }
    }

    /// The configuration table of this leg's TLS, as errors name it.
    fn table(self) -> &'static str {
        match self {
            Leg::Client => "[listener.tls]",
            Leg::Upstream => "[listener.upstream_tls]",
            Leg::Metrics => "[metrics_tls]",
        }
    }

    /// The peer on this leg, in words.
    fn peer(self) -> &'static str {
        match self {
            Leg::Client => "client",
            Leg::Upstream => "upstream",
            Leg::Metrics => "scraper",
        }
    }
}

/// What a completed handshake negotiated and who the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// IANA name (rustls spelling for TLS 1.3: `TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// SNI: as received (client leg) or sent (upstream leg).
    pub server_name: Option<String>,
    /// Subject of the peer's end-entity certificate (`C=…, O=…, CN=…`, certificate order).
    pub peer_subject: Option<String>,
    pub peer_issuer: Option<String>,
    /// SHA-256 of the peer's end-entity certificate (DER), lowercase hex.
    pub peer_fingerprint_sha256: Option<String>,
}

impl TlsFacts {
    fn of(conn: &rustls::CommonState, sni: Option<&str>) -> TlsFacts {
        let (version, cipher_suite) = negotiated(conn);
        let leaf = conn.peer_certificates().and_then(|c| c.first());
        let names = leaf.and_then(|c| cert_names(c.as_ref()));
        TlsFacts {
            version,
            cipher_suite,
            server_name: sni.map(str::to_string),
            peer_subject: names.as_ref().map(|n| n.1.clone()),
            peer_issuer: names.map(|n| n.0),
            peer_fingerprint_sha256: leaf.map(|c| fingerprint(c.as_ref())),
        }
    }
}

/// SHA-256 of DER bytes, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailure {
    pub leg: Leg,
    /// Bounded label: no_certificate, bad_certificate, expired_certificate, unknown_ca,
    /// not_tls, protocol, timeout, closed, other.
    pub result: &'static str,
    /// For people: what went wrong, in words.
    pub reason: String,
}

impl HandshakeFailure {
    fn timeout(leg: Leg, after: Duration) -> Self {
        HandshakeFailure {
            leg,
            result: "timeout",
            reason: format!("no TLS handshake within {after:?}"),
        }
    }

    fn from_io(leg: Leg, e: &io::Error) -> Self {
        let (result, reason) = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(r) => describe(leg, r),
            None => match e.kind() {
                io::ErrorKind::UnexpectedEof => (
                    "closed",
                    "the peer closed the connection during the handshake".to_string(),
                ),
                io::ErrorKind::ConnectionReset => (
                    "closed",
                    "the peer reset the connection during the handshake".to_string(),
                ),
                _ => ("other", e.to_string()),
            },
        };
        HandshakeFailure {
            leg,
            result,
            reason,
        }
    }
}

/// A rustls error in words. rustls shows certificate errors of its verifier as Rust debug
/// output ("invalid peer certificate: Other(OtherError(UnsupportedCertVersion))"); those
/// are named here, with what to do about the common ones.
pub fn rustls_error_text(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E, InconsistentKeys as K};
    let other = match e {
        E::InvalidCertificate(C::Other(other)) => other,
        E::InconsistentKeys(K::KeyMismatch) => {
            return "the private key does not belong to the certificate (the first \
                    certificate of the file must be the one issued for this key)"
                .to_string();
        }
        E::InconsistentKeys(_) => {
            return "cannot check that the private key belongs to the certificate".to_string();
        }
        _ => return e.to_string(),
    };
    // The verifier's error: its name, e.g. "UnsupportedCertVersion", or a sentence.
    let name = other.0.to_string();
    let name = name.trim();
    match name {
        "UnsupportedCertVersion" => "invalid peer certificate: it is an X.509 v1 certificate; \
             rustls accepts only X.509 v3 certificates with a subjectAltName: reissue it as v3 \
             (openssl x509 -req ... -extfile with subjectAltName = DNS:<host> or IP:<address>, \
             basicConstraints = CA:FALSE and keyUsage = digitalSignature, keyEncipherment)"
            .to_string(),
        "UnsupportedCriticalExtension" => "invalid peer certificate: it has a critical \
             extension rustls does not know, so it must refuse it; reissue it without that \
             extension marked critical"
            .to_string(),
        "CaUsedAsEndEntity" => "invalid peer certificate: it is a CA certificate \
             (basicConstraints CA:TRUE) used as a server or client certificate; issue an end \
             entity certificate (CA:FALSE) signed by that CA"
            .to_string(),
        "EndEntityUsedAsCa" => "invalid peer certificate: its chain uses an end-entity \
             certificate (CA:FALSE) as a CA; the issuer must be a CA certificate (CA:TRUE)"
            .to_string(),
        _ if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!("invalid peer certificate: {}", camel_to_words(name))
        }
        _ => format!("invalid peer certificate: {name}"),
    }
}

/// "UnsupportedSignatureAlgorithm" -> "unsupported signature algorithm".
fn camel_to_words(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn describe(leg: Leg, err: &rustls::Error) -> (&'static str, String) {
    use rustls::{CertificateError as C, Error as E};
    let e = rustls_error_text(err);
    let peer = leg.peer();
    match err {
        E::NoCertificatesPresented => (
            "no_certificate",
            format!("the {peer} presented no certificate, but one is required ({e})"),
        ),
        E::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => (
                "expired_certificate",
                format!("the {peer}'s certificate has expired ({e})"),
            ),
            C::NotValidYet | C::NotValidYetContext { .. } => (
                "bad_certificate",
                format!("the {peer}'s certificate is not valid yet ({e})"),
            ),
            C::UnknownIssuer => (
                "unknown_ca",
                format!(
                    "the {peer}'s certificate is not signed by a trusted CA ({e}; check {})",
                    match leg {
                        Leg::Client => "tls.client_ca",
                        Leg::Upstream => "upstream_tls.ca",
                        Leg::Metrics => "metrics_tls.client_ca",
                    }
                ),
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => (
                "bad_certificate",
                format!(
                    "the {peer}'s certificate is not valid for the expected name ({e}; see upstream_tls.server_name)"
                ),
            ),
            _ => (
                "bad_certificate",
                format!("the {peer}'s certificate was refused ({e})"),
            ),
        },
        E::AlertReceived(a) => {
            use rustls::AlertDescription as A;
            let result = match a {
                A::CertificateRequired => "no_certificate",
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateUnknown => "bad_certificate",
                A::CertificateExpired => "expired_certificate",
                A::UnknownCA => "unknown_ca",
                _ => "protocol",
            };
            (
                result,
                format!(
                    "the {peer} refused the handshake with alert {} (it does not accept the proxy's certificate or parameters)",
                    camel_to_words(&format!("{a:?}"))
                ),
            )
        }
        E::InvalidMessage(_) => (
            "not_tls",
            format!("the {peer} did not speak TLS, or sent a corrupt record ({e})"),
        ),
        E::PeerIncompatible(_) => (
            "protocol",
            format!("no common TLS version or cipher suite with the {peer} ({e})"),
        ),
        _ => ("protocol", e),
    }
}

/// The event-log notice of a completed handshake.
pub fn established_notice(leg: Leg, f: &TlsFacts) -> crate::events::Notice {
    crate::events::Notice::TlsEstablished {
        leg: leg.as_str().to_string(),
        version: f.version.clone(),
        cipher_suite: f.cipher_suite.clone(),
        server_name: f.server_name.clone(),
        peer_subject: f.peer_subject.clone(),
        peer_issuer: f.peer_issuer.clone(),
        peer_fingerprint_sha256: f.peer_fingerprint_sha256.clone(),
    }
}

/// The event-log notice of a failed handshake.
pub fn failed_notice(f: &HandshakeFailure) -> crate::events::Notice {
    crate::events::Notice::TlsHandshakeFailed {
        leg: f.leg.as_str().to_string(),
        result: f.result.to_string(),
        reason: f.reason.clone(),
    }
}

/// The host part of `host:port` / `[v6]:port`, for certificate verification.
pub fn host_of(target: &str) -> String {
    match target.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => {
            h.trim_matches(|c| c == '[' || c == ']').to_string()
        }
        _ => target.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The stream of one leg, plain or TLS

/// One leg's stream: plain TCP or TLS over TCP.
pub enum Conn {
    Plain(TcpStream),
    /// TLS terminated by the proxy (the client leg).
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS originated by the proxy (the upstream leg).
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Server(s) => s.get_ref().0,
            Conn::Client(s) => s.get_ref().0,
        }
    }

    /// Splits into a read and a write half. Plain TCP splits without a lock; TLS shares
    /// its session state between the halves.
    pub fn into_split(self) -> (ConnRead, ConnWrite) {
        match self {
            Conn::Plain(s) => {
                let (r, w) = s.into_split();
                (ConnRead::Plain(r), ConnWrite::Plain(w))
            }
            tls => {
                let (r, w) = tokio::io::split(tls);
                (ConnRead::Tls(r), ConnWrite::Tls(w))
            }
        }
    }
}

/// A TLS peer that closes TCP without a close_notify: rustls reports UnexpectedEof. DICOM
/// has its own end (A-RELEASE, A-ABORT) and the engine sees any truncated PDU, so this is
/// treated as a FIN, as for plain TCP.
fn eof_is_close(r: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
    match r {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
        other => other,
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Server(s) => eof_is_close(Pin::new(s.as_mut()).poll_read(cx, buf)),
            Conn::Client(s) => eof_is_close(Pin::new(s.as_mut()).poll_read(cx, buf)),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Server(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Server(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Server(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The read half of a [`Conn`].
pub enum ConnRead {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<Conn>),
}

/// The write half of a [`Conn`].
pub enum ConnWrite {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<Conn>),
}

impl AsyncRead for ConnRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnRead::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ConnRead::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ConnWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnWrite::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ConnWrite::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnWrite::Plain(s) => Pin::new(s).poll_flush(cx),
            ConnWrite::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnWrite::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ConnWrite::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Certificate names (bounded DER walk; rustls has already parsed the certificate)

struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(b: &'a [u8]) -> Self {
        Der { rest: b }
    }

    /// The next TLV: (tag, contents).
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers do not occur where we look
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | b as usize;
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (body, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, body))
    }
}

/// (issuer, subject) of a DER certificate, each as `K=V, K=V` in certificate order.
pub fn cert_names(der: &[u8]) -> Option<(String, String)> {
    let (_, cert) = Der::new(der).next().filter(|(t, _)| *t == 0x30)?;
    let (_, tbs) = Der::new(cert).next().filter(|(t, _)| *t == 0x30)?;
    let mut d = Der::new(tbs);
    let mut field = d.next()?;
    if field.0 == 0xa0 {
        field = d.next()?; // version
    }
    let _serial = field;
    let _sig_alg = d.next()?;
    let (_, issuer) = d.next().filter(|(t, _)| *t == 0x30)?;
    let _validity = d.next()?;
    let (_, subject) = d.next().filter(|(t, _)| *t == 0x30)?;
    Some((render_name(issuer)?, render_name(subject)?))
}

fn render_name(name: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    let mut rdns = Der::new(name);
    while let Some((tag, set)) = rdns.next() {
        if tag != 0x31 {
            return None;
        }
        let mut atvs = Der::new(set);
        while let Some((tag, atv)) = atvs.next() {
            if tag != 0x30 {
                return None;
            }
            let mut d = Der::new(atv);
            let (_, oid) = d.next().filter(|(t, _)| *t == 0x06)?;
            let (vt, value) = d.next()?;
            parts.push(format!("{}={}", attr_name(oid), string_value(vt, value)));
        }
    }
    Some(parts.join(", "))
}

fn attr_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        other => dotted_oid(other),
    }
}

fn dotted_oid(oid: &[u8]) -> String {
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if out.is_empty() {
                let first = (acc / 40).min(2);
                out.push(first.to_string());
                out.push((acc - first * 40).to_string());
            } else {
                out.push(acc.to_string());
            }
            acc = 0;
        }
        if i > 64 {
            break;
        }
    }
    out.join(".")
}

fn string_value(tag: u8, v: &[u8]) -> String {
    let s = match tag {
        // BMPString: UTF-16BE.
        0x1e => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(v).into_owned(),
    };
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real X.509 v1 certificate (openssl x509 -req without extensions) refused by
    /// rustls' verifier is explained in words, with how to reissue it.
    #[test]
    fn a_v1_certificate_is_explained_in_words() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls_pki_types::pem::PemObject;
        let dir = tempfile::tempdir().unwrap();
        let (key, csr, pem) = (
            dir.path().join("v1.key"),
            dir.path().join("v1.csr"),
            dir.path().join("v1.pem"),
        );
        let ok = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
        assert!(
            ok(&[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &p(&key),
                "-subj",
                "/CN=localhost",
                "-out",
                &p(&csr)
            ]) && ok(&[
                "x509",
                "-req",
                "-in",
                &p(&csr),
                "-signkey",
                &p(&key),
                "-days",
                "30",
                "-out",
                &p(&pem)
            ]),
            "openssl makes a v1 certificate"
        );
        let cert = rustls_pki_types::CertificateDer::from_pem_file(&pem).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let err = verifier
            .verify_server_cert(&cert, &[], &name, &[], rustls_pki_types::UnixTime::now())
            .unwrap_err();
        let text = rustls_error_text(&err);
        assert!(
            text.contains("X.509 v1") && text.contains("subjectAltName"),
            "{text}"
        );
        assert!(
            !text.contains("Other(") && !text.contains("OtherError"),
            "{text}"
        );
        let (_, reason) = describe(Leg::Upstream, &err);
        assert!(!reason.contains("Other("), "{reason}");
    }

    #[test]
    fn a_key_of_another_certificate_is_explained_in_words() {
        for why in [
            rustls::InconsistentKeys::KeyMismatch,
            rustls::InconsistentKeys::Unknown,
        ] {
            let text = rustls_error_text(&rustls::Error::InconsistentKeys(why));
            assert!(text.contains("private key"), "{text}");
            assert!(!text.contains("Key") && !text.contains("Unknown"), "{text}");
        }
    }

    #[test]
    fn suite_names_iana_and_rustls() {
        assert_eq!(
            normalise_suite("TLS_AES_128_GCM_SHA256"),
            "TLS13_AES_128_GCM_SHA256"
        );
        assert_eq!(
            normalise_suite("tls_ecdhe_rsa_with_aes_128_gcm_sha256"),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        let p = provider(&default_versions(), &default_cipher_suites());
        assert_eq!(p.map(|p| p.cipher_suites.len()).ok(), Some(7));
        assert!(provider(&default_versions(), &["TLS_RSA_WITH_RC4_128_MD5".into()]).is_err());
        // A TLS 1.2 suite alone with only TLS 1.3 allowed is useless.
        assert!(
            provider(
                &[TlsVersion::Tls13],
                &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]
            )
            .is_err()
        );
    }

    #[test]
    fn der_names_are_bounded() {
        // A certificate truncated anywhere yields None, never a panic.
        let cert = [
            0x30, 0x1c, 0x30, 0x1a, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x0b, 0x31, 0x09, 0x30,
            0x07, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x00, 0x30, 0x00, 0x30, 0x06, 0x31, 0x04,
            0x30, 0x02, 0x06, 0x00,
        ];
        for n in 0..cert.len() {
            let _ = cert_names(&cert[..n]);
        }
        assert_eq!(dotted_oid(&[0x2a, 0x86, 0x48]), "1.2.840");
    }

    #[test]
    fn client_auth_needs_a_ca() {
        let raw = RawServerTls {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: None,
            client_auth: Some(ClientAuth::Required),
            versions: default_versions(),
            cipher_suites: None,
        };
        assert!(ServerTlsConfig::try_from(raw).is_err());
    }
}
