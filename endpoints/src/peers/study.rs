//! A small synthetic study for the demo and the tests: one patient, one study, a CT series
//! of a few 64x64 16-bit slices (Explicit VR Little Endian) and a Secondary Capture
//! series (Implicit VR Little Endian), so both uncompressed syntaxes cross the proxy.
//!
//! Every object declares Specific Character Set ISO_IR 192 (UTF-8); the Secondary Capture
//! series carries an accented Referring Physician's Name, so the charset checks have a
//! non-ASCII value to look at and should find nothing wrong with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dicom_core::value::C;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use super::{EXPLICIT_VR_LE, EncodedObject, IMPLICIT_VR_LE, PeerError, transfer_syntax};

/// What to generate.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    pub patient_name: String,
    pub patient_id: String,
    /// Number of CT slices (the Secondary Capture series always has one image).
    pub ct_slices: usize,
    /// Rows and columns of every image.
    pub size: u16,
}

impl Default for StudyOptions {
    fn default() -> Self {
        StudyOptions {
            patient_name: "DEMO^PATIENT".into(),
            patient_id: "DEMO-0001".into(),
            ct_slices: 3,
            size: 64,
        }
    }
}

/// The generated study: its UID and its objects, encoded and ready to send.
#[derive(Debug, Clone)]
pub struct Study {
    pub study_instance_uid: String,
    pub objects: Vec<EncodedObject>,
}

/// Name with non-ASCII letters, encoded as UTF-8 under ISO_IR 192.
pub const ACCENTED_NAME: &str = "Müller^Jürgen";

static UID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh UID under the 2.25 arc (PS3.5 B.2): the decimal form of a 128-bit value laid
/// out as a version-4 UUID. The bits come from the clock, the process ID and a counter,
/// mixed with splitmix64, so UIDs differ between runs and processes without needing a
/// random-number or UUID crate.
pub fn new_uid() -> String {
    fn splitmix64(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = UID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = (nanos as u64) ^ ((nanos >> 64) as u64) ^ (u64::from(std::process::id()) << 32);
    let hi = splitmix64(seed ^ count.rotate_left(17));
    let lo = splitmix64(hi ^ count ^ 0xD1B5_4A32_D192_ED03);
    let mut v = (u128::from(hi) << 64) | u128::from(lo);
    // Version 4 in bits 76..80, RFC 4122 variant (0b10) in bits 62..64.
    v = (v & !(0xF_u128 << 76)) | (0x4_u128 << 76);
    v = (v & !(0x3_u128 << 62)) | (0x2_u128 << 62);
    format!("2.25.{v}")
}

/// Today's date and time as DICOM DA and TM values, in UTC (the demo has no time zone
/// to be right about, and UTC keeps the output reproducible across machines).
fn now_da_tm() -> (String, String) {
    let now = dicomtap_analyzer::text::UtcTime::now();
    (now.da(), now.tm())
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_strs(obj: &mut InMemDicomObject, tag: Tag, vr: VR, values: &[&str]) {
    let values: C<String> = values.iter().map(|s| (*s).to_string()).collect();
    obj.put(DataElement::new(tag, vr, PrimitiveValue::Strs(values)));
}

fn put_us(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

/// Attributes every object of the study shares (patient, study, general equipment).
struct Common<'a> {
    opts: &'a StudyOptions,
    study_uid: &'a str,
    date: &'a str,
    time: &'a str,
}

impl Common<'_> {
    fn base(&self, sop_class: &str, sop_instance: &str) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        put_str(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, sop_class);
        put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
        put_str(&mut o, tags::STUDY_DATE, VR::DA, self.date);
        put_str(&mut o, tags::STUDY_TIME, VR::TM, self.time);
        put_str(&mut o, tags::CONTENT_DATE, VR::DA, self.date);
        put_str(&mut o, tags::CONTENT_TIME, VR::TM, self.time);
        put_str(&mut o, tags::ACCESSION_NUMBER, VR::SH, "DEMO0001");
        put_str(&mut o, tags::MANUFACTURER, VR::LO, "dicomtap");
        put_str(&mut o, tags::INSTITUTION_NAME, VR::LO, "dicomtap demo");
        put_str(
            &mut o,
            tags::STUDY_DESCRIPTION,
            VR::LO,
            "dicomtap demo study",
        );
        put_str(&mut o, tags::PATIENT_NAME, VR::PN, &self.opts.patient_name);
        put_str(&mut o, tags::PATIENT_ID, VR::LO, &self.opts.patient_id);
        put_str(&mut o, tags::PATIENT_BIRTH_DATE, VR::DA, "19700101");
        put_str(&mut o, tags::PATIENT_SEX, VR::CS, "O");
        put_str(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, self.study_uid);
        put_str(&mut o, tags::STUDY_ID, VR::SH, "1");
        o
    }
}

fn encode(obj: &InMemDicomObject, ts_uid: &str) -> Result<Vec<u8>, PeerError> {
    let ts = transfer_syntax(ts_uid)
        .ok_or_else(|| PeerError::Encode(format!("unsupported transfer syntax {ts_uid}")))?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| PeerError::Encode(e.to_string()))?;
    Ok(out)
}

/// A round water phantom in air with a small dense insert, in stored values
/// (HU + 1024, so 12 bits hold it).
fn ct_pixels(size: u16, slice: usize) -> Vec<u16> {
    let n = f32::from(size);
    let c = n / 2.0;
    let r_body = n * 0.4;
    let r_insert = n * 0.08;
    let insert_x = c + n * 0.15 + slice as f32;
    let mut px = Vec::with_capacity(usize::from(size) * usize::from(size));
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (f32::from(x) + 0.5, f32::from(y) + 0.5);
            let d_body = ((fx - c).powi(2) + (fy - c).powi(2)).sqrt();
            let d_ins = ((fx - insert_x).powi(2) + (fy - c).powi(2)).sqrt();
            let hu: i32 = if d_ins < r_insert {
                1000
            } else if d_body < r_body {
                40
            } else {
                -1000
            };
            px.push((hu + 1024) as u16);
        }
    }
    px
}

/// Generates the study.
pub fn generate(opts: &StudyOptions) -> Result<Study, PeerError> {
    let (date, time) = now_da_tm();
    let study_uid = new_uid();
    let common = Common {
        opts,
        study_uid: &study_uid,
        date: &date,
        time: &time,
    };
    let size = opts.size.max(1);
    let mut objects = Vec::with_capacity(opts.ct_slices + 1);

    // Series 1: CT, Explicit VR Little Endian.
    let ct_series = new_uid();
    let frame_of_reference = new_uid();
    for slice in 0..opts.ct_slices {
        let sop_instance = new_uid();
        let mut o = common.base(uids::CT_IMAGE_STORAGE, &sop_instance);
        put_strs(
            &mut o,
            tags::IMAGE_TYPE,
            VR::CS,
            &["ORIGINAL", "PRIMARY", "AXIAL"],
        );
        put_str(&mut o, tags::MODALITY, VR::CS, "CT");
        put_str(&mut o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
        put_str(
            &mut o,
            tags::SERIES_DESCRIPTION,
            VR::LO,
            "Synthetic phantom",
        );
        put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &ct_series);
        put_str(&mut o, tags::SERIES_NUMBER, VR::IS, "1");
        put_str(
            &mut o,
            tags::INSTANCE_NUMBER,
            VR::IS,
            &(slice + 1).to_string(),
        );
        put_str(
            &mut o,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            &frame_of_reference,
        );
        put_str(&mut o, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
        put_str(&mut o, tags::KVP, VR::DS, "120");
        put_str(&mut o, tags::SLICE_THICKNESS, VR::DS, "5");
        let z = format!("{}", slice as i64 * 5);
        put_strs(
            &mut o,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            &["-160", "-160", &z],
        );
        put_strs(
            &mut o,
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            &["1", "0", "0", "0", "1", "0"],
        );
        put_str(&mut o, tags::SLICE_LOCATION, VR::DS, &z);
        put_us(&mut o, tags::SAMPLES_PER_PIXEL, 1);
        put_str(
            &mut o,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        put_us(&mut o, tags::ROWS, size);
        put_us(&mut o, tags::COLUMNS, size);
        put_strs(&mut o, tags::PIXEL_SPACING, VR::DS, &["5", "5"]);
        put_us(&mut o, tags::BITS_ALLOCATED, 16);
        put_us(&mut o, tags::BITS_STORED, 12);
        put_us(&mut o, tags::HIGH_BIT, 11);
        put_us(&mut o, tags::PIXEL_REPRESENTATION, 0);
        put_str(&mut o, tags::RESCALE_INTERCEPT, VR::DS, "-1024");
        put_str(&mut o, tags::RESCALE_SLOPE, VR::DS, "1");
        put_str(&mut o, tags::RESCALE_TYPE, VR::LO, "HU");
        put_str(&mut o, tags::WINDOW_CENTER, VR::DS, "40");
        put_str(&mut o, tags::WINDOW_WIDTH, VR::DS, "400");
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(C::from_vec(ct_pixels(size, slice))),
        ));
        objects.push(EncodedObject {
            sop_class_uid: uids::CT_IMAGE_STORAGE.to_string(),
            sop_instance_uid: sop_instance,
            transfer_syntax: EXPLICIT_VR_LE.to_string(),
            dataset: encode(&o, EXPLICIT_VR_LE)?,
        });
    }

    // Series 2: Secondary Capture, Implicit VR Little Endian, accented name.
    let sc_series = new_uid();
    let sop_instance = new_uid();
    let mut o = common.base(uids::SECONDARY_CAPTURE_IMAGE_STORAGE, &sop_instance);
    put_str(&mut o, tags::MODALITY, VR::CS, "OT");
    put_str(&mut o, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put_str(
        &mut o,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        ACCENTED_NAME,
    );
    put_str(&mut o, tags::SERIES_DESCRIPTION, VR::LO, "Résumé capture");
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &sc_series);
    put_str(&mut o, tags::SERIES_NUMBER, VR::IS, "2");
    put_str(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_us(&mut o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(
        &mut o,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    put_us(&mut o, tags::ROWS, size);
    put_us(&mut o, tags::COLUMNS, size);
    put_us(&mut o, tags::BITS_ALLOCATED, 8);
    put_us(&mut o, tags::BITS_STORED, 8);
    put_us(&mut o, tags::HIGH_BIT, 7);
    put_us(&mut o, tags::PIXEL_REPRESENTATION, 0);
    let mut px: Vec<u8> = (0..u32::from(size) * u32::from(size))
        .map(|i| {
            let (x, y) = (i % u32::from(size), i / u32::from(size));
            ((x + y) * 255 / (2 * u32::from(size)).max(1)) as u8
        })
        .collect();
    if px.len() % 2 == 1 {
        px.push(0);
    }
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(C::from_vec(px)),
    ));
    objects.push(EncodedObject {
        sop_class_uid: uids::SECONDARY_CAPTURE_IMAGE_STORAGE.to_string(),
        sop_instance_uid: sop_instance,
        transfer_syntax: IMPLICIT_VR_LE.to_string(),
        dataset: encode(&o, IMPLICIT_VR_LE)?,
    });

    Ok(Study {
        study_instance_uid: study_uid,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::transfer_syntax;

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        for u in [&a, &b] {
            assert!(u.len() <= 64, "{u}");
            assert!(u.starts_with("2.25."));
            let tail = &u[5..];
            assert!(tail.bytes().all(|c| c.is_ascii_digit()));
            assert!(!tail.starts_with('0'));
        }
    }

    #[test]
    fn study_objects_decode_back_with_utf8_name() -> Result<(), Box<dyn std::error::Error>> {
        let study = generate(&StudyOptions::default())?;
        assert_eq!(study.objects.len(), 4);
        for obj in &study.objects {
            let ts = transfer_syntax(&obj.transfer_syntax).ok_or("ts")?;
            let back = InMemDicomObject::read_dataset_with_ts(obj.dataset.as_slice(), ts)?;
            let inst = back.element(tags::SOP_INSTANCE_UID)?.to_str()?;
            assert_eq!(inst.trim_end_matches('\0'), obj.sop_instance_uid);
            assert_eq!(
                back.element(tags::STUDY_INSTANCE_UID)?
                    .to_str()?
                    .trim_end_matches('\0'),
                study.study_instance_uid
            );
        }
        let sc = study.objects.last().ok_or("no sc")?;
        assert_eq!(sc.transfer_syntax, IMPLICIT_VR_LE);
        // The UTF-8 bytes of the name are in the encoded data set as-is.
        let needle = ACCENTED_NAME.as_bytes();
        assert!(sc.dataset.windows(needle.len()).any(|w| w == needle));
        Ok(())
    }

    #[test]
    fn part10_file_reads_back() -> Result<(), Box<dyn std::error::Error>> {
        let study = generate(&StudyOptions::default())?;
        let obj = &study.objects[0];
        let file = obj.to_part10(Some("DEMO"))?;
        assert_eq!(&file[128..132], b"DICM");
        let parsed = dicom_object::OpenFileOptions::new().from_reader(&file[..])?;
        assert_eq!(
            parsed.meta().media_storage_sop_instance_uid(),
            obj.sop_instance_uid
        );
        assert!(file.ends_with(&obj.dataset));
        Ok(())
    }
}
