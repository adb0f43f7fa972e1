"""pynetdicom/pydicom peers for the conformance tests (tests/conformance/peers.rs).

  archive PORT STORE_STATUS_HEX REPORT_PORT   storage + storage commitment SCP "ARCHIVE":
      answers every C-STORE with STORE_STATUS; on N-ACTION Request Storage Commitment it
      answers Success, then after a second opens a new association to 127.0.0.1:REPORT_PORT
      (called AE "MODALITY") and reports every instance in the Failed SOP Sequence.
      REPORT_PORT 0: no reports.
  modality ARCHIVE_PORT LISTEN_PORT FILE      "MODALITY": listens for the report on
      LISTEN_PORT, sends FILE with C-STORE and requests its commitment, waits (bounded)
      for the N-EVENT-REPORT.
  store PORT CALLED CALLING FILE              one C-STORE of FILE, nothing else.
  rewrite IN OUT CHARSET                      writes IN with (0008,0005) = CHARSET, the
      text bytes untouched.
"""
import sys
import threading
import time

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel

from common import (associate, commitment_scp_ae, referenced, report_on_new_association,
                    request_commitment, sop_items)


def archive(port, status, report_port):
    ae = commitment_scp_ae("ARCHIVE")

    def report(txn, refs):
        time.sleep(1.0)
        ds = Dataset()
        ds.TransactionUID = txn
        ds.FailedSOPSequence = sop_items(refs, failure_reason=0x0110)
        report_on_new_association(ds, report_port, 2)

    def on_store(event):
        return status

    def on_action(event):
        req = event.action_information
        if report_port:
            threading.Thread(target=report, args=(req.TransactionUID, referenced(req)),
                             daemon=True).start()
        return 0x0000, None

    print("listening", flush=True)
    ae.start_server(("127.0.0.1", port), block=True,
                    evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_N_ACTION, on_action)])


def modality(archive_port, listen_port, path):
    ds = dcmread(path)
    got = threading.Event()

    def on_report(event):
        got.set()
        return 0x0000, None

    ae = AE(ae_title="MODALITY")
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    server = ae.start_server(("127.0.0.1", listen_port), block=False,
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = associate(ae, archive_port, "ARCHIVE")
    request_commitment(assoc, ds)
    assoc.release()
    ok = got.wait(15)
    server.shutdown()
    print("report received" if ok else "no report", flush=True)
    sys.exit(0 if ok else 1)


def store(port, called, calling, path):
    ds = dcmread(path)
    ae = AE(ae_title=calling)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = associate(ae, port, called)
    rsp = assoc.send_c_store(ds)
    print("stored", rsp.Status if rsp else None, flush=True)
    assoc.release()


def rewrite(src, dst, charset):
    # Only the declaration changes; the bytes of the text values stay as they were.
    # (pydicom's save_as would re-encode every text value into the new character set, so
    # the element is patched in place: same length, Explicit VR Little Endian.)
    ds = dcmread(src)
    old = ds.SpecificCharacterSet
    assert len(old) == len(charset), (old, charset)
    with open(src, "rb") as f:
        data = f.read()
    element = b"\x08\x00\x05\x00CS" + len(old).to_bytes(2, "little")
    assert data.count(element + old.encode()) == 1, "one (0008,0005) expected"
    data = data.replace(element + old.encode(), element + charset.encode())
    with open(dst, "wb") as f:
        f.write(data)
    check = dcmread(dst)
    assert check.SpecificCharacterSet == charset
    print("raw name", check.get_item(0x00100010).value, flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "archive":
        archive(int(args[0]), int(args[1], 16), int(args[2]))
    elif mode == "modality":
        modality(int(args[0]), int(args[1]), args[2])
    elif mode == "store":
        store(int(args[0]), args[1], args[2], args[3])
    elif mode == "rewrite":
        rewrite(args[0], args[1], args[2])
    else:
        sys.exit(f"unknown mode {mode}")
