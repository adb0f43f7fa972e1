//! `dicomtap-proxy`: the live tokio proxy, the recorder (pcapng + JSON-lines event log)
//! and the Prometheus metrics endpoint.
