"""pynetdicom peer for the bundled-statement tests (tests/conformance/bundled.rs).

  commit PORT CALLED LISTEN_PORT FILE...   "PYSCU": listens on LISTEN_PORT for the report
      (Storage Commitment Push Model in both roles), asks CALLED at PORT to commit the
      instances of FILE... with one N-ACTION, and waits (bounded) for the N-EVENT-REPORT.
      Prints "N_ACTION 0xSSSS" and "EVENT_REPORT type=T assoc=same|new refs=R failed=F".
"""
import sys
import threading

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel, StorageCommitmentPushModelInstance

from common import sop_items


def commit(port, called, listen_port, paths):
    done = threading.Event()

    def on_report(event):
        info = event.event_information
        print("EVENT_REPORT type=%s assoc=%s refs=%d failed=%d" % (
            event.event_type, "same" if event.assoc.is_requestor else "new",
            len(info.get("ReferencedSOPSequence", [])),
            len(info.get("FailedSOPSequence", []))), flush=True)
        done.set()
        return 0x0000, None

    handlers = [(evt.EVT_N_EVENT_REPORT, on_report)]
    ae = AE(ae_title="PYSCU")
    # The report may come on a new association, from the commitment SCP: both roles.
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    server = ae.start_server(("127.0.0.1", listen_port), block=False, evt_handlers=handlers)
    try:
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", port, ae_title=called, evt_handlers=handlers)
        if not assoc.is_established:
            sys.exit("association not established")
        ds = Dataset()
        ds.TransactionUID = generate_uid()
        sources = [dcmread(path, stop_before_pixels=True) for path in paths]
        ds.ReferencedSOPSequence = sop_items([(s.SOPClassUID, s.SOPInstanceUID) for s in sources])
        status, _ = assoc.send_n_action(ds, 1, StorageCommitmentPushModel,
                                        StorageCommitmentPushModelInstance)
        print("N_ACTION 0x%04x" % (status.Status if status else 0xFFFF), flush=True)
        # The report may come on this association: give it a moment before releasing.
        done.wait(2)
        assoc.release()
        if not done.wait(30):
            sys.exit("no N-EVENT-REPORT within 30 s")
    finally:
        server.shutdown()


def main():
    cmd = sys.argv[1]
    if cmd == "commit":
        commit(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
