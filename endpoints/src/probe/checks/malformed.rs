//! `malformed` (disruptive): broken PDUs, command sets and data sets, each followed by a
//! C-ECHO on a fresh association to see whether the device survived. Every case records
//! the device's reaction (status, abort, close, silence).

use super::*;
use dicomtap_wire::encode::{self, Pdv};

/// Explicit VR Little Endian element header with a 2-byte length.
fn short_header(group: u16, element: u16, vr: &[u8; 2], len: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    h.extend_from_slice(&group.to_le_bytes());
    h.extend_from_slice(&element.to_le_bytes());
    h.extend_from_slice(vr);
    h.extend_from_slice(&len.to_le_bytes());
    h
}

/// Position of the element header (group, element, VR) in an explicit VR LE data set.
fn find_element(ds: &[u8], group: u16, element: u16, vr: &[u8; 2]) -> Option<usize> {
    let mut want = Vec::with_capacity(6);
    want.extend_from_slice(&group.to_le_bytes());
    want.extend_from_slice(&element.to_le_bytes());
    want.extend_from_slice(vr);
    ds.windows(6).position(|w| w == want.as_slice())
}

/// Study Description (0008,1030) LO replaced by the same value under VR "ZZ".
fn unknown_vr(ds: &[u8]) -> Vec<u8> {
    let mut out = ds.to_vec();
    if let Some(p) = find_element(&out, 0x0008, 0x1030, b"LO")
        && let Some(vr) = out.get_mut(p + 4..p + 6)
    {
        vr.copy_from_slice(b"ZZ");
    }
    out
}

/// Rows (0028,0010), a US, sent as FD (8 bytes).
fn wrong_vr(ds: &[u8]) -> Vec<u8> {
    let Some(p) = find_element(ds, 0x0028, 0x0010, b"US") else {
        return ds.to_vec();
    };
    let mut out = ds.get(..p).unwrap_or_default().to_vec();
    out.extend_from_slice(&short_header(0x0028, 0x0010, b"FD", 8));
    out.extend_from_slice(&8.0f64.to_le_bytes());
    out.extend_from_slice(ds.get(p + 10..).unwrap_or_default());
    out
}

/// Patient's Name (0010,0010) with a length far past the end of the data set.
fn length_past_end(ds: &[u8]) -> Vec<u8> {
    let mut out = ds.to_vec();
    if let Some(p) = find_element(&out, 0x0010, 0x0010, b"PN")
        && let Some(len) = out.get_mut(p + 6..p + 8)
    {
        len.copy_from_slice(&0xFFF0u16.to_le_bytes());
    }
    out
}

/// Referenced Image Sequence (0008,1140), undefined length, one undefined-length item,
/// and neither an item nor a sequence delimiter: the rest of the data set ends up inside.
fn open_sequence(ds: &[u8]) -> Vec<u8> {
    let at = find_element(ds, 0x0010, 0x0010, b"PN").unwrap_or(ds.len());
    let mut out = ds.get(..at).unwrap_or_default().to_vec();
    out.extend_from_slice(&[0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0]);
    out.extend_from_slice(&[0xFF; 4]);
    out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    out.extend_from_slice(&short_header(0x0008, 0x1150, b"UI", 6));
    out.extend_from_slice(b"1.2.3\0");
    out.extend_from_slice(ds.get(at..).unwrap_or_default());
    out
}

impl State<'_> {
    pub(super) fn malformed(&mut self) -> CheckResult {
        let mut table = Table {
            headers: vec![
                "case".into(),
                "device reaction".into(),
                "C-ECHO after".into(),
            ],
            rows: Vec::new(),
        };
        let mut down = 0;
        let cases: [(&str, MalformedCase); 11] = [
            ("truncated PDU (P-DATA-TF cut short, then close)", |s| {
                s.case_truncated()
            }),
            ("A-ASSOCIATE-RQ item length past the PDU end", |s| {
                s.case_bad_item_length()
            }),
            ("PDV item length larger than its PDU", |s| {
                s.case_bad_pdv_length()
            }),
            ("oversized PDU (beyond the device's max length)", |s| {
                s.case_oversized()
            }),
            ("unknown PDU type 0x0A", |s| s.case_unknown_pdu()),
            ("command element length past the command set", |s| {
                s.case_bad_command_length()
            }),
            ("unexpected VR/value (Command Field as text)", |s| {
                s.case_bad_command_value()
            }),
            (
                "C-STORE data set: unknown VR code \"ZZ\" (explicit VR)",
                |s| s.case_dataset(unknown_vr),
            ),
            ("C-STORE data set: Rows (US) sent with VR FD", |s| {
                s.case_dataset(wrong_vr)
            }),
            (
                "C-STORE data set: Patient's Name length past the end",
                |s| s.case_dataset(length_past_end),
            ),
            (
                "C-STORE data set: undefined-length sequence without delimiters",
                |s| s.case_dataset(open_sequence),
            ),
        ];
        let mut not_run = 0;
        for (i, (name, f)) in cases.into_iter().enumerate() {
            if name.starts_with("C-STORE") && !self.cfg.allow_writes {
                not_run += 1;
                continue;
            }
            self.cfg.progress(&format!(
                "malformed: case {} of 11, {name} (then a C-ECHO, waiting up to {:.0} s)",
                i + 1,
                self.cfg.timeout.as_secs_f64()
            ));
            let reaction = f(self).unwrap_or_else(|e| format!("error: {e}"));
            std::thread::sleep(Duration::from_millis(200));
            let echo = match self.echo_once() {
                Ok(_) => "Success".to_string(),
                Err(e) => {
                    // One retry after a pause: a restarting service counts as down.
                    std::thread::sleep(Duration::from_secs(1));
                    match self.echo_once() {
                        Ok(_) => format!("Success after a retry (first: {e})"),
                        Err(e) => {
                            down += 1;
                            format!("FAILED: {e}")
                        }
                    }
                }
            };
            table.rows.push(vec![name.to_string(), reaction, echo]);
        }
        let mut r = CheckResult::new(
            Check::Malformed,
            if down == 0 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            if down == 0 {
                format!(
                    "the device answered C-ECHO after each of {} malformed inputs",
                    table.rows.len()
                )
            } else {
                format!(
                    "the device did not answer C-ECHO after {down} of {} malformed inputs",
                    table.rows.len()
                )
            },
        );
        if not_run > 0 {
            r.details.push(format!(
                "{not_run} C-STORE data-set cases not run: they write to the device (--allow-writes)"
            ));
        }
        r.table = Some(table);
        r
    }

    /// A C-STORE of the probe's object in Explicit VR Little Endian, its data set passed
    /// through `mutate`; returns the status or what the device did instead.
    pub(super) fn case_dataset(&self, mutate: fn(&[u8]) -> Vec<u8>) -> Result<String, String> {
        let study_uid = crate::peers::study::new_uid();
        let obj = dataset::generate(&ObjectSpec {
            patient_name: format!("{}^MALFORMED", self.token),
            patient_id: format!("{}M", self.token),
            study_uid: study_uid.clone(),
            study_date: today(),
            transfer_syntax: EXPLICIT_LE.to_string(),
        });
        let rq = self
            .builder()
            .context(Proposal::new(&obj.sop_class_uid, &[EXPLICIT_LE]));
        let mut link = self.open(&rq).map_err(|e| e.to_string())?;
        let Some((pc, _)) = link.context_for(&obj.sop_class_uid, Some(EXPLICIT_LE)) else {
            link.abort();
            return Err("Secondary Capture in Explicit VR Little Endian not accepted".into());
        };
        let bytes = mutate(&obj.dataset);
        if bytes == obj.dataset {
            link.abort();
            return Err("the probe's object lacks the element this case changes".into());
        }
        let id = link.next_message_id();
        let mut cmd = request(field::C_STORE_RQ, id, &obj.sop_class_uid);
        cmd.affected_sop_instance = Some(obj.sop_instance_uid.clone());
        let wait = self.cfg.timeout.min(Duration::from_secs(10));
        match link.request(pc, &cmd, Some(&bytes), wait) {
            Ok(ex) => {
                if ex
                    .status()
                    .is_some_and(|s| StatusClass::of(s) != StatusClass::Failure)
                {
                    self.note_written(
                        Check::Malformed,
                        &study_uid,
                        &format!("{}M", self.token),
                        &format!("{}^MALFORMED", self.token),
                    );
                }
                let r = ex
                    .status()
                    .map(|s| format!("C-STORE-RSP {}", status_text(s, field::C_STORE_RSP)))
                    .unwrap_or_else(|| "C-STORE-RSP without status".into());
                self.finish(link);
                Ok(r)
            }
            Err(LinkError::Timeout(..)) => {
                link.abort();
                Ok(format!("no answer within {:.0} s", wait.as_secs_f64()))
            }
            Err(e) => Ok(e.to_string()),
        }
    }

    pub(super) fn echo_link(&self) -> Result<(Link, u8), String> {
        let rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]));
        let link = self.open(&rq).map_err(|e| e.to_string())?;
        let pc = link
            .context_for(VERIFICATION, None)
            .map(|c| c.0)
            .ok_or("Verification not accepted")?;
        Ok((link, pc))
    }

    pub(super) fn reaction(link: &mut Link) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        match link.next(deadline, "a reaction") {
            Ok(i) => i.describe(),
            Err(LinkError::Timeout(..)) => "nothing within 5 s".into(),
            Err(e) => e.to_string(),
        }
    }

    pub(super) fn case_truncated(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut bytes = Vec::new();
        let pdv = Pdv {
            pc_id: pc,
            command: true,
            last: true,
            data: &[0u8; 100],
        };
        encode::p_data(&mut bytes, &[pdv]).map_err(|e| e.to_string())?;
        bytes.truncate(30);
        link.send_raw(&bytes).map_err(|e| e.to_string())?;
        link.shutdown_write();
        Ok(Self::reaction(&mut link))
    }

    pub(super) fn case_bad_item_length(&self) -> Result<String, String> {
        let rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE]))
            .encode()
            .map_err(|e| e.to_string())?;
        let mut bytes = rq;
        // First item (application context) starts at 6 + 68; its length is at +2..+4.
        if let Some(l) = bytes.get_mut(76..78) {
            l.copy_from_slice(&0xFFF0u16.to_be_bytes());
        }
        let mut link = self.connect().map_err(|e| e.to_string())?;
        link.send_raw(&bytes).map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    pub(super) fn case_bad_pdv_length(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut body = Vec::new();
        body.extend_from_slice(&1000u32.to_be_bytes());
        body.push(pc);
        body.push(0x03);
        body.extend_from_slice(&[0u8; 14]);
        let mut bytes = Vec::new();
        encode::pdu(&mut bytes, 0x04, &body).map_err(|e| e.to_string())?;
        link.send_raw(&bytes).map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    pub(super) fn case_oversized(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let max = match link.peer_max_length {
            Some(0) | None => 4 << 20,
            Some(m) => (m as usize).min(64 << 20) + 4096,
        };
        let mut cmd = request(field::C_ECHO_RQ, 1, VERIFICATION);
        cmd.error_comment = Some("A".repeat(max));
        let bytes = dicomtap_wire::dimse::encode_command(&cmd);
        link.send_pdv(pc, true, true, &bytes)
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(format!("{} bytes in one PDU: {r}", bytes.len() + 12))
    }

    pub(super) fn case_unknown_pdu(&self) -> Result<String, String> {
        let (mut link, _) = self.echo_link()?;
        let mut bytes = Vec::new();
        encode::pdu(&mut bytes, 0x0A, &[0, 0, 0, 0]).map_err(|e| e.to_string())?;
        link.send_raw(&bytes).map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    pub(super) fn case_bad_command_length(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut bytes =
            dicomtap_wire::dimse::encode_command(&request(field::C_ECHO_RQ, 1, VERIFICATION));
        // (0000,0100) header: 00 00 00 01, then the 4-byte length.
        if let Some(pos) = bytes.windows(8).position(|w| w == [0, 0, 0, 1, 2, 0, 0, 0]) {
            if let Some(l) = bytes.get_mut(pos + 4..pos + 8) {
                l.copy_from_slice(&0x0001_0000u32.to_le_bytes());
            }
        }
        link.send_pdv(pc, true, true, &bytes)
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }

    pub(super) fn case_bad_command_value(&self) -> Result<String, String> {
        let (mut link, pc) = self.echo_link()?;
        let mut bytes =
            dicomtap_wire::dimse::encode_command(&request(field::C_ECHO_RQ, 1, VERIFICATION));
        if let Some(pos) = bytes.windows(8).position(|w| w == [0, 0, 0, 1, 2, 0, 0, 0]) {
            // Command Field value replaced by "ZZ".
            if let Some(v) = bytes.get_mut(pos + 8..pos + 10) {
                v.copy_from_slice(b"ZZ");
            }
        }
        link.send_pdv(pc, true, true, &bytes)
            .map_err(|e| e.to_string())?;
        let r = Self::reaction(&mut link);
        link.abort();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Vec<u8> {
        dataset::generate(&ObjectSpec {
            patient_name: "DOE^JOHN".into(),
            patient_id: "X".into(),
            study_uid: "1.2.3".into(),
            study_date: "20240101".into(),
            transfer_syntax: EXPLICIT_LE.into(),
        })
        .dataset
    }

    #[test]
    fn data_set_cases_change_what_they_say() {
        let ds = object();
        let zz = unknown_vr(&ds);
        assert_eq!(zz.len(), ds.len());
        assert!(find_element(&zz, 0x0008, 0x1030, b"ZZ").is_some());
        let fd = wrong_vr(&ds);
        assert_eq!(fd.len(), ds.len() + 6);
        assert!(find_element(&fd, 0x0028, 0x0010, b"FD").is_some());
        let long = length_past_end(&ds);
        let p = find_element(&long, 0x0010, 0x0010, b"PN").unwrap_or(0);
        assert_eq!(long.get(p + 6..p + 8), Some(&[0xF0, 0xFF][..]));
        assert!(0xFFF0 > long.len() - p);
        let open = open_sequence(&ds);
        assert_eq!(open.len(), ds.len() + 12 + 8 + 8 + 6);
        // Neither an item nor a sequence delimitation item anywhere.
        assert!(!open.windows(4).any(|w| w == [0xFE, 0xFF, 0x0D, 0xE0]));
        assert!(!open.windows(4).any(|w| w == [0xFE, 0xFF, 0xDD, 0xE0]));
    }
}
