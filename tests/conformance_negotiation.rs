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

mod support;

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

// -------------------------------------------------------------------------------------
// Presentation contexts

/// storescp run with a profile (--config-file) that accepts CT only refuses MR, which the
/// statement claims: sop-class-claimed-but-refused. The statement of its real profile
/// raises nothing.
#[test]
fn storescp_profile_refuses_a_claimed_sop_class() {
    let Some(neg) = Neg::new("claimed-refused", &["storescp", "storescu"]) else {
        return;
    };
    let cfg = neg.path().join("storescp.cfg");
    std::fs::write(
        &cfg,
        "[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\n\
         TransferSyntax2 = OppositeEndianExplicit\nTransferSyntax3 = LittleEndianImplicit\n\
         [[PresentationContexts]]\n[CTOnly]\nPresentationContext1 = CTImageStorage\\Uncompressed\n\
         [[Profiles]]\n[CTOnly]\nPresentationContexts = CTOnly\n",
    )
    .unwrap();
    let profile = ["--config-file", cfg.to_str().unwrap(), "CTOnly"];
    let (capture, _) = neg
        .scene
        .with_storescp("claimed-refused", &profile, |port| {
            let out = storescu(
                &neg,
                port,
                "STORESCU",
                &["-R"],
                &[neg.file("CT_small.dcm"), neg.file("MR_small.dcm")],
            );
            assert!(
                out.text().contains("MR"),
                "storescu did not try the MR file:\n{}",
                out.text()
            );
        });

    let claims_mr = statement(
        "DCMTK_STORESCP",
        "STORESCP",
        "acceptor = true",
        &[("CTImageStorage", "SCP", ""), ("MRImageStorage", "SCP", "")],
    );
    let findings = neg.findings(&capture, &[&claims_mr]);
    let f = only(&findings, "DCMTK_STORESCP", "sop-class-claimed-but-refused");
    assert!(
        text(&f, "claim").contains("capability MRImageStorage SCP"),
        "{f}"
    );
    assert!(
        text(&f, "observed").contains("(MRImageStorage): abstract-syntax-not-supported"),
        "{f}"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    let real_profile = statement(
        "DCMTK_STORESCP",
        "STORESCP",
        "acceptor = true",
        &[("CTImageStorage", "SCP", "")],
    );
    neg.assert_clean(&capture, &[&real_profile]);
}

/// storescp +xb prefers Explicit VR Big Endian although its statement prefers Explicit
/// VR Little Endian (both proposed in one context with storescu +C):
/// acceptor-preference-ignored. Run with its default preference, nothing.
#[test]
fn storescp_preferring_big_endian_ignores_its_stated_preference() {
    let Some(neg) = Neg::new("preference", &["storescp", "storescu"]) else {
        return;
    };
    let stmt = statement(
        "DCMTK_STORESCP",
        "STORESCP",
        "acceptor = true",
        &[(
            "CTImageStorage",
            "SCP",
            "preferred_transfer_syntaxes = [\"ExplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]",
        )],
    );
    let run_with = |name: &str, scp_args: &[&str]| {
        let (capture, _) = neg
            .scene
            .with_storescp(name, scp_args, |port| neg.store_ct(port, &["+C"]));
        neg.findings(&capture, &[&stmt])
    };

    let findings = run_with("prefer-big", &["+xb"]);
    let f = only(&findings, "DCMTK_STORESCP", "acceptor-preference-ignored");
    assert!(
        text(&f, "claim").contains("[ExplicitVRLittleEndian, ExplicitVRBigEndian]"),
        "{f}"
    );
    assert!(
        text(&f, "observed").starts_with(
            "chose ExplicitVRBigEndian for CTImageStorage although ExplicitVRLittleEndian was proposed"
        ),
        "{f}"
    );

    clean(&run_with("prefer-default", &[]), "DCMTK_STORESCP");
}

const TEN_STORAGE_CLASSES: [&str; 10] = [
    "CTImageStorage",
    "MRImageStorage",
    "SecondaryCaptureImageStorage",
    "UltrasoundImageStorage",
    "ComputedRadiographyImageStorage",
    "NuclearMedicineImageStorage",
    "PositronEmissionTomographyImageStorage",
    "RTImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "XRayAngiographicImageStorage",
];

/// A pynetdicom SCU proposes ten contexts and storescp accepts them all; statements that
/// claim at most eight: too-many-contexts for both, as requestor and as acceptor.
#[test]
fn ten_contexts_proposed_and_accepted_exceed_a_claim_of_eight() {
    let Some(neg) = Neg::new("contexts", &["storescp"]) else {
        return;
    };
    let contexts: Vec<Value> = TEN_STORAGE_CLASSES
        .iter()
        .map(|s| json!([s, UNCOMPRESSED_UIDS]))
        .collect();
    let (capture, _) = neg.scene.with_storescp("contexts", &[], |port| {
        neg.scu(
            json!({"port": port, "called": "STORESCP", "calling": "PYSCU", "contexts": contexts}),
        );
    });

    let stmts = |max: u32| {
        let scu: Vec<(&str, &str, &str)> = TEN_STORAGE_CLASSES
            .iter()
            .map(|s| (*s, "SCU", ""))
            .collect();
        let scp: Vec<(&str, &str, &str)> = TEN_STORAGE_CLASSES
            .iter()
            .map(|s| (*s, "SCP", ""))
            .collect();
        [
            statement(
                "PYNETDICOM_SCU",
                "PYSCU",
                &format!("initiator = true\nmax_presentation_contexts = {max}"),
                &scu,
            ),
            statement(
                "DCMTK_STORESCP",
                "STORESCP",
                &format!("acceptor = true\nmax_presentation_contexts = {max}"),
                &scp,
            ),
        ]
    };
    let findings = neg.findings(&capture, &stmts(8));
    let f = only(&findings, "PYNETDICOM_SCU", "too-many-contexts");
    assert_eq!(text(&f, "claim"), "max_presentation_contexts = 8");
    assert_eq!(text(&f, "observed"), "proposed 10 presentation contexts");
    assert_eq!(f["evidence"]["from"], "requestor");
    let f = only(&findings, "DCMTK_STORESCP", "too-many-contexts");
    assert_eq!(text(&f, "observed"), "accepted 10 presentation contexts");
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(&capture, &stmts(10));
}

// -------------------------------------------------------------------------------------
// Roles and addresses

/// storescu -> storescp against statements that say storescu only accepts and storescp
/// only initiates: association-role-not-claimed for each. The real roles: nothing.
#[test]
fn initiator_and_acceptor_roles_against_the_statement() {
    let Some(neg) = Neg::new("assoc-role", &["storescp", "storescu"]) else {
        return;
    };
    let (capture, _) = neg
        .scene
        .with_storescp("assoc-role", &[], |port| neg.store_ct(port, &[]));

    let findings = neg.findings(
        &capture,
        &dcmtk_pair(
            "initiator = false\nacceptor = true",
            "initiator = true\nacceptor = false",
        ),
    );
    let f = only(&findings, "DCMTK_STORESCU", "association-role-not-claimed");
    assert_eq!(text(&f, "claim"), "initiator = false");
    assert_eq!(text(&f, "observed"), "initiated an association to STORESCP");
    let f = only(&findings, "DCMTK_STORESCP", "association-role-not-claimed");
    assert_eq!(text(&f, "claim"), "acceptor = false");
    assert_eq!(
        text(&f, "observed"),
        "was called by STORESCU as association acceptor"
    );

    neg.assert_clean(
        &capture,
        &dcmtk_pair(
            "initiator = true\nacceptor = false",
            "initiator = false\nacceptor = true",
        ),
    );
}

/// storescu from 127.0.0.1 and storescp on its port, against statements with another
/// host and another port: ae-address-not-claimed. The real address and port: nothing.
#[test]
fn ae_titles_used_from_an_address_and_port_the_statement_does_not_list() {
    let Some(neg) = Neg::new("ae-address", &["storescp", "storescu"]) else {
        return;
    };
    let (capture, port) = neg
        .scene
        .with_storescp("ae-address", &[], |port| neg.store_ct(port, &[]));
    let other = if port == 65535 { port - 1 } else { port + 1 };

    let stmts = |hosts: &str, port: u16| {
        dcmtk_pair(
            &format!("initiator = true\nhosts = [\"{hosts}\"]"),
            &format!("acceptor = true\nhosts = [\"127.0.0.1\"]\nport = {port}"),
        )
    };
    let findings = neg.findings(&capture, &stmts("192.0.2.7", other));
    let f = only(&findings, "DCMTK_STORESCU", "ae-address-not-claimed");
    assert_eq!(text(&f, "claim"), "hosts = [\"192.0.2.7\"]");
    assert_eq!(
        text(&f, "observed"),
        "AE title STORESCU used by a requestor at 127.0.0.1"
    );
    let f = only(&findings, "DCMTK_STORESCP", "ae-address-not-claimed");
    assert_eq!(text(&f, "claim"), format!("port = {other}"));
    assert_eq!(
        text(&f, "observed"),
        format!(
            "AE title STORESCP called on port {port}; if that is where this installation \
             listens, set port = {port} for AE STORESCP in its statement"
        )
    );

    neg.assert_clean(&capture, &stmts("127.0.0.1", port));
}

// -------------------------------------------------------------------------------------
// User information items

/// pynetdicom SCU and SCP with SCP/SCU role selection for CT (the SCU asks for both
/// roles, the SCP grants both): statements that claim only the SCU role in role
/// selection report role-selection-differs for each side; the real selection, nothing.
#[test]
fn role_selection_negotiated_differs_from_the_statement() {
    let Some(neg) = Neg::new("role-selection", &[]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "PYSCP",
        "contexts": ["Verification", "CTImageStorage"],
        "roles": [["CTImageStorage", true, true]],
    });
    let capture = neg.with_pyscp("role-selection", scp_spec, |port| {
        neg.scu_echoes(json!({
            "port": port, "called": "PYSCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS], ["CTImageStorage", UNCOMPRESSED_UIDS]],
            "roles": [["CTImageStorage", true, true]],
        }));
    });

    let stmts = |scp_role: bool| {
        let rs = format!("role_selection = {{ scu = true, scp = {scp_role} }}");
        py_pair(
            (
                "",
                &[
                    ("Verification", "SCU", ""),
                    ("CTImageStorage", "SCU", &rs),
                    ("CTImageStorage", "SCP", ""),
                ],
            ),
            (
                "",
                &[
                    ("Verification", "SCP", ""),
                    ("CTImageStorage", "SCP", &rs),
                    ("CTImageStorage", "SCU", ""),
                ],
            ),
        )
    };
    let findings = neg.findings(&capture, &stmts(false));
    let f = only(&findings, "PYNETDICOM_SCU", "role-selection-differs");
    assert_eq!(
        text(&f, "claim"),
        "role_selection for CTImageStorage = { scu = true, scp = false }"
    );
    assert_eq!(
        text(&f, "observed"),
        "proposed role selection scu = true, scp = true for CTImageStorage"
    );
    let f = only(&findings, "PYNETDICOM_SCP", "role-selection-differs");
    assert_eq!(
        text(&f, "observed"),
        "accepted role selection scu = true, scp = true for CTImageStorage"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(&capture, &stmts(true));
}

/// getscu proposes C-GET with SCP/SCU role selection (SCP role) for every storage SOP
/// class it can receive. A statement whose CT capability claims role selection with
/// both roles reports role-selection-differs for CT Image Storage; one claiming the SCP
/// role only, nothing for CT. (getscu proposes about 120 storage classes; the statement
/// here describes the two the test is about, so only CT's findings are looked at.)
#[test]
fn getscu_role_selection_differs_from_the_statement() {
    let Some(neg) = Neg::new("getscu-roles", &["dcmqrscp", "getscu"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-get", None, 16);
    let cap = Capture::start("getscu-roles", &[port], neg.path());
    let out = run(
        "getscu",
        command(
            "getscu",
            &[
                "-aet",
                "GETSCU",
                "-aec",
                "QRSCP",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                "StudyInstanceUID=1.2.3.4",
                "127.0.0.1",
                &port.to_string(),
            ],
        ),
        neg.path(),
        T,
    );
    assert!(out.status.success(), "{}", out.text());
    let capture = cap.finish();
    drop(qr);

    let for_ct = |scu: bool| {
        let stmt = statement(
            "DCMTK_GETSCU",
            "GETSCU",
            "initiator = true",
            &[
                ("PatientRootQueryRetrieveInformationModelGet", "SCU", ""),
                (
                    "CTImageStorage",
                    "SCP",
                    &format!("role_selection = {{ scu = {scu}, scp = true }}"),
                ),
            ],
        );
        let findings = neg.findings(&capture, &[&stmt]);
        let ct: Vec<Value> = with(&findings, "role-selection-differs", "DCMTK_GETSCU")
            .into_iter()
            .filter(|f| text(f, "observed").ends_with(" for CTImageStorage"))
            .collect();
        // The other storage classes getscu proposes are not in this statement.
        assert!(
            with(&findings, "role-selection-differs", "DCMTK_GETSCU").len() > 50,
            "{}",
            dump(&findings)
        );
        ct
    };
    let ct = for_ct(true);
    assert_eq!(ct.len(), 1, "{}", dump(&ct));
    assert_eq!(
        text(&ct[0], "claim"),
        "role_selection for CTImageStorage = { scu = true, scp = true }"
    );
    assert_eq!(
        text(&ct[0], "observed"),
        "proposed role selection scu = false, scp = true for CTImageStorage"
    );
    assert_eq!(ct[0]["evidence"]["from"], "requestor");

    let ct = for_ct(false);
    assert!(ct.is_empty(), "{}", dump(&ct));
}

/// SOP class extended negotiation (0x56) for CT storage: the SCU asks for element
/// coercion 2, the SCP answers level of support 3; statements claiming coercion 0 and
/// level 2 report extended-negotiation-differs for each; the real values, nothing.
#[test]
fn storage_extended_negotiation_differs_from_the_statement() {
    let Some(neg) = Neg::new("ext-neg", &[]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "PYSCP",
        "contexts": ["Verification", "CTImageStorage"],
        "ext_reply": {"CTImageStorage": "030000000100"},
    });
    let capture = neg.with_pyscp("ext-neg", scp_spec, |port| {
        neg.scu_echoes(json!({
            "port": port, "called": "PYSCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS], ["CTImageStorage", UNCOMPRESSED_UIDS]],
            "ext": [["CTImageStorage", "020000000200"]],
        }));
    });

    let stmts = |scu_ext: &str, scp_ext: &str| {
        let storage = |ext: &str| format!("extended_negotiation = {{ storage = {{ {ext} }} }}");
        let (scu_ct, scp_ct) = (storage(scu_ext), storage(scp_ext));
        py_pair(
            (
                "",
                &[
                    ("Verification", "SCU", ""),
                    ("CTImageStorage", "SCU", &scu_ct),
                ],
            ),
            (
                "",
                &[
                    ("Verification", "SCP", ""),
                    ("CTImageStorage", "SCP", &scp_ct),
                ],
            ),
        )
    };
    let findings = neg.findings(
        &capture,
        &stmts(
            "level_of_support = 2, element_coercion = 0",
            "level_of_support = 2, element_coercion = 1",
        ),
    );
    let f = only(&findings, "PYNETDICOM_SCU", "extended-negotiation-differs");
    assert!(
        text(&f, "claim").starts_with("extended_negotiation for CTImageStorage"),
        "{f}"
    );
    assert_eq!(
        text(&f, "observed"),
        "proposed element_coercion 2 (claimed 0) for CTImageStorage"
    );
    let f = only(&findings, "PYNETDICOM_SCP", "extended-negotiation-differs");
    assert_eq!(
        text(&f, "observed"),
        "answered level_of_support 3 (claimed 2) for CTImageStorage"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(
        &capture,
        &stmts(
            "level_of_support = 2, digital_signature = 0, element_coercion = 2",
            "level_of_support = 3, digital_signature = 0, element_coercion = 1",
        ),
    );
}

/// SOP class common extended negotiation (0x57): a pynetdicom SCU sends, for Enhanced
/// CT, the Storage Service Class and CT Image Storage as related general SOP class, to
/// storescp. Claims that differ (another related class; none at all) report
/// extended-negotiation-differs; the claim of what it sends, nothing.
#[test]
fn common_extended_negotiation_differs_from_the_statement() {
    let Some(neg) = Neg::new("common-ext-neg", &["storescp"]) else {
        return;
    };
    let (capture, _) = neg.scene.with_storescp("common-ext-neg", &[], |port| {
        neg.scu(json!({
            "port": port, "called": "STORESCP", "calling": "PYSCU",
            "contexts": [["EnhancedCTImageStorage", UNCOMPRESSED_UIDS]],
            "common": [["EnhancedCTImageStorage", "1.2.840.10008.4.2", ["CTImageStorage"]]],
        }));
    });

    let scu = |extra: &str| {
        statement(
            "PYNETDICOM_SCU",
            "PYSCU",
            "initiator = true",
            &[("EnhancedCTImageStorage", "SCU", extra)],
        )
    };
    let findings = neg.findings(
        &capture,
        &[&scu(
            "common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", related_general_sop_classes = [\"CTImageStorage\", \"MRImageStorage\"] }",
        )],
    );
    let f = only(&findings, "PYNETDICOM_SCU", "extended-negotiation-differs");
    assert_eq!(
        text(&f, "claim"),
        "common_extended_negotiation for EnhancedCTImageStorage = { service_class = 1.2.840.10008.4.2, related_general_sop_classes = [CTImageStorage, MRImageStorage] }"
    );
    assert_eq!(
        text(&f, "observed"),
        "proposed common extended negotiation for EnhancedCTImageStorage with claimed related general SOP classes [MRImageStorage] not sent"
    );
    assert_eq!(f["evidence"]["from"], "requestor");

    let findings = neg.findings(&capture, &[&scu("")]);
    let f = only(&findings, "PYNETDICOM_SCU", "extended-negotiation-differs");
    assert_eq!(
        text(&f, "observed"),
        "proposed common extended negotiation for EnhancedCTImageStorage: service class 1.2.840.10008.4.2, related general SOP classes [CTImageStorage]"
    );

    let findings = neg.findings(
        &capture,
        &[&scu(
            "common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", related_general_sop_classes = [\"CTImageStorage\"] }",
        )],
    );
    clean(&findings, "PYNETDICOM_SCU");
    // `statement infer` writes the item it saw, and that statement raises nothing.
    let inferred = run_ok(
        "dicomtap-infer",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "statement",
                "infer",
                "--ae",
                "PYSCU",
                "--device",
                "PYNETDICOM_SCU",
                capture.to_str().unwrap(),
            ],
        ),
        neg.path(),
        T,
    )
    .stdout;
    assert!(
        inferred.contains(
            "common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", related_general_sop_classes = [\"CTImageStorage\"] }"
        ),
        "{inferred}"
    );
    neg.assert_clean(&capture, &[&inferred]);
}

/// The pynetdicom SCU proposes an asynchronous operations window of 5/5 and the
/// pynetdicom SCP answers 1/1: a statement without async_window for the SCU, and one
/// claiming 4/4 for the SCP, report async-window-differs; the real windows, nothing.
#[test]
fn asynchronous_operations_window_differs_from_the_statement() {
    let Some(neg) = Neg::new("async-window", &[]) else {
        return;
    };
    let scp_spec = json!({"ae": "PYSCP", "contexts": ["Verification"], "async": true});
    let capture = neg.with_pyscp("async-window", scp_spec, |port| {
        neg.scu_echoes(json!({
            "port": port, "called": "PYSCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS]],
            "async": [5, 5],
        }));
    });

    let stmts = |scu_ae: &str, scp_ae: &str| {
        py_pair(
            (scu_ae, &[("Verification", "SCU", "")]),
            (scp_ae, &[("Verification", "SCP", "")]),
        )
    };
    let findings = neg.findings(
        &capture,
        &stmts("", "async_window = { invoked = 4, performed = 4 }"),
    );
    let f = only(&findings, "PYNETDICOM_SCU", "async-window-differs");
    assert_eq!(text(&f, "claim"), "async_window: not negotiated");
    assert_eq!(text(&f, "observed"), "proposed invoked = 5, performed = 5");
    let f = only(&findings, "PYNETDICOM_SCP", "async-window-differs");
    assert_eq!(
        text(&f, "claim"),
        "async_window = { invoked = 4, performed = 4 }"
    );
    assert_eq!(
        text(&f, "observed"),
        "answered invoked = 1, performed = 1 to a proposal of invoked = 5, performed = 5"
    );

    neg.assert_clean(
        &capture,
        &stmts(
            "async_window = { invoked = 5, performed = 5 }",
            "async_window = { invoked = 1, performed = 1 }",
        ),
    );
}

/// storescu --user/--password (user identity type 2) to a pynetdicom SCP, then a
/// pynetdicom SCU with a JWT (type 5, positive response requested) that the SCP grants
/// and answers: a statement listing only "username" for storescu, and none for the SCP,
/// report user-identity-differs for each; the real types, nothing.
///
/// (pynetdicom answers no User Identity response for types 1 and 2 even when a positive
/// response is requested, which storescu --pos-response then refuses; hence the JWT.)
#[test]
fn user_identity_sent_and_answered_differs_from_the_statement() {
    let Some(neg) = Neg::new("user-identity", &["storescu"]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "STORESCP", "contexts": ["Verification", "CTImageStorage"], "user_id": true,
    });
    let capture = neg.with_pyscp("user-identity", scp_spec, |port| {
        neg.store_ct(port, &["--user", "alice", "--password", "secret"]);
        neg.scu_echoes(json!({
            "port": port, "called": "STORESCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS]],
            "user": [5, "eyJhbGciOiJub25lIn0.e30.", "", true],
        }));
    });

    let stmts = |scu_types: &str, scp_types: &str| {
        [
            statement(
                "DCMTK_STORESCU",
                "STORESCU",
                &format!("initiator = true\n{scu_types}"),
                &[("CTImageStorage", "SCU", "")],
            ),
            statement(
                "PYNETDICOM_SCU",
                "PYSCU",
                "initiator = true\nuser_identity = [\"jwt\"]",
                &[("Verification", "SCU", "")],
            ),
            statement(
                "PYNETDICOM_SCP",
                "STORESCP",
                &format!("acceptor = true\n{scp_types}"),
                &[("Verification", "SCP", ""), ("CTImageStorage", "SCP", "")],
            ),
        ]
    };
    let findings = neg.findings(&capture, &stmts("user_identity = [\"username\"]", ""));
    let f = only(&findings, "DCMTK_STORESCU", "user-identity-differs");
    assert_eq!(text(&f, "claim"), "user_identity = [username]");
    assert_eq!(
        text(&f, "observed"),
        "sent user identity of type 2 (username_passcode)"
    );
    let f = only(&findings, "PYNETDICOM_SCP", "user-identity-differs");
    assert_eq!(text(&f, "claim"), "user_identity: none");
    assert_eq!(text(&f, "observed"), "sent a user identity server response");
    clean(&findings, "PYNETDICOM_SCU");
    // The password is never in a finding.
    assert!(!findings.iter().any(|f| f.to_string().contains("secret")));

    neg.assert_clean(
        &capture,
        &stmts(
            "user_identity = [\"username_passcode\"]",
            "user_identity = [\"username_passcode\", \"jwt\"]",
        ),
    );
}

/// storescu --user/--password --pos-response to a pynetdicom SCP that grants the
/// identity: pynetdicom accepts the association without the User Identity response
/// (it answers only Kerberos, SAML and JWT), and storescu gives up. A statement that
/// says the SCP handles username_passcode reports user-identity-differs; one listing
/// the type it does answer (jwt), nothing.
#[test]
fn acceptor_that_does_not_answer_a_requested_positive_response() {
    let Some(neg) = Neg::new("user-identity-no-response", &["storescu"]) else {
        return;
    };
    let scp_spec = json!({"ae": "STORESCP", "contexts": ["CTImageStorage"], "user_id": true});
    let capture = neg.with_pyscp("user-identity-no-response", scp_spec, |port| {
        let out = storescu(
            &neg,
            port,
            "STORESCU",
            &[
                "-R",
                "--user",
                "alice",
                "--password",
                "secret",
                "--pos-response",
            ],
            &[neg.file("CT_small.dcm")],
        );
        assert!(
            !out.status.success()
                && out
                    .stderr
                    .contains("Positive response requested but none received"),
            "{}",
            out.text()
        );
    });

    let stmts = |scp_types: &str| {
        [
            statement(
                "DCMTK_STORESCU",
                "STORESCU",
                "initiator = true\nuser_identity = [\"username_passcode\"]",
                &[("CTImageStorage", "SCU", "")],
            ),
            statement(
                "PYNETDICOM_SCP",
                "STORESCP",
                &format!("acceptor = true\nuser_identity = {scp_types}"),
                &[("CTImageStorage", "SCP", "")],
            ),
        ]
    };
    let findings = neg.findings(&capture, &stmts(r#"["username_passcode", "jwt"]"#));
    let f = only(&findings, "PYNETDICOM_SCP", "user-identity-differs");
    assert_eq!(
        text(&f, "claim"),
        "user_identity = [username_passcode, jwt]"
    );
    assert_eq!(
        text(&f, "observed"),
        "accepted user identity of type 2 (username_passcode) with a positive response requested, without a response"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");
    clean(&findings, "DCMTK_STORESCU");

    neg.assert_clean(&capture, &stmts(r#"["jwt"]"#));
}

// -------------------------------------------------------------------------------------
// Access and association limits (dcmqrscp)

/// dcmqrscp whose AETable admits only ALLOWED: it rejects INTRUDER (calling AE not
/// recognized) and the called title OTHERAE it does not serve. A statement that allows
/// INTRUDER, and names OTHERAE as one of its AEs, reports
/// association-rejected-for-allowed-ae for both; the statement of its real access list,
/// nothing (and no calling-ae-not-allowed-accepted for the accepted ALLOWED).
#[test]
fn dcmqrscp_rejects_a_calling_ae_its_statement_allows() {
    let Some(neg) = Neg::new("rejected-allowed", &["dcmqrscp", "echoscu"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-restricted", Some("ALLOWED"), 16);
    let cap = Capture::start("rejected-allowed", &[port], neg.path());
    let ok = echoscu(neg.path(), port, "ALLOWED", "QRSCP");
    assert!(
        ok.status.success(),
        "ALLOWED was refused:\n{}\n{}",
        ok.text(),
        qr.output()
    );
    let refused = echoscu(neg.path(), port, "INTRUDER", "QRSCP");
    assert!(
        !refused.status.success(),
        "INTRUDER was accepted:\n{}",
        refused.text()
    );
    let wrong_called = echoscu(neg.path(), port, "ALLOWED", "OTHERAE");
    assert!(!wrong_called.status.success(), "{}", wrong_called.text());
    let capture = cap.finish();
    drop(qr);

    let mut allows_intruder =
        qrscp_statement("accept_calling_ae_titles = [\"ALLOWED\", \"INTRUDER\"]");
    allows_intruder.push_str("[[ae]]\ntitle = \"OTHERAE\"\nacceptor = true\n");
    let findings = neg.findings(&capture, &[&allows_intruder]);
    let rejected = with(
        &findings,
        "association-rejected-for-allowed-ae",
        "DCMTK_DCMQRSCP",
    );
    assert_eq!(rejected.len(), 2, "{}", dump(&findings));
    assert_eq!(findings.len(), 2, "{}", dump(&findings));
    let calling = rejected
        .iter()
        .find(|f| f["ae"] == "QRSCP")
        .expect("QRSCP finding");
    assert!(
        text(calling, "claim").contains("accept_calling_ae_titles = [\"ALLOWED\", \"INTRUDER\"]"),
        "{calling}"
    );
    // dcmqrscp refuses a title missing from its AETable with reason 7 (called AE title
    // not recognized), not 3.
    assert!(
        text(calling, "observed").starts_with("rejected called AE QRSCP (calling AE INTRUDER)"),
        "{calling}"
    );
    let called = rejected
        .iter()
        .find(|f| f["ae"] == "OTHERAE")
        .expect("OTHERAE finding");
    assert!(
        text(called, "observed").starts_with("rejected called AE OTHERAE"),
        "{called}"
    );

    let real = qrscp_statement("accept_calling_ae_titles = [\"ALLOWED\"]");
    neg.assert_clean(&capture, &[&real]);
}

/// A pynetdicom SCP that requires the calling AE title ALLOWED rejects INTRUDER with
/// reason 3 (calling AE title not recognized): a statement that allows INTRUDER reports
/// association-rejected-for-allowed-ae; its real allow-list, nothing.
#[test]
fn pynetdicom_rejects_a_calling_ae_its_statement_allows() {
    let Some(neg) = Neg::new("rejected-allowed-py", &[]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "PYSCP", "contexts": ["Verification"], "require_calling": ["ALLOWED"],
    });
    let capture = neg.with_pyscp("rejected-allowed-py", scp_spec, |port| {
        for (calling, outcome) in [("ALLOWED", "established 0"), ("INTRUDER", "rejected 0")] {
            let out = neg.scu(json!({
                "port": port, "called": "PYSCP", "calling": calling,
                "contexts": [["Verification", UNCOMPRESSED_UIDS]],
            }));
            assert!(out.stdout.contains(outcome), "{calling}: {}", out.text());
        }
    });

    let stmt = |allowed: &str| {
        statement(
            "PYNETDICOM_SCP",
            "PYSCP",
            &format!("acceptor = true\naccept_calling_ae_titles = {allowed}"),
            &[("Verification", "SCP", "")],
        )
    };
    let findings = neg.findings(&capture, &[&stmt(r#"["ALLOWED", "INTRUDER"]"#)]);
    let f = only(
        &findings,
        "PYNETDICOM_SCP",
        "association-rejected-for-allowed-ae",
    );
    assert_eq!(
        text(&f, "claim"),
        "accept_calling_ae_titles = [\"ALLOWED\", \"INTRUDER\"]"
    );
    assert!(
        text(&f, "observed").starts_with("rejected calling AE INTRUDER"),
        "{f}"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(&capture, &[&stmt(r#"["ALLOWED"]"#)]);
}

/// dcmqrscp with AETable peers ANY accepts INTRUDER although the statement allows only
/// ALLOWED: calling-ae-not-allowed-accepted. dcmqrscp configured as its statement says
/// (only ALLOWED) raises nothing for the same traffic.
#[test]
fn dcmqrscp_accepts_a_calling_ae_its_statement_does_not_allow() {
    let Some(neg) = Neg::new("not-allowed-accepted", &["dcmqrscp", "echoscu"]) else {
        return;
    };
    let stmt = qrscp_statement("accept_calling_ae_titles = [\"ALLOWED\"]");
    let run_against = |name: &str, peer: Option<&str>| {
        let (qr, port) = dcmqrscp(neg.path(), name, peer, 16);
        let cap = Capture::start(name, &[port], neg.path());
        let ok = echoscu(neg.path(), port, "ALLOWED", "QRSCP");
        assert!(ok.status.success(), "{}", ok.text());
        let intruder = echoscu(neg.path(), port, "INTRUDER", "QRSCP");
        assert_eq!(
            intruder.status.success(),
            peer.is_none(),
            "{}",
            intruder.text()
        );
        let capture = cap.finish();
        drop(qr);
        neg.findings(&capture, &[&stmt])
    };

    let findings = run_against("dcmqrscp-any", None);
    let f = only(
        &findings,
        "DCMTK_DCMQRSCP",
        "calling-ae-not-allowed-accepted",
    );
    assert_eq!(
        text(&f, "claim"),
        "accept_calling_ae_titles = [\"ALLOWED\"]"
    );
    assert_eq!(
        text(&f, "observed"),
        "accepted an association from calling AE INTRUDER"
    );
    assert_eq!(f["severity"], "error");

    clean(
        &run_against("dcmqrscp-listed", Some("ALLOWED")),
        "DCMTK_DCMQRSCP",
    );
}

/// dcmqrscp with MaxAssociations = 1 rejects a second association (local limit
/// exceeded) while a pynetdicom SCU holds the first: a statement claiming 4 reports
/// local-limit-below-claim; one claiming its real limit of 1, nothing.
#[test]
fn dcmqrscp_rejects_for_local_limit_below_its_claimed_maximum() {
    let Some(neg) = Neg::new("local-limit", &["dcmqrscp", "echoscu"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-one", None, 1);
    let cap = Capture::start("local-limit", &[port], neg.path());
    let mut holder = neg.scu_background(json!({
        "port": port, "called": "QRSCP", "calling": "HOLDER",
        "contexts": [["Verification", UNCOMPRESSED_UIDS]], "hold": 4,
    }));
    assert!(
        wait_until(T, || holder.stdout().contains("held")),
        "{}",
        holder.output()
    );
    assert!(
        holder.stdout().contains("established 0"),
        "{}",
        holder.output()
    );
    let second = echoscu(neg.path(), port, "SECOND", "QRSCP");
    assert!(
        !second.status.success(),
        "second association accepted:\n{}",
        second.text()
    );
    assert!(holder.wait_timeout(T).is_some(), "{}", holder.output());
    let capture = cap.finish();
    drop(qr);

    let findings = neg.findings(
        &capture,
        &[&qrscp_statement("max_associations = { acceptor = 4 }")],
    );
    let f = only(&findings, "DCMTK_DCMQRSCP", "local-limit-below-claim");
    assert_eq!(text(&f, "claim"), "max_associations.acceptor = 4");
    assert_eq!(
        text(&f, "observed"),
        "rejected with local-limit-exceeded while 1 association(s) were open to it in the traffic seen"
    );

    neg.assert_clean(
        &capture,
        &[&qrscp_statement("max_associations = { acceptor = 1 }")],
    );
}

/// A pynetdicom SCU holds three associations to dcmqrscp at once: statements claiming
/// two (initiator and acceptor) report max-associations-exceeded for each; claims of
/// three, nothing.
#[test]
fn three_simultaneous_associations_exceed_a_claim_of_two() {
    let Some(neg) = Neg::new("max-assoc", &["dcmqrscp"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-many", None, 16);
    let cap = Capture::start("max-assoc", &[port], neg.path());
    let out = neg.scu(json!({
        "port": port, "called": "QRSCP", "calling": "PYSCU",
        "contexts": [["Verification", UNCOMPRESSED_UIDS]], "count": 3, "hold": 1,
    }));
    assert!(out.stdout.contains("established 2"), "{}", out.text());
    let capture = cap.finish();
    drop(qr);

    let stmts = |n: u32| {
        [
            statement(
                "PYNETDICOM_SCU",
                "PYSCU",
                &format!("initiator = true\nmax_associations = {{ initiator = {n} }}"),
                &[("Verification", "SCU", "")],
            ),
            qrscp_statement(&format!("max_associations = {{ acceptor = {n} }}")),
        ]
    };
    let findings = neg.findings(&capture, &stmts(2));
    let f = only(&findings, "PYNETDICOM_SCU", "max-associations-exceeded");
    assert_eq!(text(&f, "claim"), "max_associations.initiator = 2");
    assert_eq!(
        text(&f, "observed"),
        "3 simultaneous associations initiated"
    );
    let f = only(&findings, "DCMTK_DCMQRSCP", "max-associations-exceeded");
    assert_eq!(text(&f, "claim"), "max_associations.acceptor = 2");
    assert_eq!(text(&f, "observed"), "3 simultaneous associations accepted");

    neg.assert_clean(&capture, &stmts(3));
}

// -------------------------------------------------------------------------------------
// TLS

/// storescu -> storescp in plain DICOM against statements that require TLS:
/// tls-claimed-plaintext-seen for both. The same peers with +tls (a throwaway
/// certificate) against the same statements: nothing.
#[test]
fn plain_dicom_to_and_from_devices_that_require_tls() {
    let Some(neg) = Neg::new("tls-plain", &["storescp", "storescu", "openssl"]) else {
        return;
    };
    let dir = neg.path();
    // A throwaway PKI: both sides use the server certificate (it is also a client
    // certificate) and trust its CA.
    let pki = Pki::new(dir);
    let tls: Vec<String> = vec![
        "+tls".into(),
        pki.path("leaf.key"),
        pki.path("server.pem"),
        "+cf".into(),
        pki.path("ca.pem"),
    ];
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let [scu, scp] = dcmtk_pair(
        "initiator = true\ntls = { required = true }",
        "acceptor = true\ntls = { required = true }",
    );
    let run_with = |name: &str, args: &[&str]| {
        let (capture, port) = neg
            .scene
            .with_storescp(name, args, |port| neg.store_ct(port, args));
        (neg.findings(&capture, &[&scu, &scp]), capture, port)
    };

    let (findings, _, _) = run_with("tls-plain", &[]);
    for device in ["DCMTK_STORESCU", "DCMTK_STORESCP"] {
        let f = only(&findings, device, "tls-claimed-plaintext-seen");
        assert_eq!(text(&f, "claim"), "tls.required = true");
        assert_eq!(
            text(&f, "observed"),
            "plain DICOM A-ASSOCIATE-RQ STORESCU -> STORESCP (not TLS)"
        );
        assert_eq!(f["severity"], "error");
    }

    // storescu succeeded over TLS (asserted in run_with); nothing plain was seen.
    let (findings, capture, port) = run_with("tls-real", &tls);
    assert!(findings.is_empty(), "{}", dump(&findings));
    // The analyzer saw the TLS connection and recognised it as TLS (told the port).
    let sessions = run_ok(
        "dicomtap-analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "analyze",
                "--json",
                "--port",
                &port.to_string(),
                capture.to_str().unwrap(),
            ],
        ),
        neg.path(),
        T,
    )
    .stdout;
    let encrypted: Vec<Value> = sessions
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["session"]["encrypted"].is_string())
        .collect();
    assert_eq!(encrypted.len(), 1, "{sessions}");
}
