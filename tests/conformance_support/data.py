"""pynetdicom/pydicom peers for the data and timing conformance tests
(tests/conformance/data/).

  mislabel SRC WRONG RIGHT        writes SRC's data set in Implicit VR Little Endian twice:
      WRONG with file meta saying Explicit VR Little Endian, RIGHT saying Implicit.
  send PORT CALLED CALLING FILE PDU
      proposes FILE's SOP class with the transfer syntax its file meta names and sends
      the data set bytes as they are in the file (no re-encoding). PDU > 0: every
      P-DATA-TF is cut to PDU bytes, whatever Max Length the acceptor advertised.
  private-scp PORT TS             accepts CT Image Storage in transfer syntax TS (and
      Verification) as "PRIVSCP".
  private-scu PORT CALLED CALLING TS
      proposes CT Image Storage in TS only, plus Verification; C-ECHO, release.
  commit-scp PORT MODE DELAY REPORT_PORT
      storage + storage commitment SCP "ARCHIVE": every N-ACTION is answered Success,
      then after DELAY seconds every instance is reported committed, on the same
      association (MODE same), on a new one to 127.0.0.1:REPORT_PORT called "MODALITY"
      (MODE new), or never (MODE none).
  commit-scu PORT LISTEN_PORT FILE HOLD
      "MODALITY": listens for reports on LISTEN_PORT, stores FILE, requests its
      commitment and keeps the association open until the report came (also on the same
      association) or HOLD seconds passed, then releases.
  idle PORT CALLED CALLING HOLD
      associates (Verification), sends nothing, releases after HOLD seconds unless the
      acceptor ended the association first; prints which.
  idle-scp PORT NETWORK_TIMEOUT   Verification SCP "IDLESCP" that aborts an association
      idle for NETWORK_TIMEOUT seconds.
  slow-scp PORT DELAY             storage SCP "SLOWSCP" answering C-STORE after DELAY s.
  mute-scp PORT HOLD              a TCP listener that reads what a requestor sends (its
      A-ASSOCIATE-RQ) and never answers; it closes a connection when the requestor
      does, or after HOLD seconds.
  artim-scu PORT CALLED CALLING ACSE_TIMEOUT
      requests an association (Verification) with pynetdicom's ACSE timeout set to
      ACSE_TIMEOUT seconds; prints whether it was established and after how long it
      gave up.
"""
import socket
import sys
import threading
import time

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PYDICOM_IMPLEMENTATION_UID,
)
from pynetdicom import AE, StoragePresentationContexts, _config, evt
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel, Verification

from common import (INSTANCE, associate, commitment_scp_ae, referenced,
                    report_on_new_association, request_commitment, sop_items)


def mislabel(src, wrong, right):
    ds = dcmread(src)
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = True
    write_dataset(buf, ds)
    data = buf.getvalue()
    for path, ts in ((wrong, ExplicitVRLittleEndian), (right, ImplicitVRLittleEndian)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ts
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        out = DicomBytesIO()
        out.is_little_endian = True
        out.is_implicit_VR = False
        out.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(out, meta, enforce_standard=True)
        with open(path, "wb") as f:
            f.write(out.getvalue() + data)
    print("written", len(data), flush=True)


def send(port, called, calling, path, pdu):
    _config.STORE_SEND_CHUNKED_DATASET = True
    if pdu > 0:
        # pynetdicom sizes its P-DATA-TF PDUs from the peer's Max Length; this sender
        # ignores it.
        DIMSEServiceProvider.maximum_pdu_size = property(lambda self: pdu)
    meta = dcmread(path, stop_before_pixels=True).file_meta
    ae = AE(ae_title=calling)
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    assoc = associate(ae, port, called)
    rsp = assoc.send_c_store(path)
    print("stored", f"{rsp.Status:04X}" if rsp and "Status" in rsp else None, flush=True)
    if assoc.is_established:
        assoc.release()


def private_scp(port, ts):
    ae = AE(ae_title="PRIVSCP")
    ae.add_supported_context(CTImageStorage, [ts, ExplicitVRLittleEndian])
    ae.add_supported_context(Verification)
    print("listening", flush=True)
    ae.start_server(("127.0.0.1", port), block=True)


def private_scu(port, called, calling, ts):
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage, [ts])
    ae.add_requested_context(Verification)
    assoc = associate(ae, port, called)
    for cx in assoc.accepted_contexts:
        print("accepted", cx.abstract_syntax, cx.transfer_syntax[0], flush=True)
    rsp = assoc.send_c_echo()
    print("echo", f"{rsp.Status:04X}" if rsp and "Status" in rsp else None, flush=True)
    assoc.release()


def commit_scp(port, mode, delay, report_port):
    ae = commitment_scp_ae("ARCHIVE")

    def report(assoc, txn, refs):
        time.sleep(delay)
        ds = Dataset()
        ds.TransactionUID = txn
        ds.ReferencedSOPSequence = sop_items(refs)
        if mode == "same":
            if not assoc.is_established:
                print("association gone before the report", flush=True)
                return
            rsp, _ = assoc.send_n_event_report(ds, 1, StorageCommitmentPushModel, INSTANCE)
            print("report answered", rsp.Status if rsp else None, flush=True)
            return
        report_on_new_association(ds, report_port, 1)

    def on_action(event):
        req = event.action_information
        if mode != "none":
            threading.Thread(target=report, args=(event.assoc, req.TransactionUID, referenced(req)),
                             daemon=True).start()
        return 0x0000, None

    print("listening", flush=True)
    ae.start_server(("127.0.0.1", port), block=True,
                    evt_handlers=[(evt.EVT_C_STORE, lambda e: 0x0000), (evt.EVT_N_ACTION, on_action)])


def commit_scu(port, listen_port, path, hold):
    ds = dcmread(path)
    got = threading.Event()

    def on_report(event):
        got.set()
        return 0x0000, None

    handlers = [(evt.EVT_N_EVENT_REPORT, on_report)]
    ae = AE(ae_title="MODALITY")
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    server = ae.start_server(("127.0.0.1", listen_port), block=False, evt_handlers=handlers)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = associate(ae, port, "ARCHIVE", evt_handlers=handlers)
    request_commitment(assoc, ds)
    ok = got.wait(hold)
    # A moment for the reporter to see its N-EVENT-REPORT-RSP before the release.
    time.sleep(0.3)
    if assoc.is_established:
        assoc.release()
    server.shutdown()
    print("report received" if ok else "no report", flush=True)


def idle(port, called, calling, hold):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    # pynetdicom's own idle timer must not fire first.
    ae.network_timeout = hold + 30
    assoc = associate(ae, port, called)
    start = time.monotonic()
    while assoc.is_established and time.monotonic() - start < hold:
        time.sleep(0.05)
    if assoc.is_established:
        assoc.release()
        print(f"released after {time.monotonic() - start:.1f} s", flush=True)
    else:
        print(f"ended by the acceptor after {time.monotonic() - start:.1f} s", flush=True)


def idle_scp(port, network_timeout):
    ae = AE(ae_title="IDLESCP")
    ae.add_supported_context(Verification)
    ae.network_timeout = network_timeout
    print("listening", flush=True)
    ae.start_server(("127.0.0.1", port), block=True)


def slow_scp(port, delay):
    ae = AE(ae_title="SLOWSCP")
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax)

    def on_store(event):
        time.sleep(delay)
        return 0x0000

    print("listening", flush=True)
    ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])


def mute_scp(port, hold):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)

    def serve(conn):
        conn.settimeout(0.2)
        start = time.monotonic()
        with conn:
            while time.monotonic() - start < hold:
                try:
                    if not conn.recv(65536):
                        return
                except socket.timeout:
                    continue
                except OSError:
                    return

    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def artim_scu(port, called, calling, acse_timeout):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = acse_timeout
    start = time.monotonic()
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    took = time.monotonic() - start
    if assoc.is_established:
        assoc.release()
        print(f"established after {took:.1f} s", flush=True)
    else:
        print(f"gave up after {took:.1f} s", flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "mislabel":
        mislabel(args[0], args[1], args[2])
    elif mode == "send":
        send(int(args[0]), args[1], args[2], args[3], int(args[4]))
    elif mode == "private-scp":
        private_scp(int(args[0]), args[1])
    elif mode == "private-scu":
        private_scu(int(args[0]), args[1], args[2], args[3])
    elif mode == "commit-scp":
        commit_scp(int(args[0]), args[1], float(args[2]), int(args[3]))
    elif mode == "commit-scu":
        commit_scu(int(args[0]), int(args[1]), args[2], float(args[3]))
    elif mode == "idle":
        idle(int(args[0]), args[1], args[2], float(args[3]))
    elif mode == "idle-scp":
        idle_scp(int(args[0]), float(args[1]))
    elif mode == "slow-scp":
        slow_scp(int(args[0]), float(args[1]))
    elif mode == "mute-scp":
        mute_scp(int(args[0]), float(args[1]))
    elif mode == "artim-scu":
        artim_scu(int(args[0]), args[1], args[2], float(args[3]))
    else:
        sys.exit(f"unknown mode {mode}")
