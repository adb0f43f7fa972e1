"""What the pynetdicom peers of the conformance tests share (imported by peers.py,
data.py and bundled.py, which the tests write next to it)."""
import sys

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, StoragePresentationContexts, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel

# The well-known SOP Instance UID of the Storage Commitment Push Model.
INSTANCE = "1.2.840.10008.1.20.1.1"


def associate(ae, port, called, **kwargs):
    """An established association with `called` at 127.0.0.1:`port`, or exit 1."""
    assoc = ae.associate("127.0.0.1", port, ae_title=called, **kwargs)
    if not assoc.is_established:
        print("association failed", flush=True)
        sys.exit(1)
    return assoc


def commitment_scp_ae(title):
    """An AE accepting every storage SOP class and the Storage Commitment Push Model."""
    ae = AE(ae_title=title)
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax)
    ae.add_supported_context(StorageCommitmentPushModel)
    return ae


def referenced(info):
    """The (SOP class, SOP instance) pairs of an N-ACTION's Referenced SOP Sequence."""
    return [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in info.ReferencedSOPSequence]


def sop_items(refs, failure_reason=None):
    """Items of a Referenced or Failed SOP Sequence for the (class, instance) pairs."""
    items = []
    for cls, inst in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = inst
        if failure_reason is not None:
            item.FailureReason = failure_reason
        items.append(item)
    return items


def report_on_new_association(ds, report_port, event_type):
    """Sends the N-EVENT-REPORT `ds` from "ARCHIVE" on a new association to
    127.0.0.1:`report_port` called "MODALITY"."""
    out = AE(ae_title="ARCHIVE")
    out.add_requested_context(StorageCommitmentPushModel)
    role = build_role(StorageCommitmentPushModel, scp_role=True)
    assoc = out.associate("127.0.0.1", report_port, ae_title="MODALITY", ext_neg=[role])
    if assoc.is_established:
        rsp, _ = assoc.send_n_event_report(ds, event_type, StorageCommitmentPushModel, INSTANCE)
        print("report answered", rsp.Status if rsp else None, flush=True)
        assoc.release()
    else:
        print("report association failed", flush=True)


def request_commitment(assoc, ds):
    """Stores `ds` on `assoc` and requests its commitment with one N-ACTION."""
    rsp = assoc.send_c_store(ds)
    print("stored", rsp.Status if rsp else None, flush=True)
    action = Dataset()
    action.TransactionUID = generate_uid()
    action.ReferencedSOPSequence = sop_items([(ds.SOPClassUID, ds.SOPInstanceUID)])
    rsp, _ = assoc.send_n_action(action, 1, StorageCommitmentPushModel, INSTANCE)
    print("commitment requested", rsp.Status if rsp else None, flush=True)
