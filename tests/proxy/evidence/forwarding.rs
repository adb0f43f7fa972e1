use super::*;

// ---------------------------------------------------------------------------------------
// 1. pynetdicom SCU -> proxy -> pynetdicom SCP

const PY_SCP: &str = r#"
import os, sys
from pynetdicom import AE, evt, AllStoragePresentationContexts, ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import Verification

out = sys.argv[2]
count = [0]

def on_store(event):
    # Some samples share a SOP instance UID: number them in arrival order.
    count[0] += 1
    name = "%03d-%s" % (count[0], event.request.AffectedSOPInstanceUID)
    # The data set exactly as received, and the file pynetdicom makes of it.
    with open(os.path.join(out, name + ".raw"), "wb") as f:
        f.write(event.request.DataSet.getvalue())
    with open(os.path.join(out, name + ".dcm"), "wb") as f:
        f.write(event.encoded_dataset(include_meta=True))
    return 0x0000

ae = AE(ae_title="PYSCP")
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
ae.add_supported_context(Verification)
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[(evt.EVT_C_STORE, on_store)])
"#;

/// Echo, then store every file, printing each status (tests/peers_py/store_scu.py).
const PY_SCU: &str = include_str!("../../peers_py/store_scu.py");

#[test]
fn pynetdicom_store_is_byte_identical_through_the_proxy() {
    let Some((python, data)) = require_python("pynetdicom_store") else {
        return;
    };
    let tmp = temp_dir("ev-pynet");
    let dir = tmp.path();
    std::fs::write(dir.join("scp.py"), PY_SCP).unwrap();
    std::fs::write(dir.join("scu.py"), PY_SCU).unwrap();
    let files: Vec<PathBuf> = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "rtplan.dcm",
        "SC_rgb_rle.dcm",
    ]
    .iter()
    .map(|n| data.test_files.join(n))
    .chain([data.charset_files.join("chrX2.dcm")])
    .collect();

    let scp = |name: &str, out: &Path| -> (Proc, u16) {
        std::fs::create_dir_all(out).unwrap();
        python_scp(name, &python, &dir.join("scp.py"), &[out], dir)
    };
    let scu = |name: &str, port: u16| {
        let mut cmd = Command::new(&python);
        cmd.arg(dir.join("scu.py"))
            .arg(port.to_string())
            .args(&files);
        let out = run_ok(name, cmd, dir, PEER);
        assert_eq!(lines_with(&out.stdout, "ECHO 0x0000"), 1, "{}", out.text());
        assert_eq!(
            lines_with(&out.stdout, "STORE 0x0000"),
            files.len(),
            "{}",
            out.text()
        );
    };

    let (direct_dir, proxied_dir, rec) = (dir.join("direct"), dir.join("proxied"), dir.join("rec"));
    let (_scp1, p1) = scp("scp-direct", &direct_dir);
    scu("scu-direct", p1);
    let (_scp2, p2) = scp("scp-proxied", &proxied_dir);
    let proxy = recording_proxy("proxy", p2, &rec, &[], dir);
    scu("scu-proxied", proxy.port());

    let n = assert_same_files(&direct_dir, &proxied_dir, "pynetdicom SCP");
    assert_eq!(
        n,
        2 * files.len(),
        "one .raw and one .dcm per file: {:?}",
        dir_contents(&direct_dir)
    );
    assert!(
        wait_events(&rec, START, |ev| commands(ev, "C-STORE-RSP").len()
            == files.len()
            && count_event(ev, "closed") == 1),
        "event log: {:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    assert_eq!(commands(&ev, "C-ECHO-RQ").len(), 1);
    assert_eq!(commands(&ev, "C-STORE-RQ").len(), files.len());
    assert!(
        commands(&ev, "C-STORE-RSP")
            .iter()
            .all(|c| c["status"]["value"] == 0),
        "{:?}",
        commands(&ev, "C-STORE-RSP")
    );
}

// ---------------------------------------------------------------------------------------
// 2. findscu / movescu / getscu against dcmqrscp

/// One value of `tag` (e.g. "0020,000d") of a file, by dcmdump.
fn dcmdump_value(file: &Path, tag: &str, dir: &Path) -> String {
    let out = run_ok(
        "dcmdump",
        command("dcmdump", &["+P".as_ref(), tag.as_ref(), file.as_os_str()]),
        dir,
        PEER,
    );
    let l = out.stdout.lines().next().unwrap_or("").to_string();
    l[l.find('[').expect("a value") + 1..l.find(']').expect("a value")].to_string()
}

/// What one round of find/move/get gave.
#[derive(Debug, PartialEq)]
struct QrResult {
    find_matches: usize,
    find_responses: Files,
    move_final: Vec<String>,
    moved: Files,
    got: Files,
    get_final: Vec<String>,
}

/// The sub-operation counter lines of the final response in a DCMTK -d log.
fn suboperation_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("Suboperations") || l.contains("Sub-operations"))
        .map(|l| l.trim_start_matches(|c: char| c != ':').to_string())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn find_move_get_through_the_proxy_match_direct() {
    let Some((_, data)) = require_peers(
        "find_move_get",
        &[
            "dcmqrscp", "storescu", "storescp", "findscu", "movescu", "getscu", "dcmdump",
        ],
    ) else {
        return;
    };
    let tmp = temp_dir("ev-qr");
    let dir = tmp.path();
    let (_dest_a, port_a) = storescp("dest-a", &dir.join("moved-direct"), dir, &["-aet", "DESTA"]);
    let (_dest_b, port_b) = storescp(
        "dest-b",
        &dir.join("moved-proxied"),
        dir,
        &["-aet", "DESTB"],
    );
    // AE QRSCP, move destinations DESTA and DESTB.
    let qr = Dcmqrscp::configure(dir, &[("DESTA", port_a), ("DESTB", port_b)]);
    let qr_port = qr.port;
    let _qr = qr.start("dcmqrscp", dir, &["-d"]);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("rtplan.dcm"),
    ];
    let mut populate: Vec<String> = ["-aet", "STORESCU", "-aec", "QRSCP", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    populate.push(qr_port.to_string());
    populate.extend(files.iter().map(|f| f.display().to_string()));
    run_ok("populate", command("storescu", &populate), dir, PEER);
    let study = dcmdump_value(&files[0], "0020,000d", dir);
    let patient = dcmdump_value(&files[0], "0010,0020", dir);

    let rec = dir.join("rec");
    let proxy = recording_proxy("proxy", qr_port, &rec, &[], dir);

    let round = |label: &str, port: u16, dest: &str| -> QrResult {
        let p = port.to_string();
        let common = ["-aet", "QRSCU", "-aec", "QRSCP"];
        let find_dir = dir.join(format!("find-{label}"));
        std::fs::create_dir_all(&find_dir).unwrap();
        let fd = find_dir.display().to_string();
        let find = run_ok(
            &format!("findscu-{label}"),
            command(
                "findscu",
                &[
                    &["-v"][..],
                    &common[..],
                    &[
                        "-S",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        "-k",
                        "StudyInstanceUID",
                        "-k",
                        "PatientName",
                    ],
                    &["-k", "StudyDate", "-X", "-od", &fd, "127.0.0.1", &p],
                ]
                .concat(),
            ),
            dir,
            PEER,
        );
        // findscu makes up a new Media Storage SOP Instance UID per file: compare the
        // response data sets, not the file meta.
        let mut find_responses = dir_contents(&find_dir);
        for bytes in find_responses.0.values_mut() {
            *bytes = without_file_meta(bytes);
        }
        let find_log = format!("{}{}", find.stdout, find.stderr);
        assert!(find_log.contains("Find Response"), "{}", find.text());
        let study_key = format!("StudyInstanceUID={study}");
        let md = dir.join(format!("moved-{label}"));
        let mv = run_ok(
            &format!("movescu-{label}"),
            command(
                "movescu",
                &[
                    &["-d"][..],
                    &common[..],
                    &[
                        "-aem",
                        dest,
                        "-S",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        "-k",
                        &study_key,
                    ],
                    &["127.0.0.1", &p],
                ]
                .concat(),
            ),
            dir,
            PEER,
        );
        let got_dir = dir.join(format!("got-{label}"));
        std::fs::create_dir_all(&got_dir).unwrap();
        let gd = got_dir.display().to_string();
        let patient_key = format!("PatientID={patient}");
        let get = run_ok(
            &format!("getscu-{label}"),
            command(
                "getscu",
                &[
                    &["-d"][..],
                    &common[..],
                    &[
                        "-od",
                        &gd,
                        "-P",
                        "-k",
                        "QueryRetrieveLevel=PATIENT",
                        "-k",
                        &patient_key,
                    ],
                    &["127.0.0.1", &p],
                ]
                .concat(),
            ),
            dir,
            PEER,
        );
        let mv_log = format!("{}{}", mv.stdout, mv.stderr);
        let get_log = format!("{}{}", get.stdout, get.stderr);
        // The move's store sub-association ends before the final C-MOVE-RSP.
        QrResult {
            find_matches: find_responses.len(),
            find_responses,
            move_final: suboperation_lines(&mv_log),
            moved: dir_contents(&md),
            got: dir_contents(&got_dir),
            get_final: suboperation_lines(&get_log),
        }
    };
    let direct = round("direct", qr_port, "DESTA");
    let proxied = round("proxied", proxy.port(), "DESTB");
    assert!(direct.find_matches >= 2, "CT and MR studies: {direct:?}");
    assert_eq!(direct.find_responses.len(), direct.find_matches);
    assert_eq!(direct.moved.len(), 1, "the CT study: {:?}", direct.moved);
    assert!(!direct.got.is_empty(), "the CT patient's instances");
    assert!(
        !direct.move_final.is_empty(),
        "movescu -d prints the counters"
    );
    assert_eq!(proxied.find_matches, direct.find_matches);
    assert_eq!(
        proxied.find_responses, direct.find_responses,
        "C-FIND responses"
    );
    assert_eq!(
        proxied.move_final, direct.move_final,
        "C-MOVE sub-operations"
    );
    assert_eq!(proxied.get_final, direct.get_final, "C-GET sub-operations");
    assert_eq!(
        proxied.moved.0.keys().collect::<Vec<_>>(),
        direct.moved.0.keys().collect::<Vec<_>>()
    );
    assert!(proxied.moved == direct.moved, "moved files differ");
    assert!(proxied.got == direct.got, "retrieved (C-GET) files differ");

    // The event log saw the same: matches, and the final counters of the move and the get.
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") == 3),
        "{:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    let pending_find = commands(&ev, "C-FIND-RSP")
        .iter()
        .filter(|c| c["status"]["value"] == 0xFF00)
        .count();
    assert_eq!(pending_find, direct.find_matches);
    let final_move = commands(&ev, "C-MOVE-RSP")
        .into_iter()
        .find(|c| c["status"]["value"] == 0)
        .expect("a final C-MOVE-RSP");
    assert_eq!(final_move["sub_operations"]["completed"], 1, "{final_move}");
    assert_eq!(final_move["sub_operations"]["failed"], 0, "{final_move}");
    let final_get = commands(&ev, "C-GET-RSP")
        .into_iter()
        .find(|c| c["status"]["value"] == 0)
        .expect("a final C-GET-RSP");
    assert_eq!(
        final_get["sub_operations"]["completed"].as_u64(),
        Some(direct.got.len() as u64),
        "{final_get}"
    );
    // The C-GET's C-STORE sub-operations travel the same association through the proxy.
    assert_eq!(commands(&ev, "C-STORE-RQ").len(), direct.got.len());
}

// ---------------------------------------------------------------------------------------
// 4. Both legs byte-identical on the wire

/// Bytes per connection and side, from dicomtap's own capture reader.
#[derive(Default)]
struct Streams {
    conns: BTreeMap<u64, (ConnectionInfo, [Vec<u8>; 2], u64)>,
}

impl StreamSink for Streams {
    fn on_open(&mut self, conn: &ConnectionInfo) {
        self.conns
            .insert(conn.id.0, (conn.clone(), [Vec::new(), Vec::new()], 0));
    }
    fn on_data(&mut self, conn: ConnId, from: Side, _ts_us: u64, data: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn.0) {
            c.1[from.index()].extend_from_slice(data);
        }
    }
    fn on_gap(&mut self, conn: ConnId, _from: Side, _ts_us: u64, missing: u64) {
        if let Some(c) = self.conns.get_mut(&conn.0) {
            c.2 += missing;
        }
    }
    fn on_end(&mut self, _conn: ConnId, _from: Side, _ts_us: u64, _how: StreamEnd) {}
    fn on_close(&mut self, _conn: ConnId, _ts_us: u64) {}
}

#[test]
fn both_legs_carry_identical_bytes_on_the_wire() {
    let Some((_, data)) = require_peers("both_legs_wire", &["storescp", "storescu", "dumpcap"])
    else {
        return;
    };
    let tmp = temp_dir("ev-legs");
    let dir = tmp.path();
    let (_scp, up_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    let listen_port = free_port();
    let listen = format!("127.0.0.1:{listen_port}");
    let up = format!("127.0.0.1:{up_port}");
    let proxy = start_proxy(
        "proxy",
        &["--listen", &listen, "--upstream", &up, "--metrics", "off"],
        dir,
        1,
        false,
        0,
    );
    let files: Vec<PathBuf> = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "rtplan.dcm",
        "rtdose.dcm",
    ]
    .iter()
    .map(|n| data.test_files.join(n))
    .collect();
    let cap = support::Capture::start("legs", &[listen_port, up_port], dir);
    storescu("storescu", proxy.port(), &files, dir);
    run_ok(
        "echoscu",
        command(
            "echoscu",
            &["127.0.0.1".to_string(), proxy.port().to_string()],
        ),
        dir,
        PEER,
    );
    let pcap = cap.finish();

    let mut streams = Streams::default();
    CaptureReader::open(&pcap)
        .expect("opening dumpcap's capture")
        .process(&mut streams)
        .expect("reading dumpcap's capture");
    let front: Vec<_> = streams
        .conns
        .values()
        .filter(|c| c.0.server.port() == listen_port)
        .collect();
    let back: Vec<_> = streams
        .conns
        .values()
        .filter(|c| c.0.server.port() == up_port)
        .collect();
    assert_eq!(front.len(), 2, "storescu and echoscu to the proxy");
    assert_eq!(back.len(), 2, "the proxy to storescp, twice");
    for (f, b) in front.iter().zip(&back) {
        assert_eq!((f.2, b.2), (0, 0), "dumpcap lost packets");
        assert!(f.1[0].len() > 100, "the requestor sent something");
        assert!(
            f.1[0] == b.1[0],
            "client->proxy ({} bytes) and proxy->upstream ({} bytes) differ",
            f.1[0].len(),
            b.1[0].len()
        );
        assert!(
            f.1[1] == b.1[1],
            "upstream->proxy ({} bytes) and proxy->client ({} bytes) differ",
            b.1[1].len(),
            f.1[1].len()
        );
    }
    let total: usize = front.iter().map(|c| c.1[0].len()).sum();
    let sizes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert!(
        total as u64 > sizes / 2,
        "the data sets crossed: {total} bytes"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Storage commitment with Orthanc

const PY_COMMIT: &str = r#"
import sys, threading
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel, StorageCommitmentPushModelInstance

port, listen_port, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
src = dcmread(path, stop_before_pixels=True)
done = threading.Event()

def on_report(event):
    info = event.event_information
    print("EVENT_REPORT type=%s assoc=%s refs=%d failed=%d" % (
        event.event_type, "same" if event.assoc.is_requestor else "new",
        len(info.get("ReferencedSOPSequence", [])), len(info.get("FailedSOPSequence", []))),
        flush=True)
    done.set()
    return 0x0000, None

handlers = [(evt.EVT_N_EVENT_REPORT, on_report)]
ae = AE(ae_title="PYSCU")
# Orthanc reports on a new association, as the storage commitment SCP: both roles.
ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
server = ae.start_server(("127.0.0.1", listen_port), block=False, evt_handlers=handlers)
ae.add_requested_context(StorageCommitmentPushModel)
assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC", evt_handlers=handlers)
if not assoc.is_established:
    sys.exit("association not established")
ds = Dataset()
ds.TransactionUID = generate_uid()
item = Dataset()
item.ReferencedSOPClassUID = src.SOPClassUID
item.ReferencedSOPInstanceUID = src.SOPInstanceUID
ds.ReferencedSOPSequence = [item]
status, _ = assoc.send_n_action(ds, 1, StorageCommitmentPushModel,
                                StorageCommitmentPushModelInstance)
print("N_ACTION 0x%04x" % status.Status, flush=True)
# The report may come on this association; give it a moment before releasing.
done.wait(2)
assoc.release()
ok = done.wait(30)
server.shutdown()
sys.exit(0 if ok else "no N-EVENT-REPORT within 30 s")
"#;

#[test]
fn storage_commitment_with_orthanc_through_the_proxy() {
    let Some((python, data)) = require_peers("storage_commitment", &["Orthanc", "storescu"]) else {
        return;
    };
    let tmp = temp_dir("ev-commit");
    let dir = tmp.path();
    // Front: SCU -> proxy A -> Orthanc. Back: Orthanc -> proxy B -> the SCU's listener.
    let (orthanc_port, front, back, scu_listen) =
        (free_port(), free_port(), free_port(), free_port());
    let rec = dir.join("rec");
    let toml = format!(
        "metrics_listen = \"off\"\n\
         [[listener]]\nname = \"to-orthanc\"\nlisten = \"127.0.0.1:{front}\"\nupstream = \"127.0.0.1:{orthanc_port}\"\n\
         [[listener]]\nname = \"to-scu\"\nlisten = \"127.0.0.1:{back}\"\nupstream = \"127.0.0.1:{scu_listen}\"\n\
         [recording]\ndir = \"{}\"\n",
        rec.display()
    );
    let _proxy = configured_proxy(&toml, dir, 2, false, 2);
    let _orthanc = support::peers::orthanc(
        dir,
        "orthanc",
        orthanc_port,
        serde_json::json!({
            "DicomModalities": {
                "pyscu": { "AET": "PYSCU", "Host": "127.0.0.1", "Port": back,
                           "AllowStorageCommitment": true },
                "storescu": ["STORESCU", "127.0.0.1", back],
            },
        }),
    );
    let file = data.test_files.join("CT_small.dcm");
    run_ok(
        "storescu",
        command(
            "storescu",
            &[
                "-aet",
                "STORESCU",
                "-aec",
                "ORTHANC",
                "127.0.0.1",
                &front.to_string(),
                file.to_str().unwrap(),
            ],
        ),
        dir,
        PEER,
    );
    std::fs::write(dir.join("commit.py"), PY_COMMIT).unwrap();
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("commit.py"))
        .arg(front.to_string())
        .arg(scu_listen.to_string())
        .arg(&file);
    let out = run_ok("commit", cmd, dir, PEER);
    eprintln!(
        "storage commitment SCU: {}",
        out.stdout.replace('\n', " | ")
    );
    assert!(out.stdout.contains("N_ACTION 0x0000"), "{}", out.text());
    assert!(
        out.stdout.contains("EVENT_REPORT type=1") && out.stdout.contains("refs=1 failed=0"),
        "Orthanc reports the instance as committed (event type 1):\n{}",
        out.text()
    );

    // The event log: N-ACTION on the front association, N-EVENT-REPORT (on whichever
    // association Orthanc chose, here through listener B) with its response.
    assert!(
        wait_events(&rec, START, |ev| !commands(ev, "N-EVENT-REPORT-RSP")
            .is_empty()
            && count_event(ev, "closed") >= 3),
        "{:#?}",
        events_in(&rec)
            .iter()
            .filter(|e| e["event"] != "p_data")
            .map(|e| format!("{} {} {}", e["assoc"], e["event"], e["command"]))
            .collect::<Vec<_>>()
    );
    let ev = events_in(&rec);
    let action_rq = commands(&ev, "N-ACTION-RQ");
    let action_rsp = commands(&ev, "N-ACTION-RSP");
    let report_rq = commands(&ev, "N-EVENT-REPORT-RQ");
    assert_eq!(
        (action_rq.len(), action_rsp.len(), report_rq.len()),
        (1, 1, 1)
    );
    assert_eq!(action_rq[0]["action_type_id"], 1);
    assert_eq!(action_rsp[0]["status"]["value"], 0);
    assert_eq!(report_rq[0]["event_type_id"], 1, "{}", report_rq[0]);
    assert_eq!(
        report_rq[0]["affected_sop_class"], "1.2.840.10008.1.20.1",
        "storage commitment push model"
    );
    // Orthanc 1.10 reports from a job, on a new association to the modality's address
    // (here listener B of the proxy).
    assert!(out.stdout.contains("assoc=new"), "{}", out.text());
    {
        assert_ne!(report_rq[0]["assoc"], action_rq[0]["assoc"]);
        let rq = ev
            .iter()
            .find(|e| e["event"] == "associate_rq" && e["assoc"] == report_rq[0]["assoc"])
            .expect("the report's A-ASSOCIATE-RQ");
        assert_eq!(rq["calling_ae"], "ORTHANC", "{rq}");
        assert_eq!(rq["called_ae"], "PYSCU", "{rq}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Upstream killed mid-transfer

#[test]
fn upstream_killed_mid_transfer_aborts_the_client_and_spares_others() {
    if !require("upstream_killed", &["storescp", "storescu", "echoscu"]) {
        return;
    }
    let tmp = temp_dir("ev-kill");
    let dir = tmp.path();
    let big = dir.join("big.dcm");
    write_big_dicom(&big, 48 << 20);
    // The victim reads slowly (one PDU a second), so the transfer is surely in progress.
    let (mut victim, victim_port) = storescp(
        "victim",
        &dir.join("victim"),
        dir,
        &["-v", "--sleep-during", "1"],
    );
    let (_other, other_port) = storescp("other", &dir.join("other"), dir, &[]);
    let (a, b) = (free_port(), free_port());
    let rec = dir.join("rec");
    let toml = format!(
        "metrics_listen = \"127.0.0.1:0\"\n\
         [[listener]]\nlisten = \"127.0.0.1:{a}\"\nupstream = \"127.0.0.1:{victim_port}\"\n\
         [[listener]]\nlisten = \"127.0.0.1:{b}\"\nupstream = \"127.0.0.1:{other_port}\"\n\
         [recording]\ndir = \"{}\"\npayload = \"headers\"\n",
        rec.display()
    );
    let mut proxy = configured_proxy(&toml, dir, 2, true, 2);

    let mut scu = Proc::spawn(
        "storescu-big",
        storescu_command(a, std::slice::from_ref(&big)),
        dir,
    );
    assert!(
        wait_until(START, || victim.output().contains("Received Store Request")),
        "the transfer did not start\n{}\n{}",
        victim.output(),
        scu.output()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(scu.try_wait().is_none(), "storescu is still sending");
    // Meanwhile another association through the same proxy works.
    let echo = |name: &str| {
        run(
            name,
            command("echoscu", &["-aet", "ECHOSCU", "127.0.0.1", &b.to_string()]),
            dir,
            PEER,
        )
    };
    let during = echo("echo-during");
    assert!(during.status.success(), "{}", during.text());

    victim.stop("KILL", Duration::from_secs(5));
    let killed_at = Instant::now();
    let status = scu.wait_timeout(Duration::from_secs(30));
    let scu_log = scu.output();
    assert!(
        status.is_some(),
        "storescu hangs after the upstream was killed\n{scu_log}"
    );
    assert!(
        !status.unwrap().success(),
        "storescu reports a failure\n{scu_log}"
    );
    assert!(
        scu_log.contains("Abort") || scu_log.contains("abort") || scu_log.contains("Failed"),
        "storescu says the association was aborted or failed\n{scu_log}"
    );
    eprintln!("storescu gave up {:?} after the kill", killed_at.elapsed());

    let after = echo("echo-after");
    assert!(after.status.success(), "{}", after.text());
    assert!(
        proxy.proc.try_wait().is_none(),
        "the proxy is still running"
    );

    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") >= 3),
        "{:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    let big_assoc = commands(&ev, "C-STORE-RQ")
        .first()
        .map(|c| c["assoc"].clone())
        .expect("the big C-STORE-RQ");
    let of_big: Vec<&serde_json::Value> = ev.iter().filter(|e| e["assoc"] == big_assoc).collect();
    let notice = of_big
        .iter()
        .find(|e| e["event"] == "proxy_abort")
        .unwrap_or_else(|| panic!("no proxy_abort for the big association: {of_big:#?}"));
    assert_eq!(notice["to"], "requestor", "{notice}");
    assert!(
        of_big
            .iter()
            .any(|e| e["event"] == "upstream_error" && e["kind"] == "reset"),
        "{of_big:#?}"
    );
    let echoes = commands(&ev, "C-ECHO-RSP");
    assert_eq!(echoes.len(), 2, "both echoes answered");
    // The fault shows in the metrics too, and the exposition still passes promtool.
    let metrics = proxy.metrics.expect("a metrics address").port();
    let (_, body) = http_get_status_body(metrics, "/metrics", None);
    promtool_check(&body, dir);
    assert_eq!(
        metric_sum(&body, "dicomtap_upstream_errors_total", "kind=\"reset\""),
        1.0,
        "{body}"
    );
    assert!(
        metric_sum(&body, "dicomtap_aborts_total", "source=\"proxy\"") >= 1.0,
        "{body}"
    );
    let _ = proxy.proc.stop("TERM", Duration::from_secs(10));
}
