//! A throwaway PKI for the TLS tests, made with `openssl`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{command, run_ok};

/// Longest one `openssl` invocation may take.
const OPENSSL: Duration = Duration::from_secs(60);

/// A throwaway PKI: a CA, a server certificate for localhost/127.0.0.1, a client
/// certificate, a client certificate of another (untrusted) CA, an expired server
/// certificate. All leaf certificates share one key (key generation is the slow part).
pub struct Pki {
    /// Where the keys and certificates are.
    pub dir: PathBuf,
}

impl Pki {
    /// Makes the PKI in `dir/pki` (`openssl` must be installed).
    pub fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let ossl = |args: &[&str]| {
            let mut c = command("openssl", args);
            c.current_dir(&dir);
            run_ok("openssl", c, &dir, OPENSSL);
        };
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        for (name, cn) in [("ca", "dicomtap test CA"), ("rogue-ca", "untrusted CA")] {
            ossl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "30",
                "-subj",
                &format!("/CN={cn}"),
            ]);
        }
        ossl(&["genrsa", "-out", "leaf.key", "2048"]);
        let pki = Pki { dir };
        pki.issue("server", "ca", "/O=dicomtap/CN=localhost", "30");
        pki.issue("client", "ca", "/O=dicomtap/CN=modality", "30");
        pki.issue("rogue", "rogue-ca", "/CN=rogue", "30");
        // Valid until a day before it was issued: expired on arrival.
        pki.issue("expired", "ca", "/O=dicomtap/CN=localhost", "-1");
        pki
    }

    /// Issues `name.pem` for `subject` (the shared key `leaf.key`, a server and client
    /// certificate for localhost/127.0.0.1), signed by `ca`, valid for `days`.
    pub fn issue(&self, name: &str, ca: &str, subject: &str, days: &str) {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let serial = (u64::from(std::process::id()) * 1000
            + SERIAL.fetch_add(1, Ordering::Relaxed))
        .to_string();
        let ossl = |args: &[&str]| {
            let mut c = command("openssl", args);
            c.current_dir(&self.dir);
            run_ok("openssl", c, &self.dir, OPENSSL);
        };
        ossl(&[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ]);
        ossl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial,
            "-days",
            days,
            "-extfile",
            "leaf.ext",
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// The full path of one of its files, as text.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// SHA-256 fingerprint of a PEM certificate as openssl computes it, lowercase hex.
    pub fn fingerprint(&self, cert: &str) -> String {
        let out = run_ok(
            "openssl-fp",
            command(
                "openssl",
                &[
                    "x509",
                    "-noout",
                    "-fingerprint",
                    "-sha256",
                    "-in",
                    &self.path(cert),
                ],
            ),
            &self.dir,
            OPENSSL,
        );
        out.stdout
            .split('=')
            .nth(1)
            .unwrap()
            .trim()
            .replace(':', "")
            .to_ascii_lowercase()
    }
}
