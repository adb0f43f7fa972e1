//! PDU framing (PS3.8 9.3): the 6-byte header and the seven PDU types.
