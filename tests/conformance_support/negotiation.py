"""pynetdicom peers for the negotiation conformance tests (tests/conformance/negotiation/).

Each command takes one JSON argument.

  scu {"port", "called", "calling", "contexts": [[SOP, [TS...]]...],
       "roles": [[SOP, SCU, SCP]...],          SCP/SCU role selection items (0x54)
       "ext": [[SOP, HEX]...],                 SOP class extended negotiation (0x56)
       "common": [[SOP, SERVICE, [RELATED...]]...]   common extended negotiation (0x57)
       "async": [INVOKED, PERFORMED],          asynchronous operations window (0x53)
       "user": [TYPE, PRIMARY, SECONDARY, POSITIVE_RESPONSE],   user identity (0x58)
       "count": N,                             simultaneous associations (default 1)
       "hold": SECONDS}                        keep them open this long (default 0)
      Opens the associations, prints "established I" (or "rejected I") for each, then
      "held" once all are open, sends a C-ECHO on each when Verification was accepted,
      waits, and releases them.
  scp {"port", "ae", "contexts": [SOP...],     what it accepts (any uncompressed TS)
       "roles": [[SOP, SCU_ROLE, SCP_ROLE]...], role selection it accepts
       "ext_reply": {SOP: HEX},                its 0x56 answers
       "async": true,                          answers the 0x53 item (pynetdicom: 1, 1)
       "user_id": true,                        accepts user identity, answers a response
       "require_calling": [TITLE...]}          rejects other calling AE titles (reason 3)
      Prints "listening" and serves until killed.
"""
import json
import sys
import time

from pynetdicom import AE, evt, sop_class
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"]
VERIFICATION = "1.2.840.10008.1.1"


def uid(name):
    """A UID, or the UID of a pynetdicom SOP class name (DICOM keywords)."""
    return name if name[:1].isdigit() else str(getattr(sop_class, name))


def ext_items(spec):
    items = []
    for sop, scu, scp in spec.get("roles", []):
        r = SCP_SCU_RoleSelectionNegotiation()
        r.sop_class_uid = uid(sop)
        r.scu_role = bool(scu)
        r.scp_role = bool(scp)
        items.append(r)
    for sop, info in spec.get("ext", []):
        x = SOPClassExtendedNegotiation()
        x.sop_class_uid = uid(sop)
        x.service_class_application_information = bytes.fromhex(info)
        items.append(x)
    for sop, service, related in spec.get("common", []):
        x = SOPClassCommonExtendedNegotiation()
        x.sop_class_uid = uid(sop)
        x.service_class_uid = service
        x.related_general_sop_class_identification = [uid(r) for r in related]
        items.append(x)
    if "async" in spec:
        a = AsynchronousOperationsWindowNegotiation()
        a.maximum_number_operations_invoked = spec["async"][0]
        a.maximum_number_operations_performed = spec["async"][1]
        items.append(a)
    if "user" in spec:
        kind, primary, secondary, positive = spec["user"]
        u = UserIdentityNegotiation()
        u.user_identity_type = kind
        u.primary_field = primary.encode()
        if secondary:
            u.secondary_field = secondary.encode()
        u.positive_response_requested = bool(positive)
        items.append(u)
    return items


def scu(spec):
    ae = AE(ae_title=spec["calling"])
    ae.acse_timeout = 10
    ae.network_timeout = 10
    for sop, ts in spec["contexts"]:
        ae.add_requested_context(uid(sop), ts)
    assocs = []
    for i in range(spec.get("count", 1)):
        assoc = ae.associate("127.0.0.1", spec["port"], ae_title=spec["called"],
                             ext_neg=ext_items(spec))
        if assoc.is_established:
            print("established", i, flush=True)
            assocs.append(assoc)
        else:
            print("rejected", i, flush=True)
    print("held", flush=True)
    for assoc in assocs:
        if any(cx.abstract_syntax == VERIFICATION for cx in assoc.accepted_contexts):
            rsp = assoc.send_c_echo()
            print("echo", rsp.Status if rsp else None, flush=True)
    time.sleep(spec.get("hold", 0))
    for assoc in assocs:
        assoc.release()
    print("done", flush=True)


def scp(spec):
    ae = AE(ae_title=spec["ae"])
    if spec.get("require_calling"):
        ae.require_calling_aet = spec["require_calling"]
    roles = {uid(sop): (scu, scp) for sop, scu, scp in spec.get("roles", [])}
    for sop in map(uid, spec["contexts"]):
        if sop in roles:
            ae.add_supported_context(sop, UNCOMPRESSED, scu_role=roles[sop][0],
                                     scp_role=roles[sop][1])
        else:
            ae.add_supported_context(sop, UNCOMPRESSED)
    handlers = [(evt.EVT_C_ECHO, lambda event: 0x0000),
                (evt.EVT_C_STORE, lambda event: 0x0000)]
    replies = {uid(k): v for k, v in spec.get("ext_reply", {}).items()}
    if replies:
        def on_extended(event):
            return {sop: bytes.fromhex(replies[sop]) for sop in event.app_info if sop in replies}
        handlers.append((evt.EVT_SOP_EXTENDED, on_extended))
    if spec.get("async"):
        handlers.append((evt.EVT_ASYNC_OPS, lambda event: (1, 1)))
    if spec.get("user_id"):
        handlers.append((evt.EVT_USER_ID, lambda event: (True, b"granted")))
    print("listening", flush=True)
    ae.start_server(("127.0.0.1", spec["port"]), block=True, evt_handlers=handlers)


if __name__ == "__main__":
    {"scu": scu, "scp": scp}[sys.argv[1]](json.loads(sys.argv[2]))
