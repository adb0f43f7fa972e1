# A pynetdicom storage SCU: `store_scu.py PORT FILE...` associates with PYSCP (as PYSCU)
# on 127.0.0.1:PORT, proposing Verification and each file's SOP class in its own transfer
# syntax, sends a C-ECHO and then every file (C-STORE), printing each status
# ("ECHO 0x0000", "STORE 0x0000"), and releases.
import sys
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification

ae = AE(ae_title="PYSCU")
ae.add_requested_context(Verification)
datasets = [dcmread(f) for f in sys.argv[2:]]
seen = set()
for ds in datasets:
    key = (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    if key not in seen:
        seen.add(key)
        ae.add_requested_context(*key)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="PYSCP")
if not assoc.is_established:
    sys.exit("association not established")
print("ECHO 0x%04x" % assoc.send_c_echo().Status, flush=True)
for ds in datasets:
    print("STORE 0x%04x" % assoc.send_c_store(ds).Status, flush=True)
assoc.release()
