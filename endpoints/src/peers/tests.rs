//! Peer tests: our SCU against our SCP directly, and each against a real third-party peer
//! (DCMTK's storescp, storescu and echoscu), so the peers are known to speak DICOM to
//! something other than themselves before the demo puts a proxy between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::scp::{ScpConfig, ScpStorage, StorageScp};
use super::scu::{self, ScuOptions};
use super::study::{self, StudyOptions};
use super::{EncodedObject, dimse};

/// Kills the child by its PID when the test ends, however it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "`{tool}` (DCMTK) is not installed; run scripts/install-test-peers.sh first"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr, child: &mut ChildGuard) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("peer exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on {addr} after 10 s");
}

fn memory_scp() -> StorageScp {
    StorageScp::start(ScpConfig::default()).unwrap()
}

fn demo_study() -> Vec<EncodedObject> {
    study::generate(&StudyOptions::default()).unwrap().objects
}

#[test]
fn scu_to_scp_echo_and_store_byte_identical() {
    let scp = memory_scp();
    let addr = scp.local_addr();
    let opts = ScuOptions::default();

    let echo = scu::echo(addr, &opts).unwrap();
    assert_eq!(echo.status, dimse::STATUS_SUCCESS);

    let objects = demo_study();
    let out = scu::store(addr, &opts, &objects).unwrap();
    assert!(out.released);
    assert_eq!(out.results.len(), objects.len());
    for r in &out.results {
        assert!(r.is_success(), "{r:?}");
    }
    // CT in explicit, SC in implicit: both contexts accepted with the proposed syntax.
    assert!(
        out.contexts.iter().all(|c| c.accepted),
        "{:?}",
        out.contexts
    );
    assert!(scp.mismatches(&objects).is_empty());

    let assocs = scp.associations();
    assert_eq!(assocs.len(), 2);
    assert_eq!(assocs.iter().map(|a| a.echoes).sum::<u32>(), 1);
    assert_eq!(
        assocs.iter().map(|a| a.stores as usize).sum::<usize>(),
        objects.len()
    );
    assert!(assocs.iter().all(|a| a.ended == "released"));
    assert!(assocs.iter().all(|a| a.calling_ae_title == "DEMO-SCU"));
    scp.shutdown(Duration::from_secs(2));
}

#[test]
fn scp_directory_storage_writes_part10_files() {
    let dir = tempfile::tempdir().unwrap();
    let scp = StorageScp::start(ScpConfig {
        storage: ScpStorage::Directory(dir.path().to_path_buf()),
        ..ScpConfig::default()
    })
    .unwrap();
    let objects = demo_study();
    let out = scu::store(scp.local_addr(), &ScuOptions::default(), &objects).unwrap();
    assert!(out.results.iter().all(|r| r.is_success()));
    for obj in &objects {
        let path = dir.path().join(format!("{}.dcm", obj.sop_instance_uid));
        let file = std::fs::read(&path).unwrap();
        assert!(file.ends_with(&obj.dataset), "{}", path.display());
    }
    // Read back from the files, the bytes still match.
    assert!(scp.mismatches(&objects).is_empty());
    scp.shutdown(Duration::from_secs(2));
}

#[test]
fn scp_rejects_unknown_sop_class_context() {
    let scp = StorageScp::start(ScpConfig {
        sop_classes: vec![dicom_dictionary_std::uids::CT_IMAGE_STORAGE.to_string()],
        ..ScpConfig::default()
    })
    .unwrap();
    let objects = demo_study();
    let out = scu::store(scp.local_addr(), &ScuOptions::default(), &objects).unwrap();
    let (ct, sc): (Vec<_>, Vec<_>) = out
        .results
        .iter()
        .partition(|r| r.sop_class_uid == dicom_dictionary_std::uids::CT_IMAGE_STORAGE);
    assert!(ct.iter().all(|r| r.is_success()));
    assert!(sc.iter().all(|r| r.status.is_none() && r.error.is_some()));
    scp.shutdown(Duration::from_secs(2));
}

fn find_file_ending_with(dir: &Path, bytes: &[u8]) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::read(p).is_ok_and(|f| f.ends_with(bytes)))
}

#[test]
fn our_scu_to_dcmtk_storescp() {
    require("storescp");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // +B: bit-preserving, the file's data set is exactly what arrived on the wire.
    let mut child = ChildGuard(
        Command::new("storescp")
            .args(["-aet", "DCMTK-SCP", "+B", "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn storescp"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, &mut child);
    let opts = ScuOptions {
        called_ae_title: "DCMTK-SCP".into(),
        ..ScuOptions::default()
    };
    assert_eq!(scu::echo(addr, &opts).unwrap().status, 0);
    let objects = demo_study();
    let out = scu::store(addr, &opts, &objects).unwrap();
    assert!(out.released);
    for r in &out.results {
        assert!(r.is_success(), "{r:?}");
    }
    for obj in &objects {
        assert!(
            find_file_ending_with(dir.path(), &obj.dataset).is_some(),
            "storescp did not store {} bit-identically",
            obj.sop_instance_uid
        );
    }
}

#[test]
fn dcmtk_echoscu_and_storescu_to_our_scp() {
    require("storescu");
    require("echoscu");
    let scp = memory_scp();
    let addr = scp.local_addr();
    let port = addr.port().to_string();

    let echo = Command::new("echoscu")
        .args(["-aet", "DCMTK-SCU", "-aec", "DEMO-SCP", "127.0.0.1", &port])
        .output()
        .expect("run echoscu");
    assert!(
        echo.status.success(),
        "echoscu: {}",
        String::from_utf8_lossy(&echo.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let objects = demo_study();
    let mut files = Vec::new();
    for obj in &objects {
        let path = dir.path().join(format!("{}.dcm", obj.sop_instance_uid));
        std::fs::write(&path, obj.to_part10(None).unwrap()).unwrap();
        files.push(path);
    }
    let store = Command::new("storescu")
        .args(["-aet", "DCMTK-SCU", "-aec", "DEMO-SCP", "127.0.0.1", &port])
        .args(&files)
        .output()
        .expect("run storescu");
    assert!(
        store.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&store.stderr)
    );
    let received = scp.received();
    assert_eq!(received.len(), objects.len());
    for obj in &objects {
        let r = received
            .iter()
            .find(|r| r.sop_instance_uid == obj.sop_instance_uid)
            .unwrap_or_else(|| panic!("{} not received", obj.sop_instance_uid));
        assert_eq!(r.status, dimse::STATUS_SUCCESS);
        assert_eq!(r.calling_ae_title, "DCMTK-SCU");
        assert_eq!(r.sop_class_uid, obj.sop_class_uid);
    }
    let assocs = scp.associations();
    assert!(assocs.iter().any(|a| a.echoes == 1));
    assert!(assocs.iter().all(|a| a.ended == "released"), "{assocs:?}");
    scp.shutdown(Duration::from_secs(2));
}
