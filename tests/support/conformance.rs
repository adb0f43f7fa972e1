//! The scene of a conformance test: a temporary directory with a `statements/` folder,
//! the pynetdicom peer scripts, DCMTK peers started in it, and `dicomtap analyze
//! --statements` run over a capture, returning the findings as JSON values.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Proc, TempDir, command, run, run_ok, temp_dir, wait_for_port};

const PEERS_PY: &str = include_str!("../conformance_support/peers.py");

/// A test's temporary directory with its statements.
pub struct Scene {
    dir: TempDir,
}

impl Scene {
    pub fn new(name: &str) -> Scene {
        let dir = temp_dir(&format!("conf-{name}"));
        std::fs::create_dir_all(dir.path().join("statements")).unwrap();
        std::fs::create_dir_all(dir.path().join("received")).unwrap();
        std::fs::write(dir.path().join("peers.py"), PEERS_PY).unwrap();
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

    pub fn storescu(&self, port: u16, calling: &str, extra: &[&str], files: &[PathBuf]) {
        let mut args: Vec<String> = vec![
            "-R".into(),
            "-aet".into(),
            calling.into(),
            "-aec".into(),
            "STORESCP".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["127.0.0.1".to_string(), port.to_string()]);
        args.extend(files.iter().map(|f| f.display().to_string()));
        run_ok(
            "storescu",
            command("storescu", &args),
            self.path(),
            Duration::from_secs(30),
        );
    }

    pub fn python(&self, py: &Path, args: &[String]) -> std::process::Command {
        let mut all = vec![self.path().join("peers.py").display().to_string()];
        all.extend(args.iter().cloned());
        command(py.to_str().unwrap(), &all)
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
