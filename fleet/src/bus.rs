//! How an instance and the central consumer reach the bus across sites: TLS (the server
//! verified against a private CA, optionally a client certificate) and one way of
//! authenticating (a NATS `.creds` file, a token, or a user and password). Secrets come
//! from files, never from a command line where `ps` would show them.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// TLS and credentials for the bus; all optional (a loopback or lab bus needs none). Its
/// fields are also the security keys of `[fleet]` (docs/fleet.md), read straight into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct BusSecurity {
    /// CA certificate(s), PEM, that the server's certificate must chain to. Implies TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and its key, PEM, for a server that verifies clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Require TLS (with the system's roots unless `tls_ca` is set).
    pub tls: bool,
    /// A NATS credentials file (user JWT and NKey seed).
    pub creds_file: Option<PathBuf>,
    /// A file holding the token (surrounding whitespace ignored).
    pub token_file: Option<PathBuf>,
    /// A user name, with `password_file`.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// What is wrong with a [`BusSecurity`], in words for the configuration's author.
#[derive(Debug, thiserror::Error)]
pub enum BusSecurityError {
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BusSecurity {
    /// Whether TLS will be used.
    pub fn uses_tls(&self) -> bool {
        self.tls || self.tls_ca.is_some() || self.tls_cert.is_some()
    }

    /// One short line for the start-up message: what protects the connection, no secret.
    pub fn describe(&self) -> String {
        let tls = match (&self.tls_ca, &self.tls_cert) {
            (_, Some(_)) => "TLS with a client certificate",
            (Some(_), None) => "TLS (private CA)",
            (None, None) if self.tls => "TLS",
            _ => "no TLS",
        };
        let auth = if self.creds_file.is_some() {
            ", credentials file"
        } else if self.token_file.is_some() {
            ", token"
        } else if self.user.is_some() {
            ", user and password"
        } else {
            ""
        };
        format!("{tls}{auth}")
    }

    /// Checks the combination and that every file named can be read.
    pub fn check(&self) -> Result<(), BusSecurityError> {
        let invalid = |m: &str| Err(BusSecurityError::Invalid(m.to_string()));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("a client certificate needs its key: tls_cert and tls_key together");
        }
        if self.user.is_some() != self.password_file.is_some() {
            return invalid("a user needs a password: user and password_file together");
        }
        let ways = [
            self.creds_file.is_some(),
            self.token_file.is_some(),
            self.user.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            return invalid(
                "one way of authenticating to the bus: creds_file, token_file, or user with password_file",
            );
        }
        for p in [
            &self.tls_ca,
            &self.tls_cert,
            &self.tls_key,
            &self.creds_file,
            &self.token_file,
            &self.password_file,
        ]
        .into_iter()
        .flatten()
        {
            std::fs::metadata(p).map_err(|source| BusSecurityError::Read {
                path: p.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Connect options with this security, a connect timeout and a client name.
    pub async fn options(
        &self,
        name: String,
    ) -> Result<async_nats::ConnectOptions, BusSecurityError> {
        self.check()?;
        let mut o = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .name(name);
        if let Some(p) = &self.creds_file {
            o = o
                .credentials_file(p)
                .await
                .map_err(|source| BusSecurityError::Read {
                    path: p.clone(),
                    source,
                })?;
        }
        if let Some(p) = &self.token_file {
            o = o.token(read_secret(p)?);
        }
        if let (Some(user), Some(p)) = (&self.user, &self.password_file) {
            o = o.user_and_password(user.clone(), read_secret(p)?);
        }
        if self.uses_tls() {
            o = o.require_tls(true);
        }
        if let Some(ca) = &self.tls_ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(o)
    }
}

fn read_secret(path: &Path) -> Result<String, BusSecurityError> {
    let s = std::fs::read_to_string(path).map_err(|source| BusSecurityError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let s = s.trim();
    if s.is_empty() {
        return Err(BusSecurityError::Invalid(format!(
            "{}: the file is empty",
            path.display()
        )));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_that_cannot_work_are_refused_in_words() {
        let cert_only = BusSecurity {
            tls_cert: Some("/nonexistent/c.pem".into()),
            ..BusSecurity::default()
        };
        assert!(
            cert_only
                .check()
                .unwrap_err()
                .to_string()
                .contains("tls_key")
        );
        let two_ways = BusSecurity {
            token_file: Some("/nonexistent/t".into()),
            user: Some("u".into()),
            password_file: Some("/nonexistent/p".into()),
            ..BusSecurity::default()
        };
        assert!(
            two_ways
                .check()
                .unwrap_err()
                .to_string()
                .contains("one way")
        );
        let missing = BusSecurity {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            ..BusSecurity::default()
        };
        let e = missing.check().unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/ca.pem: "), "{e}");
        assert!(BusSecurity::default().check().is_ok());
        assert_eq!(BusSecurity::default().describe(), "no TLS");
        assert_eq!(missing.describe(), "TLS (private CA)");
    }
}
