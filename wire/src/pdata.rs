//! P-DATA-TF streaming: PDV items and their fragments, decoded as they arrive.
