//! PDU framing (PS3.8 9.3): the 6-byte header, the seven PDU types, and the plausibility
//! test used to find a PDU boundary again after a gap.

use serde::Serialize;

/// Length of every PDU header: type, reserved, 32-bit big-endian length.
pub const HEADER_LEN: usize = 6;

/// The seven PDU types of PS3.8 Table 9-1 (and anything else, kept as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PduType {
    AssociateRq,
    AssociateAc,
    AssociateRj,
    PData,
    ReleaseRq,
    ReleaseRp,
    Abort,
    Unknown(u8),
}

impl PduType {
    pub fn from_byte(b: u8) -> PduType {
        match b {
            0x01 => PduType::AssociateRq,
            0x02 => PduType::AssociateAc,
            0x03 => PduType::AssociateRj,
            0x04 => PduType::PData,
            0x05 => PduType::ReleaseRq,
            0x06 => PduType::ReleaseRp,
            0x07 => PduType::Abort,
            other => PduType::Unknown(other),
        }
    }

    /// Short name, as in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            PduType::AssociateRq => "A-ASSOCIATE-RQ",
            PduType::AssociateAc => "A-ASSOCIATE-AC",
            PduType::AssociateRj => "A-ASSOCIATE-RJ",
            PduType::PData => "P-DATA-TF",
            PduType::ReleaseRq => "A-RELEASE-RQ",
            PduType::ReleaseRp => "A-RELEASE-RP",
            PduType::Abort => "A-ABORT",
            PduType::Unknown(_) => "UNKNOWN",
        }
    }
}

/// A parsed PDU header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduHeader {
    pub pdu_type: PduType,
    pub raw_type: u8,
    pub reserved: u8,
    /// Length of what follows the header.
    pub length: u32,
}

impl PduHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> PduHeader {
        PduHeader {
            pdu_type: PduType::from_byte(b[0]),
            raw_type: b[0],
            reserved: b[1],
            length: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
        }
    }
}

/// How many bytes [`plausible_boundary`] wants to look at.
pub const RESYNC_WINDOW: usize = 12;

/// Whether `w` (at least [`RESYNC_WINDOW`] bytes, or fewer at the end of a stream) looks
/// like the start of a PDU. Strict on purpose: after a gap, decoding garbage as DICOM is
/// worse than skipping a little more.
pub fn plausible_boundary(w: &[u8]) -> bool {
    if w.len() < HEADER_LEN || w[1] != 0 {
        return false;
    }
    let len = u32::from_be_bytes([w[2], w[3], w[4], w[5]]);
    match w[0] {
        0x01 | 0x02 => {
            (68..=1 << 20).contains(&len)
                && w.get(6..8).is_none_or(|v| v == [0, 1])
                && w.get(8..10).is_none_or(|v| v == [0, 0])
        }
        // Ten-byte PDUs: check their fields, and that another PDU header follows.
        0x03 => {
            len == 4
                && w.get(6..10).is_none_or(|v| {
                    v[0] == 0 && (1..=2).contains(&v[1]) && (1..=3).contains(&v[2]) && v[3] <= 7
                })
                && next_header_plausible(w)
        }
        0x05 | 0x06 => {
            len == 4 && w.get(6..10).is_none_or(|v| v == [0, 0, 0, 0]) && next_header_plausible(w)
        }
        0x07 => {
            len == 4
                && w.get(6..10)
                    .is_none_or(|v| v[0] == 0 && v[1] == 0 && (v[2] == 0 || v[2] == 2) && v[3] <= 6)
                && next_header_plausible(w)
        }
        0x04 => {
            if len < 6 {
                return false;
            }
            let Some(item) = w.get(6..12) else {
                return true;
            };
            let item_len = u32::from_be_bytes([item[0], item[1], item[2], item[3]]);
            item_len >= 2 && item_len <= len - 4 && item[4] % 2 == 1 && item[5] <= 3
        }
        _ => false,
    }
}

/// After a ten-byte PDU at the start of `w`, the next PDU's type and reserved byte.
fn next_header_plausible(w: &[u8]) -> bool {
    w.get(10..12)
        .is_none_or(|n| (1..=7).contains(&n[0]) && n[1] == 0)
}

/// Words for an A-ASSOCIATE-RJ (PS3.8 Table 9-21).
pub fn reject_description(result: u8, source: u8, reason: u8) -> (String, bool) {
    let result_s = match result {
        1 => "rejected-permanent",
        2 => "rejected-transient",
        _ => "result-unknown",
    };
    let (source_s, reason_s) = match (source, reason) {
        (1, 1) => ("service-user", Some("no-reason-given")),
        (1, 2) => (
            "service-user",
            Some("application-context-name-not-supported"),
        ),
        (1, 3) => ("service-user", Some("calling-AE-title-not-recognized")),
        (1, 7) => ("service-user", Some("called-AE-title-not-recognized")),
        (1, _) => ("service-user", None),
        (2, 1) => ("service-provider-acse", Some("no-reason-given")),
        (2, 2) => (
            "service-provider-acse",
            Some("protocol-version-not-supported"),
        ),
        (2, _) => ("service-provider-acse", None),
        (3, 1) => (
            "service-provider-presentation",
            Some("temporary-congestion"),
        ),
        (3, 2) => (
            "service-provider-presentation",
            Some("local-limit-exceeded"),
        ),
        (3, _) => ("service-provider-presentation", None),
        _ => ("source-unknown", None),
    };
    let known = reason_s.is_some() && result_s != "result-unknown";
    let reason_text = reason_s.map_or_else(|| format!("reason-{reason}"), str::to_string);
    (format!("{result_s}, {source_s}: {reason_text}"), known)
}

/// Words for an A-ABORT (PS3.8 Table 9-26).
pub fn abort_description(source: u8, reason: u8) -> (String, bool) {
    match source {
        0 => ("service-user".to_string(), true),
        1 => (format!("reserved-source-1, reason {reason}"), false),
        2 => {
            let r = match reason {
                0 => Some("reason-not-specified"),
                1 => Some("unrecognized-PDU"),
                2 => Some("unexpected-PDU"),
                4 => Some("unrecognized-PDU-parameter"),
                5 => Some("unexpected-PDU-parameter"),
                6 => Some("invalid-PDU-parameter-value"),
                _ => None,
            };
            match r {
                Some(r) => (format!("service-provider: {r}"), true),
                None => (format!("service-provider: reason-{reason}"), false),
            }
        }
        _ => (format!("source-{source}: reason-{reason}"), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_accepts_real_headers_and_rejects_noise() {
        let rq = [1, 0, 0, 0, 2, 0xA5, 0, 1, 0, 0, b'A', b'B'];
        assert!(plausible_boundary(&rq));
        let pdata = [4, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x0A, 1, 3];
        assert!(plausible_boundary(&pdata));
        let even_pc = [4, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x0A, 2, 3];
        assert!(!plausible_boundary(&even_pc));
        let release = [5, 0, 0, 0, 0, 4, 0, 0, 0, 0, 6, 0];
        assert!(plausible_boundary(&release));
        assert!(!plausible_boundary(&[
            0x08, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0
        ]));
        assert!(!plausible_boundary(&[
            0x01, 0, 0xFF, 0, 0, 4, 0, 1, 0, 0, 0, 0
        ]));
    }

    #[test]
    fn reject_words() {
        let (d, known) = reject_description(1, 1, 3);
        assert_eq!(
            d,
            "rejected-permanent, service-user: calling-AE-title-not-recognized"
        );
        assert!(known);
        let (d, known) = reject_description(2, 3, 9);
        assert_eq!(
            d,
            "rejected-transient, service-provider-presentation: reason-9"
        );
        assert!(!known);
    }
}
