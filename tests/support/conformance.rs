//! The scene of a conformance test: a temporary directory with a `statements/` folder,
//! the pynetdicom peer scripts, DCMTK peers started in it, and `dicomtap analyze
//! --statements` run over a capture, returning the findings as JSON values.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Proc, TempDir, command, run, run_ok, temp_dir, wait_for_port};

const PEERS_PY: &str = include_str!("../conformance_support/peers.py");

/// The pynetdicom scripts of tests/conformance_support/, written into every scene:
/// `common.py` holds what the others share and is imported from beside them.
const SCRIPTS: [(&str, &str); 5] = [
    ("peers.py", PEERS_PY),
    (
        "common.py",
        include_str!("../conformance_support/common.py"),
    ),
    ("data.py", include_str!("../conformance_support/data.py")),
    (
        "negotiation.py",
        include_str!("../conformance_support/negotiation.py"),
    ),
    (
        "bundled.py",
        include_str!("../conformance_support/bundled.py"),
    ),
];

/// A test's temporary directory with its statements.
pub struct Scene {
    dir: TempDir,
}

impl Scene {
    pub fn new(name: &str) -> Scene {
        let dir = temp_dir(&format!("conf-{name}"));
        std::fs::create_dir_all(dir.path().join("statements")).unwrap();
        std::fs::create_dir_all(dir.path().join("received")).unwrap();
        for (file, text) in SCRIPTS {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        Scene { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn statement(&self, file: &str, text: &str) {
        std::fs::write(self.path().join("statements").join(file), text).unwrap();
    }

    pub fn storescp(&self, port: u16, extra: &[&str]) -> Proc {
        let received = self.path().join("received");
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend([
            "-aet".into(),
            "STORESCP".into(),
            "-od".into(),
            received.display().to_string(),
            port.to_string(),
        ]);
        let mut p = Proc::spawn(
            &format!("storescp-{port}"),
            command("storescp", &args),
            self.path(),
        );
        assert!(
            wait_for_port(port, Duration::from_secs(10), Some(&mut p)),
            "storescp did not start\n{}",
            p.output()
        );
        p
    }

    /// storescu `-R` `extra` from `calling` to STORESCP on `port` with `files`; must
    /// succeed within 30 s.
    pub fn storescu(&self, port: u16, calling: &str, extra: &[&str], files: &[PathBuf]) {
        let mut args = vec!["-R"];
        args.extend_from_slice(extra);
        let out = self.storescu_within(port, calling, &args, files, Duration::from_secs(30));
        assert!(out.status.success(), "storescu failed:\n{}", out.text());
    }

    /// storescu `extra` from `calling` to STORESCP on `port` with `files`, run to its end
    /// (at most `timeout`) whatever its outcome.
    pub fn storescu_within(
        &self,
        port: u16,
        calling: &str,
        extra: &[&str],
        files: &[PathBuf],
        timeout: Duration,
    ) -> super::RunOutput {
        let mut options = vec!["-aet", calling, "-aec", "STORESCP"];
        options.extend_from_slice(extra);
        let cmd = super::peers::storescu_command(&options, port, files);
        run("storescu", cmd, self.path(), timeout)
    }

    pub fn python(&self, py: &Path, args: &[String]) -> std::process::Command {
        let mut all = vec![self.path().join("peers.py").display().to_string()];
        all.extend(args.iter().cloned());
        command(py.to_str().unwrap(), &all)
    }

    /// `python SCRIPT ARGS...` (one of the scripts in tests/conformance_support/) in the
    /// scene's directory.
    pub fn script(&self, py: &Path, script: &str, args: &[&str]) -> std::process::Command {
        let mut all = vec![self.path().join(script).display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        command(py.to_str().unwrap(), &all)
    }

    /// A script's server peer, started and listening on `port` (bounded wait).
    pub fn script_peer(
        &self,
        py: &Path,
        script: &str,
        name: &str,
        port: u16,
        args: &[&str],
    ) -> Proc {
        let mut p = Proc::spawn(name, self.script(py, script, args), self.path());
        assert!(
            wait_for_port(port, Duration::from_secs(20), Some(&mut p)),
            "{name} did not start\n{}",
            p.output()
        );
        p
    }

    /// A script run as a client to completion (bounded, must succeed): its standard
    /// output.
    pub fn script_run(&self, py: &Path, script: &str, name: &str, args: &[&str]) -> String {
        run_ok(
            name,
            self.script(py, script, args),
            self.path(),
            Duration::from_secs(60),
        )
        .stdout
    }

    /// Runs `traffic` while dumpcap captures `ports` on loopback; the capture file.
    pub fn capture(&self, name: &str, ports: &[u16], traffic: impl FnOnce()) -> PathBuf {
        let cap = super::Capture::start(name, ports, self.path());
        traffic();
        cap.finish()
    }

    /// `traffic` to storescp (started with `args`) on a fresh port, which it is given,
    /// while dumpcap captures that port; the capture and the port.
    pub fn with_storescp(
        &self,
        name: &str,
        args: &[&str],
        traffic: impl FnOnce(u16),
    ) -> (PathBuf, u16) {
        let port = super::free_port();
        let capture = self.capture(name, &[port], || {
            let scp = self.storescp(port, args);
            traffic(port);
            drop(scp);
        });
        (capture, port)
    }

    /// Writes the statement `file` and analyzes `capture` against the statements.
    pub fn analyze_with(
        &self,
        file: &str,
        text: &str,
        capture: &Path,
    ) -> (Vec<Value>, i32, String) {
        self.statement(file, text);
        self.analyze(capture)
    }

    /// With the statement `file`, `capture` raises no finding at all and `--fail-on
    /// warning` passes.
    pub fn assert_conforms(&self, file: &str, text: &str, capture: &Path) {
        let (findings, code, _) = self.analyze_with(file, text, capture);
        assert_no_findings(&findings, code);
    }

    /// `dicomtap analyze --json --statements DIR --junit FILE --fail-on warning CAPTURE`:
    /// the conformance findings, the exit code and the JUnit XML.
    pub fn analyze(&self, capture: &Path) -> (Vec<Value>, i32, String) {
        let junit = self.path().join("junit.xml");
        let args = [
            "analyze".to_string(),
            "--json".into(),
            "--statements".into(),
            self.path().join("statements").display().to_string(),
            "--junit".into(),
            junit.display().to_string(),
            "--fail-on".into(),
            "warning".into(),
            capture.display().to_string(),
        ];
        let out = run(
            "dicomtap-analyze",
            command(env!("CARGO_BIN_EXE_dicomtap"), &args),
            self.path(),
            Duration::from_secs(60),
        );
        let findings: Vec<Value> = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "conformance_finding")
            .collect();
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 1, "analyze failed:\n{}", out.text());
        let xml = std::fs::read_to_string(&junit).unwrap_or_default();
        (findings, code, xml)
    }
}

pub fn with(findings: &[Value], rule: &str, device: &str) -> Vec<Value> {
    findings
        .iter()
        .filter(|f| f["rule"] == rule && f["device"] == device)
        .cloned()
        .collect()
}

pub fn dump(findings: &[Value]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} | {} | {}",
                f["severity"], f["rule"], f["device"], f["claim"], f["observed"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bundled statements (statements/) against the real peers they describe: default
/// options, ordinary traffic, no finding.
pub fn bundled(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("statements")
            .join(name),
    )
    .unwrap()
}

/// The one finding of `rule`, for `device`, being the only finding at all.
pub fn sole(findings: &[Value], rule: &str, device: &str) -> Value {
    let f = with(findings, rule, device);
    assert_eq!(f.len(), 1, "{}", dump(findings));
    assert_eq!(findings.len(), 1, "{}", dump(findings));
    f[0].clone()
}

/// No finding at all, and `--fail-on warning` passed.
pub fn assert_no_findings(findings: &[Value], code: i32) {
    assert!(findings.is_empty(), "{}", dump(findings));
    assert_eq!(code, 0);
}

/// A scene for a test that needs the peers `tools` and pynetdicom with pydicom's sample
/// files; `None` (the test returns) when one is missing and allowed to be.
pub fn conformance_scene(
    name: &str,
    tools: &[&str],
) -> Option<(Scene, PathBuf, super::PydicomData)> {
    if !super::require("conformance", tools) {
        return None;
    }
    let (py, data) = super::require_python("conformance")?;
    Some((Scene::new(name), py, data))
}
