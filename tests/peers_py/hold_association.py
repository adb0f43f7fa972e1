"""A pynetdicom requestor that establishes an association (Verification) and holds it open
without sending anything more, for at most SECONDS; prints "established" once the
A-ASSOCIATE-AC is in, then how the association ended. Usage: hold_association.py PORT
CALLED_AE SECONDS"""
import sys, time
from pynetdicom import AE
from pynetdicom.sop_class import Verification
port = int(sys.argv[1]); called = sys.argv[2]; seconds = float(sys.argv[3])
ae = AE(ae_title="HOLDER")
ae.add_requested_context(Verification)
assoc = ae.associate("127.0.0.1", port, ae_title=called)
if not assoc.is_established:
    print("not established", flush=True)
    sys.exit(1)
print("established", flush=True)
end = time.monotonic() + seconds
while assoc.is_alive() and time.monotonic() < end:
    time.sleep(0.05)
print("aborted" if assoc.is_aborted else ("still open" if assoc.is_alive() else "ended"), flush=True)
if assoc.is_alive():
    assoc.release()
