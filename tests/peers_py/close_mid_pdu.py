"""A pynetdicom requestor that sends a C-STORE command and the first 100 bytes of its data
set PDU, then closes its direction of TCP in the middle of that PDU and prints what the
acceptor sent back. Usage: close_mid_pdu.py PORT CALLED_AE"""
import sys, socket, time
from io import BytesIO
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dimse_messages import C_STORE_RQ
port = int(sys.argv[1]); called = sys.argv[2]
ae = AE(ae_title="MIDCLOSE")
ae.add_requested_context(CTImageStorage)
assoc = ae.associate("127.0.0.1", port, ae_title=called)
assert assoc.is_established
cx = assoc.accepted_contexts[0].context_id
p = C_STORE(); p.MessageID = 1; p.AffectedSOPClassUID = CTImageStorage
p.AffectedSOPInstanceUID = "1.2.3.4.5"; p.Priority = 2
p.DataSet = BytesIO(b"\x08\x00\x16\x00" + (0).to_bytes(4, "little") + bytes(3992))
msg = C_STORE_RQ(); msg.primitive_to_message(p)
def pdu(prim):
    items = b"".join((len(v) + 1).to_bytes(4, "big") + bytes([c]) + v for c, v in prim.presentation_data_value_list)
    return bytes([4, 0]) + len(items).to_bytes(4, "big") + items
pdus = [pdu(q) for q in msg.encode_msg(cx, 16382)]
sock = assoc.dul.socket.socket
sock.sendall(pdus[0])
sock.sendall(pdus[1][:100])
time.sleep(0.2)
sock.shutdown(socket.SHUT_WR)
time.sleep(1.5)
print("acceptor sent", sock.recv(100).hex(), flush=True)
sock.close()
import os; os._exit(0)
