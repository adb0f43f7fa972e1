use super::*;

const PY_SCP: &str = r#"
import sys
from pynetdicom import AE, evt, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification

def on_store(event):
    print("STORED", event.request.AffectedSOPInstanceUID, flush=True)
    return 0x0000

def on_echo(event):
    print("ECHOED", flush=True)
    return 0x0000

ae = AE(ae_title="PYSCP")
ae.supported_contexts = AllStoragePresentationContexts
ae.add_supported_context(Verification)
print("LISTENING", flush=True)
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_ECHO, on_echo)])
"#;

/// Echo, then store every file, printing each status (tests/peers_py/store_scu.py).
const PY_SCU: &str = include_str!("../../peers_py/store_scu.py");

#[test]
fn pynetdicom_scu_to_pynetdicom_scp() {
    let Some((python, data)) = require_peers("pynetdicom", &["dumpcap", "tshark", "dcmdump"])
    else {
        return;
    };
    let dir = temp_dir("pynetdicom");
    let dir = dir.path();
    std::fs::write(dir.join("scp.py"), PY_SCP).expect("writing the SCP script");
    std::fs::write(dir.join("scu.py"), PY_SCU).expect("writing the SCU script");
    let no_args: [&str; 0] = [];
    let (mut scp, port) = python_scp(
        "pynetdicom-scp",
        &python,
        &dir.join("scp.py"),
        &no_args,
        dir,
    );
    let p = port.to_string();
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("MR_small_implicit.dcm"),
        data.charset_files.join("chrX2.dcm"),
    ];
    let cap = Capture::start("pynetdicom", &[port], dir);
    let mut scu_cmd = Command::new(&python);
    scu_cmd.arg(dir.join("scu.py")).arg(&p).args(&files);
    let scu = run_ok("pynetdicom-scu", scu_cmd, dir, PEER_TIMEOUT);
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));

    let conns = analyse("pynetdicom", &pcap, &[port], dir);
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(lines_with(&scu.stdout, "ECHO 0x0000"), 1, "{}", scu.text());
    assert_eq!(
        lines_with(&scu.stdout, "STORE 0x0000"),
        files.len(),
        "{}",
        scu.text()
    );
    assert_eq!(c.count(Side::Requestor, "C-ECHO-RQ", None), 1);
    assert_eq!(c.count(Side::Acceptor, "C-ECHO-RSP", Some(0)), 1);
    assert_eq!(c.count(Side::Acceptor, "C-STORE-RSP", Some(0)), files.len());
    let rq = c.request().expect("an A-ASSOCIATE-RQ");
    assert_eq!(
        (rq.calling_ae.as_str(), rq.called_ae.as_str()),
        ("PYSCU", "PYSCP")
    );
    assert!(
        rq.user_info
            .implementation_class_uid
            .as_deref()
            .is_some_and(|u| u.starts_with("1.2.826.0.1.3680043.9.3811.")),
        "pynetdicom's implementation class UID: {:?}",
        rq.user_info.implementation_class_uid
    );
    let scp_log = scp.stdout();
    let mut stored: Vec<String> = store_peeks("pynetdicom", &conns)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let mut logged: Vec<String> = scp_log
        .lines()
        .filter_map(|l| l.strip_prefix("STORED ").map(|u| u.trim().to_string()))
        .collect();
    let mut files_uids: Vec<String> = files.iter().map(|f| file_identity(f, dir).0).collect();
    stored.sort();
    logged.sort();
    files_uids.sort();
    assert_eq!(stored, files_uids, "peeked instances vs the files");
    assert_eq!(
        logged,
        files_uids,
        "the SCP's log vs the files\n{}",
        scp.output()
    );
}
