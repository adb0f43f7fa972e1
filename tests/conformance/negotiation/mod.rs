#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Association and negotiation conformance rules against real peers: DCMTK (storescp with
//! a restricted profile or another transfer syntax preference, storescu with user
//! identity, dcmqrscp with an access list or an association limit, TLS) and pynetdicom
//! (tests/conformance_support/negotiation.py: role selection, extended negotiation 0x56
//! and 0x57, asynchronous operations window, user identity, many contexts, simultaneous
//! associations) produce each violation on loopback; dumpcap captures it and `dicomtap
//! analyze --statements` must report exactly that rule for that device, with the claim
//! and what was seen. The same traffic against a statement that matches the peer (or the
//! peer run conformingly) must raise nothing.
//!
//! Peers come from scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::conformance::*;
use support::peers::echoscu;
use support::pki::Pki;
use support::*;

const T: Duration = Duration::from_secs(60);
const UNCOMPRESSED: &str =
    r#"["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "ExplicitVRBigEndian"]"#;
/// What storescu sends in pydicom's CT_small.dcm (Latin-1 text, GE private groups), so
/// that the statements of storescu only differ where a test wants them to.
const CT_SMALL_DATA: &str = r#"character_sets = ["ISO_IR 100"]
private_creators = ["GEMS_IDEN_01", "GEMS_PATI_01", "GEMS_ACQU_01", "GEMS_RELA_01", "GEMS_STDY_01", "GEMS_SERS_01", "GEMS_IMAG_01", "GEMS_IMPS_01", "GEMS_PARM_01"]"#;
const UNCOMPRESSED_UIDS: [&str; 3] = [
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.2",
];

/// A scene with the negotiation peers script; `None` when Python or a tool is missing
/// (and missing peers are allowed).
struct Neg {
    scene: Scene,
    py: PathBuf,
    data: PydicomData,
}

impl Neg {
    fn new(name: &str, tools: &[&str]) -> Option<Neg> {
        let mut all = vec!["dumpcap"];
        all.extend_from_slice(tools);
        if !require(name, &all) {
            return None;
        }
        let (py, data) = require_python(name)?;
        let scene = Scene::new(name);
        Some(Neg { scene, py, data })
    }

    fn path(&self) -> &Path {
        self.scene.path()
    }

    fn py_command(&self, what: &str, spec: &Value) -> std::process::Command {
        self.scene
            .script(&self.py, "negotiation.py", &[what, &spec.to_string()])
    }

    /// Runs the pynetdicom SCU to completion.
    fn scu(&self, spec: Value) -> RunOutput {
        let out = run(
            "negotiation-scu",
            self.py_command("scu", &spec),
            self.path(),
            T,
        );
        assert!(
            out.status.success(),
            "pynetdicom SCU failed:\n{}",
            out.text()
        );
        out
    }

    /// Starts the pynetdicom SCU in the background (for associations it holds open).
    fn scu_background(&self, spec: Value) -> Proc {
        Proc::spawn(
            "negotiation-scu",
            self.py_command("scu", &spec),
            self.path(),
        )
    }

    /// Starts the pynetdicom SCP and waits until it listens.
    fn scp(&self, spec: Value) -> Proc {
        let port = spec["port"].as_u64().unwrap() as u16;
        let mut p = Proc::spawn(
            "negotiation-scp",
            self.py_command("scp", &spec),
            self.path(),
        );
        assert!(
            wait_for_port(port, T, Some(&mut p)),
            "pynetdicom SCP did not listen\n{}",
            p.output()
        );
        p
    }

    /// The conformance findings of `capture` against exactly these statements.
    fn findings<S: AsRef<str>>(&self, capture: &Path, statements: &[S]) -> Vec<Value> {
        let dir = self.path().join("statements");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in statements.iter().enumerate() {
            self.scene.statement(&format!("s{i}.toml"), s.as_ref());
        }
        self.scene.analyze(capture).0
    }

    fn file(&self, name: &str) -> PathBuf {
        self.data.test_files.join(name)
    }

    /// `traffic` to a fresh port (given to it) while dumpcap captures that port; the
    /// capture and the port.
    fn capture(&self, name: &str, traffic: impl FnOnce(u16)) -> (PathBuf, u16) {
        let port = free_port();
        let cap = Capture::start(name, &[port], self.path());
        traffic(port);
        (cap.finish(), port)
    }

    /// [`Neg::capture`] of `traffic` to the pynetdicom SCP of `spec` (its port added).
    fn with_pyscp(&self, name: &str, mut spec: Value, traffic: impl FnOnce(u16)) -> PathBuf {
        self.capture(name, |port| {
            spec["port"] = json!(port);
            let scp = self.scp(spec);
            traffic(port);
            drop(scp);
        })
        .0
    }

    /// storescu `-R` `extra` sends CT_small.dcm to STORESCP on `port`, successfully.
    fn store_ct(&self, port: u16, extra: &[&str]) {
        let mut args = vec!["-R"];
        args.extend_from_slice(extra);
        let out = storescu(self, port, "STORESCU", &args, &[self.file("CT_small.dcm")]);
        assert!(out.status.success(), "{}", out.text());
    }

    /// The pynetdicom SCU of `spec` runs, and its C-ECHO is answered with Success.
    fn scu_echoes(&self, spec: Value) {
        let out = self.scu(spec);
        assert!(out.stdout.contains("echo 0"), "{}", out.text());
    }

    /// `capture` against exactly these statements raises nothing for any of their
    /// devices.
    fn assert_clean<S: AsRef<str>>(&self, capture: &Path, statements: &[S]) {
        let findings = self.findings(capture, statements);
        for s in statements {
            clean(&findings, device_of(s.as_ref()));
        }
    }
}

/// A statement: one AE with `ae` lines, and capabilities `(sop_class, role, extra lines)`
/// in the uncompressed transfer syntaxes. The storescu AE (which sends CT_small.dcm)
/// also claims that file's character set and private creators.
fn statement(device: &str, title: &str, ae: &str, caps: &[(&str, &str, &str)]) -> String {
    let mut s = format!(
        "schema = \"dicomtap-statement/1\"\n[device]\nname = \"{device}\"\n[[ae]]\ntitle = \"{title}\"\n{ae}\n"
    );
    if title == "STORESCU" {
        s.push_str(CT_SMALL_DATA);
        s.push('\n');
    }
    for (sop, role, extra) in caps {
        s.push_str(&format!(
            "[[ae.capability]]\nsop_class = \"{sop}\"\nrole = \"{role}\"\ntransfer_syntaxes = {UNCOMPRESSED}\n{extra}\n"
        ));
    }
    s
}

/// The pynetdicom SCU (PYSCU) and SCP (PYSCP) statements: `initiator = true` and
/// `acceptor = true` followed by the given AE lines, with the given capabilities.
fn py_pair(
    (scu_ae, scu_caps): (&str, &[(&str, &str, &str)]),
    (scp_ae, scp_caps): (&str, &[(&str, &str, &str)]),
) -> [String; 2] {
    [
        statement(
            "PYNETDICOM_SCU",
            "PYSCU",
            &format!("initiator = true\n{scu_ae}"),
            scu_caps,
        ),
        statement(
            "PYNETDICOM_SCP",
            "PYSCP",
            &format!("acceptor = true\n{scp_ae}"),
            scp_caps,
        ),
    ]
}

/// The storescu (DCMTK_STORESCU) and storescp (DCMTK_STORESCP) statements with the given
/// AE lines, each with CT Image Storage in its role.
fn dcmtk_pair(scu_ae: &str, scp_ae: &str) -> [String; 2] {
    [
        statement(
            "DCMTK_STORESCU",
            "STORESCU",
            scu_ae,
            &[("CTImageStorage", "SCU", "")],
        ),
        statement(
            "DCMTK_STORESCP",
            "STORESCP",
            scp_ae,
            &[("CTImageStorage", "SCP", "")],
        ),
    ]
}

/// The one finding of `device`, which must be of `rule`.
fn only(findings: &[Value], device: &str, rule: &str) -> Value {
    let mine: Vec<&Value> = findings.iter().filter(|f| f["device"] == device).collect();
    assert!(
        mine.len() == 1 && mine[0]["rule"] == rule,
        "expected exactly one {rule} finding for {device}, got:\n{}",
        dump(findings)
    );
    let f = mine[0].clone();
    assert!(
        f["evidence"]["association"].is_u64() && f["evidence"]["ts_us"].as_u64() > Some(0),
        "evidence without association or time: {f}"
    );
    f
}

/// The device name of a statement (its `[device]` `name = "..."`).
fn device_of(statement: &str) -> &str {
    statement
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no device name in {statement}"))
}

/// No finding at all for `device`.
fn clean(findings: &[Value], device: &str) {
    let mine: Vec<&Value> = findings.iter().filter(|f| f["device"] == device).collect();
    assert!(
        mine.is_empty(),
        "expected no finding for {device}, got:\n{}",
        dump(findings)
    );
}

fn text<'a>(f: &'a Value, key: &str) -> &'a str {
    f[key].as_str().unwrap_or_default()
}

fn storescu(neg: &Neg, port: u16, calling: &str, extra: &[&str], files: &[PathBuf]) -> RunOutput {
    neg.scene.storescu_within(port, calling, extra, files, T)
}

/// dcmqrscp with AE `QRSCP`: `peer` = `None` accepts any calling AE, `Some(title)` only
/// that title from 127.0.0.1; at most `max` simultaneous associations.
fn dcmqrscp(dir: &Path, name: &str, peer: Option<&str>, max: u32) -> (Proc, u16) {
    let port = free_port();
    let db = dir.join(format!("{name}-db"));
    std::fs::create_dir_all(&db).unwrap();
    let (hosts, peers) = match peer {
        Some(t) => (format!("allowed = ({t}, 127.0.0.1, 11112)\n"), "allowed"),
        None => (String::new(), "ANY"),
    };
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort  = {port}\nMaxPDUSize      = 16384\nMaxAssociations = {max}\n\
             HostTable BEGIN\n{hosts}HostTable END\nVendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nQRSCP {} RW (200, 1024mb) {peers}\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let mut p = Proc::spawn(
        name,
        command(
            "dcmqrscp",
            &["-c", cfg.to_str().unwrap(), "-dhl", &port.to_string()],
        ),
        dir,
    );
    assert!(
        wait_for_port(port, T, Some(&mut p)),
        "dcmqrscp did not listen\n{}",
        p.output()
    );
    (p, port)
}

fn qrscp_statement(ae: &str) -> String {
    statement(
        "DCMTK_DCMQRSCP",
        "QRSCP",
        &format!("acceptor = true\n{ae}"),
        &[("Verification", "SCP", "")],
    )
}

mod access;
mod contexts;
mod extended;
mod roles;
