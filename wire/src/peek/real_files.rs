//! Tests on real Part-10 files from pydicom's test data (installed into the project's
//! virtual environment by `scripts/install-test-peers.sh`). The expected values were read
//! from the same files with pydicom (`pydicom.dcmread(path, stop_before_pixels=True)`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::text::kept_text;
use super::vr::is_short_form;
use super::*;
use crate::syntax::encoding_of;

/// pydicom's `data` directory. Missing test peers fail the test: a silent pass would
/// hide that the character set checks never met real data.
fn pydicom_data() -> PathBuf {
    let venv = std::env::var_os("DICOMTAP_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"),
        PathBuf::from,
    );
    let lib = venv.join("lib");
    let python = std::fs::read_dir(&lib).ok().and_then(|dir| {
        dir.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
        })
    });
    let data = python.map(|p| p.join("site-packages/pydicom/data"));
    match data {
        Some(data) if data.is_dir() => data,
        _ => panic!(
            "pydicom test data not found under {} (set DICOMTAP_VENV or run scripts/install-test-peers.sh)",
            venv.display()
        ),
    }
}

/// Splits a Part-10 file into its transfer syntax UID and the data set after the
/// (explicit VR little endian) group 0002 meta elements.
fn split_part10(file: &[u8]) -> Option<(String, &[u8])> {
    if file.get(128..132)? != b"DICM" {
        return None;
    }
    let mut pos = 132;
    let mut ts = None;
    while file.get(pos..pos + 2)? == [0x02, 0x00] {
        let element = u16::from_le_bytes(file.get(pos + 2..pos + 4)?.try_into().ok()?);
        let vr: [u8; 2] = file.get(pos + 4..pos + 6)?.try_into().ok()?;
        let (len, header) = if is_short_form(&vr) {
            let l = u16::from_le_bytes(file.get(pos + 6..pos + 8)?.try_into().ok()?);
            (usize::from(l), 8)
        } else {
            let l = u32::from_le_bytes(file.get(pos + 8..pos + 12)?.try_into().ok()?);
            (usize::try_from(l).ok()?, 12)
        };
        let value = file.get(pos + header..pos + header + len)?;
        if element == 0x0010 {
            ts = Some(kept_text(value));
        }
        pos += header + len;
    }
    Some((ts?, file.get(pos..)?))
}

fn load(dir: &str, name: &str) -> (String, Vec<u8>) {
    let path = pydicom_data().join(dir).join(name);
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (ts, data) = split_part10(&file).expect("a Part-10 file");
    (ts, data.to_vec())
}

fn peek_file(dir: &str, name: &str) -> DatasetPeek {
    let (ts, data) = load(dir, name);
    peek_dataset(&data, encoding_of(&ts), true)
}

/// Replaces the value of the top-level (0008,0005) in an explicit VR little endian
/// data set by `term` (same length), as a device mis-declaring its text would.
fn redeclare(data: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut header = vec![0x08, 0x00, 0x05, 0x00, b'C', b'S'];
    header.extend_from_slice(&u16::try_from(from.len()).unwrap().to_le_bytes());
    header.extend_from_slice(from.as_bytes());
    let at = data
        .windows(header.len())
        .position(|w| w == header)
        .expect("(0008,0005) with the expected value");
    data[at + 8..at + 8 + to.len()].copy_from_slice(to.as_bytes());
}

#[test]
fn declared_character_sets_of_real_files() {
    // (file, declared value as pydicom reads it): all of these are valid in their set.
    for (name, declared) in [
        ("chrFren.dcm", "ISO_IR 100"),
        ("chrGerm.dcm", "ISO_IR 100"),
        ("chrArab.dcm", "ISO_IR 127"),
        ("chrGreek.dcm", "ISO_IR 126"),
        ("chrHbrw.dcm", "ISO_IR 138"),
        ("chrRuss.dcm", "ISO_IR 144"),
        ("chrX1.dcm", "ISO_IR 192"),
        ("chrX2.dcm", "GB18030"),
    ] {
        let p = peek_file("charset_files", name);
        assert_eq!(p.error, None, "{name}");
        assert_eq!(
            p.specific_character_set,
            vec![declared.to_owned()],
            "{name}"
        );
        assert!(p.unchecked_character_sets.is_empty(), "{name}");
        assert_eq!(p.invalid_text, vec![], "{name}");
    }
    // ISO 2022 code extensions (escape sequences into JIS X 0208) are not checked.
    let p = peek_file("charset_files", "chrJapMulti.dcm");
    assert_eq!(
        p.specific_character_set,
        vec![String::new(), "ISO 2022 IR 87".to_owned()]
    );
    assert_eq!(
        p.unchecked_character_sets,
        vec!["ISO 2022 IR 87".to_owned()]
    );
    assert_eq!(p.invalid_text, vec![]);
}

#[test]
fn mis_declared_character_sets_are_invalid() {
    // chrFren.dcm: PatientName "Buc^Jérôme" in Latin-1, declared as UTF-8.
    let (_, mut data) = load("charset_files", "chrFren.dcm");
    redeclare(&mut data, "ISO_IR 100", "ISO_IR 192");
    let p = peek_dataset(&data, Encoding::ExplicitVrLittleEndian, true);
    assert_eq!(p.error, None);
    let name = p
        .invalid_text
        .iter()
        .find(|t| t.tag == "(0010,0010)")
        .unwrap();
    assert_eq!(name.vr, "PN");
    assert_eq!(name.byte_offset, 5);
    assert!(name.reason.contains("not valid UTF-8"), "{}", name.reason);

    // chrX1.dcm: PatientName "Wang^XiaoDong=王^小東" in UTF-8, declared as Latin-1.
    let (_, mut data) = load("charset_files", "chrX1.dcm");
    redeclare(&mut data, "ISO_IR 192", "ISO_IR 100");
    let p = peek_dataset(&data, Encoding::ExplicitVrLittleEndian, true);
    let name = p
        .invalid_text
        .iter()
        .find(|t| t.tag == "(0010,0010)")
        .unwrap();
    assert_eq!(name.reason, "looks like UTF-8 under ISO_IR 100");
    assert_eq!(name.byte_offset, "Wang^XiaoDong=".len());
}

#[test]
fn deflated_real_file() {
    let (ts, data) = load("test_files", "image_dfl.dcm");
    assert_eq!(encoding_of(&ts), Encoding::DeflatedExplicitVrLittleEndian);
    let p = peek_dataset(&data, encoding_of(&ts), true);
    assert_eq!(p.error, None);
    assert!(!p.truncated);
    assert_eq!(
        p.sop_instance_uid.as_deref(),
        Some("1.3.6.1.4.1.5962.1.1.0.0.0.977067309.6001.0")
    );
    assert_eq!(p.modality.as_deref(), Some("OT"));
    // The first PDV of a C-STORE carries a prefix of the stream: same header facts.
    let p = peek_dataset(&data[..data.len().min(300)], encoding_of(&ts), false);
    assert_eq!(p.error, None);
    assert_eq!(
        p.sop_instance_uid.as_deref(),
        Some("1.3.6.1.4.1.5962.1.1.0.0.0.977067309.6001.0")
    );
}

#[test]
fn encapsulated_real_file() {
    let (ts, data) = load("test_files", "JPEG-lossy.dcm");
    assert_eq!(ts, "1.2.840.10008.1.2.4.51");
    let p = peek_dataset(&data, encoding_of(&ts), true);
    assert_eq!(p.error, None);
    assert_eq!(
        p.sop_instance_uid.as_deref(),
        Some("1.3.6.1.4.1.5962.1.1.8.1.5.20040826185059.5457")
    );
    assert_eq!(p.modality.as_deref(), Some("NM"));
    let creators: Vec<_> = p
        .private_creators
        .iter()
        .map(|c| (c.group, c.block, c.creator.as_str()))
        .collect();
    assert_eq!(
        creators,
        [
            (0x0009, 0x10, "GEMS_GENIE_1"),
            (0x0011, 0x10, "GEMS_GENIE_1"),
            (0x0013, 0x10, "GEMS_GENIE_1"),
        ]
    );
    // Stopped at Pixel Data, whose fragments were not looked at.
    assert!(p.examined < data.len());
    assert_eq!(
        data.get(p.examined..p.examined + 4),
        Some(&[0xE0, 0x7F, 0x10, 0x00][..])
    );
}

#[test]
fn implicit_data_set_under_explicit_syntax() {
    // SC_rgb_jpeg.dcm declares JPEG Baseline but its data set is Implicit VR.
    let p = peek_file("test_files", "SC_rgb_jpeg.dcm");
    assert_eq!(p.error, None);
    assert_eq!(p.encoding_found, Some(Encoding::ImplicitVrLittleEndian));
    assert_eq!(
        p.sop_instance_uid.as_deref(),
        Some("1.2.826.0.1.3680043.8.498.13002811185086637637347356263722492924")
    );
}

/// Every Part-10 file of pydicom's test data, peeked, against what pydicom reads.
#[test]
fn every_real_file_agrees_with_pydicom() {
    let data = pydicom_data();
    let script = r#"
import os, sys, warnings
warnings.simplefilter("ignore")
import pydicom
root = sys.argv[1]
for d in ("charset_files", "test_files"):
    for name in sorted(os.listdir(os.path.join(root, d))):
        if not name.endswith(".dcm"):
            continue
        try:
            ds = pydicom.dcmread(os.path.join(root, d, name), stop_before_pixels=True)
        except Exception:
            continue
        cs = ds.get("SpecificCharacterSet", "")
        cs = "\\".join(cs) if isinstance(cs, (list, pydicom.multival.MultiValue)) else cs
        print("\t".join([d + "/" + name, str(ds.get("SOPClassUID", "")),
                         str(ds.get("SOPInstanceUID", "")), str(ds.get("Modality", "")), cs]))
"#;
    // <venv>/lib/python3.x/site-packages/pydicom/data
    let venv = data.ancestors().nth(5).unwrap().to_path_buf();
    let out = std::process::Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&data)
        .output()
        .expect("run pydicom");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut compared = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [path, class, instance, modality, charset] = f[..] else {
            panic!("bad line {line}");
        };
        let file = std::fs::read(data.join(path)).unwrap();
        let Some((ts, set)) = split_part10(&file) else {
            continue;
        };
        let p = peek_dataset(set, encoding_of(&ts), true);
        if path.ends_with("rtplan_truncated.dcm") {
            // Really truncated: the peek says where.
            assert_eq!(
                p.error.as_deref(),
                Some(
                    "bad element length at offset 1110: (300A,00B0) declares 976 bytes, 711 remain"
                )
            );
        } else {
            assert_eq!(p.error, None, "{path}");
            assert!(!p.truncated, "{path}");
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        assert_eq!(p.sop_class_uid, opt(class), "{path}");
        assert_eq!(p.sop_instance_uid, opt(instance), "{path}");
        assert_eq!(p.modality, opt(modality), "{path}");
        assert_eq!(p.specific_character_set.join("\\"), charset, "{path}");
        // pydicom's own test files are valid in their declared sets.
        assert_eq!(p.invalid_text, vec![], "{path}");
        compared += 1;
    }
    assert!(compared > 80, "only {compared} files compared");
}
