"""A pynetdicom storage and verification SCP that answers every C-ECHO and C-STORE with a
failure (C000, A700) whose Error Comment is made of terminal escape sequences. For at
most SECONDS. Usage: hostile_scp.py PORT SECONDS"""
import sys, threading
from pydicom import config
from pydicom.dataset import Dataset
from pynetdicom import AE, evt, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification
config.settings.writing_validation_mode = config.WARN
port = int(sys.argv[1]); seconds = float(sys.argv[2])
COMMENT = "\x1b[31mBAD\x1b]0;T\x07"
def status(code):
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = COMMENT
    return ds
ae = AE(ae_title="STORESCP")
ae.add_supported_context(Verification)
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax)
handlers = [(evt.EVT_C_ECHO, lambda e: status(0xC000)), (evt.EVT_C_STORE, lambda e: status(0xA700))]
server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
print("listening", flush=True)
threading.Event().wait(seconds)
server.shutdown()
