//! Minimal valid instances of the common storage IODs (PS3.3 Annex A), for the probe's
//! `store` check and anything else that must send a device an object it will accept:
//! CT, MR, CR, DX, MG, US, NM, PET, XA, RF, Secondary Capture, RT Dose, RT Plan, Basic
//! Text SR, Enhanced SR, Comprehensive SR and Encapsulated PDF. Each carries its IOD's
//! Type 1 and Type 2 attributes (Type 2 empty where no value makes sense) and a tiny
//! image (16×16) where the IOD has pixel data.
//!
//! Every object is marked as test data ([`TestMarks`]): the patient's name and ID, the
//! Study Description, the Patient Comments and a private block whose creator is
//! [`PRIVATE_CREATOR`], so it can never be taken for a patient's record.

use dicom_core::value::{C, DataSetSequence};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use dicom_encoding::{Codec, Endianness, TransferSyntax};

use super::study::new_uid;
use super::{EncodedObject, PeerError};

/// Explicit VR Big Endian (retired, still accepted by many devices).
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// The transfer syntaxes [`generate`] encodes in: Implicit and Explicit VR Little Endian,
/// Explicit VR Big Endian.
pub const TRANSFER_SYNTAXES: &[&str] =
    &[super::EXPLICIT_VR_LE, super::IMPLICIT_VR_LE, EXPLICIT_VR_BE];

fn transfer_syntax(uid: &str) -> Option<&'static TransferSyntax> {
    static BIG: TransferSyntax = TransferSyntax::new(
        EXPLICIT_VR_BE,
        "Explicit VR Big Endian",
        Endianness::Big,
        true,
        Codec::None,
    );
    match uid.trim_end_matches(['\0', ' ']) {
        EXPLICIT_VR_BE => Some(&BIG),
        other => super::transfer_syntax(other),
    }
}

/// The private creator of the block every generated object carries (group 0009).
pub const PRIVATE_CREATOR: &str = "dicomtap probe";

/// What marks an object as test data, and the study it belongs to.
#[derive(Debug, Clone)]
pub struct TestMarks {
    pub patient_name: String,
    pub patient_id: String,
    pub study_uid: String,
    /// Study Description (0008,1030), e.g. "dicomtap probe test data - delete".
    pub study_description: String,
    /// Patient Comments (0010,4000).
    pub patient_comments: String,
    pub study_date: String,
    pub study_time: String,
}

/// A storage SOP class this module generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iod {
    pub sop_class: &'static str,
    /// Short name for people ("CT", "RT Dose").
    pub name: &'static str,
    pub modality: &'static str,
}

/// The IODs [`generate`] builds, in the order the probe prefers them.
pub const IODS: &[Iod] = &[
    Iod {
        sop_class: uids::CT_IMAGE_STORAGE,
        name: "CT",
        modality: "CT",
    },
    Iod {
        sop_class: uids::MR_IMAGE_STORAGE,
        name: "MR",
        modality: "MR",
    },
    Iod {
        sop_class: uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        name: "CR",
        modality: "CR",
    },
    Iod {
        sop_class: uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "DX",
        modality: "DX",
    },
    Iod {
        sop_class: uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "MG",
        modality: "MG",
    },
    Iod {
        sop_class: uids::ULTRASOUND_IMAGE_STORAGE,
        name: "US",
        modality: "US",
    },
    Iod {
        sop_class: uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
        name: "NM",
        modality: "NM",
    },
    Iod {
        sop_class: uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
        name: "PET",
        modality: "PT",
    },
    Iod {
        sop_class: uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
        name: "XA",
        modality: "XA",
    },
    Iod {
        sop_class: uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
        name: "RF",
        modality: "RF",
    },
    Iod {
        sop_class: uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
        name: "Secondary Capture",
        modality: "OT",
    },
    Iod {
        sop_class: uids::RT_DOSE_STORAGE,
        name: "RT Dose",
        modality: "RTDOSE",
    },
    Iod {
        sop_class: uids::RT_PLAN_STORAGE,
        name: "RT Plan",
        modality: "RTPLAN",
    },
    Iod {
        sop_class: uids::BASIC_TEXT_SR_STORAGE,
        name: "Basic Text SR",
        modality: "SR",
    },
    Iod {
        sop_class: uids::ENHANCED_SR_STORAGE,
        name: "Enhanced SR",
        modality: "SR",
    },
    Iod {
        sop_class: uids::COMPREHENSIVE_SR_STORAGE,
        name: "Comprehensive SR",
        modality: "SR",
    },
    Iod {
        sop_class: uids::ENCAPSULATED_PDF_STORAGE,
        name: "Encapsulated PDF",
        modality: "DOC",
    },
];

/// The IOD of `sop_class`, if [`generate`] builds it.
pub fn iod(sop_class: &str) -> Option<&'static Iod> {
    let uid = sop_class.trim_end_matches(['\0', ' ']);
    IODS.iter().find(|i| i.sop_class == uid)
}

const SIZE: u16 = 16;

/// A small object builder over [`InMemDicomObject`].
struct B(InMemDicomObject);

impl B {
    fn s(&mut self, tag: Tag, vr: VR, v: &str) -> &mut Self {
        self.0
            .put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        self
    }
    fn m(&mut self, tag: Tag, vr: VR, v: &[&str]) -> &mut Self {
        let values: C<String> = v.iter().map(|s| (*s).to_string()).collect();
        self.0
            .put(DataElement::new(tag, vr, PrimitiveValue::Strs(values)));
        self
    }
    /// A Type 2 attribute sent empty.
    fn e(&mut self, tag: Tag, vr: VR) -> &mut Self {
        self.0.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        self
    }
    fn us(&mut self, tag: Tag, v: u16) -> &mut Self {
        self.0
            .put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        self
    }
    fn at(&mut self, tag: Tag, v: &[Tag]) -> &mut Self {
        self.0.put(DataElement::new(
            tag,
            VR::AT,
            PrimitiveValue::Tags(v.iter().copied().collect()),
        ));
        self
    }
    fn seq(&mut self, tag: Tag, items: Vec<InMemDicomObject>) -> &mut Self {
        self.0.put(DataElement::new(
            tag,
            VR::SQ,
            DataSetSequence::new(items, Length::UNDEFINED),
        ));
        self
    }
    fn item() -> B {
        B(InMemDicomObject::new_empty())
    }
    fn done(self) -> InMemDicomObject {
        self.0
    }
}

/// A code sequence item (Code Value, Coding Scheme Designator, Code Meaning).
fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut b = B::item();
    b.s(tags::CODE_VALUE, VR::SH, value)
        .s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme)
        .s(tags::CODE_MEANING, VR::LO, meaning);
    b.done()
}

/// Patient, General Study, General Series, General Equipment, SOP Common and the test
/// marks: what every IOD shares.
fn common(iod: &Iod, m: &TestMarks, sop_instance: &str) -> B {
    let mut b = B(InMemDicomObject::new_empty());
    b.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192")
        .s(tags::SOP_CLASS_UID, VR::UI, iod.sop_class)
        .s(tags::SOP_INSTANCE_UID, VR::UI, sop_instance)
        .s(tags::STUDY_DATE, VR::DA, &m.study_date)
        .s(tags::STUDY_TIME, VR::TM, &m.study_time)
        .s(tags::SERIES_DATE, VR::DA, &m.study_date)
        .s(tags::SERIES_TIME, VR::TM, &m.study_time)
        .s(tags::CONTENT_DATE, VR::DA, &m.study_date)
        .s(tags::CONTENT_TIME, VR::TM, &m.study_time)
        .e(tags::ACCESSION_NUMBER, VR::SH)
        .s(tags::MODALITY, VR::CS, iod.modality)
        .s(tags::MANUFACTURER, VR::LO, "dicomtap")
        .s(tags::INSTITUTION_NAME, VR::LO, "dicomtap probe test data")
        .e(tags::REFERRING_PHYSICIAN_NAME, VR::PN)
        .s(tags::STUDY_DESCRIPTION, VR::LO, &m.study_description)
        .s(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            &format!("dicomtap probe {}", iod.name),
        )
        .s(tags::PATIENT_NAME, VR::PN, &m.patient_name)
        .s(tags::PATIENT_ID, VR::LO, &m.patient_id)
        .e(tags::PATIENT_BIRTH_DATE, VR::DA)
        .s(tags::PATIENT_SEX, VR::CS, "O")
        .s(tags::PATIENT_COMMENTS, VR::LT, &m.patient_comments)
        .s(tags::STUDY_INSTANCE_UID, VR::UI, &m.study_uid)
        .s(tags::SERIES_INSTANCE_UID, VR::UI, &new_uid())
        .s(tags::STUDY_ID, VR::SH, "PROBE")
        .s(tags::SERIES_NUMBER, VR::IS, "1")
        .s(tags::INSTANCE_NUMBER, VR::IS, "1")
        // Private block: creator (0009,0010), then (0009,1000) in its block.
        .s(Tag(0x0009, 0x0010), VR::LO, PRIVATE_CREATOR)
        .s(Tag(0x0009, 0x1000), VR::LO, "test data, safe to delete");
    b
}

/// General Image and Image Pixel for a 16×16 monochrome image (`bits` 8 or 16), with
/// `photometric` MONOCHROME1 or MONOCHROME2.
fn image(b: &mut B, bits: u16, photometric: &str) {
    b.e(tags::PATIENT_ORIENTATION, VR::CS)
        .e(tags::LATERALITY, VR::CS)
        .us(tags::SAMPLES_PER_PIXEL, 1)
        .s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric)
        .us(tags::ROWS, SIZE)
        .us(tags::COLUMNS, SIZE)
        .us(tags::BITS_ALLOCATED, bits)
        .us(tags::BITS_STORED, if bits == 16 { 12 } else { 8 })
        .us(tags::HIGH_BIT, if bits == 16 { 11 } else { 7 })
        .us(tags::PIXEL_REPRESENTATION, 0)
        .s(tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
    let n = usize::from(SIZE) * usize::from(SIZE);
    if bits == 16 {
        let px: Vec<u16> = (0..n).map(|i| ((i * 13) % 4096) as u16).collect();
        b.0.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(C::from_vec(px)),
        ));
    } else {
        let px: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
        b.0.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::U8(C::from_vec(px)),
        ));
    }
}

/// Frame of Reference and Image Plane.
fn plane(b: &mut B, frame_of_reference: &str) {
    b.s(tags::FRAME_OF_REFERENCE_UID, VR::UI, frame_of_reference)
        .e(tags::POSITION_REFERENCE_INDICATOR, VR::LO)
        .m(tags::PIXEL_SPACING, VR::DS, &["1", "1"])
        .m(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            &["1", "0", "0", "0", "1", "0"],
        )
        .m(tags::IMAGE_POSITION_PATIENT, VR::DS, &["-8", "-8", "0"])
        .s(tags::SLICE_THICKNESS, VR::DS, "1");
}

/// The DX family (DX Series, DX Anatomy Imaged, DX Image, DX Detector, VOI LUT,
/// Acquisition Context), as used by DX and MG for presentation.
fn dx(b: &mut B, laterality: &str) {
    image(b, 16, "MONOCHROME2");
    // Image Laterality stands in for the series' Laterality here.
    b.0.remove_element(tags::LATERALITY);
    b.m(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY"])
        .s(tags::PRESENTATION_INTENT_TYPE, VR::CS, "FOR PRESENTATION")
        .s(tags::IMAGE_LATERALITY, VR::CS, laterality)
        .seq(tags::ANATOMIC_REGION_SEQUENCE, Vec::new())
        .s(tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LIN")
        .s(tags::RESCALE_INTERCEPT, VR::DS, "0")
        .s(tags::RESCALE_SLOPE, VR::DS, "1")
        .s(tags::RESCALE_TYPE, VR::LO, "US")
        .s(tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY")
        .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
        .e(tags::DETECTOR_TYPE, VR::CS)
        .m(tags::IMAGER_PIXEL_SPACING, VR::DS, &["0.1", "0.1"])
        .s(tags::WINDOW_CENTER, VR::DS, "2048")
        .s(tags::WINDOW_WIDTH, VR::DS, "4096")
        .seq(tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new())
        .e(tags::KVP, VR::DS)
        .m(tags::PATIENT_ORIENTATION, VR::CS, &["P", "F"]);
    b.0.put(DataElement::new(
        tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN,
        VR::SS,
        PrimitiveValue::I16(C::from_vec(vec![1])),
    ));
}

/// X-Ray Acquisition, XA/XRF Image (single frame).
fn xray_angio(b: &mut B) {
    image(b, 16, "MONOCHROME2");
    b.m(
        tags::IMAGE_TYPE,
        VR::CS,
        &["ORIGINAL", "PRIMARY", "SINGLE PLANE"],
    )
    .s(tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LIN")
    .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00")
    .e(tags::KVP, VR::DS)
    .e(tags::X_RAY_TUBE_CURRENT, VR::IS)
    .e(tags::EXPOSURE_TIME, VR::IS)
    .e(tags::EXPOSURE, VR::IS)
    .s(tags::RADIATION_SETTING, VR::CS, "GR")
    .e(tags::POSITIONER_MOTION, VR::CS);
}

/// A one-page PDF, enough to be a PDF.
const TINY_PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n\
trailer<</Root 1 0 R>>\n%%EOF\n";

/// The data set of a minimal `sop_class` instance marked by `m`.
pub fn build(sop_class: &str, m: &TestMarks) -> Result<InMemDicomObject, PeerError> {
    let iod = iod(sop_class)
        .ok_or_else(|| PeerError::Encode(format!("no generator for SOP class {sop_class}")))?;
    let sop_instance = new_uid();
    let mut b = common(iod, m, &sop_instance);
    let for_uid = new_uid();
    match iod.name {
        "CT" => {
            image(&mut b, 16, "MONOCHROME2");
            plane(&mut b, &for_uid);
            b.m(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY", "AXIAL"])
                .s(tags::RESCALE_INTERCEPT, VR::DS, "-1024")
                .s(tags::RESCALE_SLOPE, VR::DS, "1")
                .s(tags::KVP, VR::DS, "120")
                .s(tags::PATIENT_POSITION, VR::CS, "HFS")
                .s(tags::ACQUISITION_NUMBER, VR::IS, "1");
        }
        "MR" => {
            image(&mut b, 16, "MONOCHROME2");
            plane(&mut b, &for_uid);
            b.m(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY", "OTHER"])
                .s(tags::SCANNING_SEQUENCE, VR::CS, "SE")
                .s(tags::SEQUENCE_VARIANT, VR::CS, "NONE")
                .e(tags::SCAN_OPTIONS, VR::CS)
                .s(tags::MR_ACQUISITION_TYPE, VR::CS, "2D")
                .s(tags::REPETITION_TIME, VR::DS, "500")
                .s(tags::ECHO_TIME, VR::DS, "20")
                .s(tags::ECHO_TRAIN_LENGTH, VR::IS, "1")
                .s(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "1.5")
                .s(tags::PATIENT_POSITION, VR::CS, "HFS");
        }
        "CR" => {
            image(&mut b, 16, "MONOCHROME2");
            b.e(tags::BODY_PART_EXAMINED, VR::CS)
                .e(tags::VIEW_POSITION, VR::CS)
                .e(tags::PATIENT_ORIENTATION, VR::CS);
        }
        "DX" => dx(&mut b, "U"),
        "MG" => {
            dx(&mut b, "L");
            let mut view = B(code("399162004", "SCT", "cranio-caudal"));
            view.seq(tags::VIEW_MODIFIER_CODE_SEQUENCE, Vec::new());
            b.s(tags::BODY_PART_EXAMINED, VR::CS, "BREAST")
                .s(tags::POSITIONER_TYPE, VR::CS, "MAMMOGRAPHIC")
                .e(tags::DISTANCE_SOURCE_TO_DETECTOR, VR::DS)
                .e(tags::DISTANCE_SOURCE_TO_PATIENT, VR::DS)
                .e(tags::POSITIONER_PRIMARY_ANGLE, VR::DS)
                .e(tags::BODY_PART_THICKNESS, VR::DS)
                .e(tags::COMPRESSION_FORCE, VR::DS)
                .s(tags::ORGAN_EXPOSED, VR::CS, "BREAST")
                .e(tags::BREAST_IMPLANT_PRESENT, VR::CS)
                .seq(tags::VIEW_CODE_SEQUENCE, vec![view.done()])
                .seq(
                    tags::ANATOMIC_REGION_SEQUENCE,
                    vec![code("80248007", "SCT", "Left breast")],
                );
            b.m(tags::PATIENT_ORIENTATION, VR::CS, &["A", "FR"]);
        }
        "US" => {
            image(&mut b, 8, "MONOCHROME2");
            b.m(
                tags::IMAGE_TYPE,
                VR::CS,
                &["ORIGINAL", "PRIMARY", "", "0001"],
            )
            .s(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
        }
        "NM" => {
            image(&mut b, 16, "MONOCHROME2");
            b.m(
                tags::IMAGE_TYPE,
                VR::CS,
                &["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"],
            )
            .s(tags::NUMBER_OF_FRAMES, VR::IS, "1")
            .at(
                tags::FRAME_INCREMENT_POINTER,
                &[tags::ENERGY_WINDOW_VECTOR, tags::DETECTOR_VECTOR],
            )
            .us(tags::NUMBER_OF_ENERGY_WINDOWS, 1)
            .us(tags::NUMBER_OF_DETECTORS, 1);
            b.0.put(DataElement::new(
                tags::ENERGY_WINDOW_VECTOR,
                VR::US,
                PrimitiveValue::from(1_u16),
            ));
            b.0.put(DataElement::new(
                tags::DETECTOR_VECTOR,
                VR::US,
                PrimitiveValue::from(1_u16),
            ));
            b.us(tags::BITS_STORED, 16)
                .us(tags::HIGH_BIT, 15)
                .e(tags::COUNTS_ACCUMULATED, VR::IS)
                .s(tags::ACTUAL_FRAME_DURATION, VR::IS, "1000")
                .seq(tags::PATIENT_ORIENTATION_CODE_SEQUENCE, Vec::new())
                .seq(tags::PATIENT_GANTRY_RELATIONSHIP_CODE_SEQUENCE, Vec::new());
            let mut det = B::item();
            det.e(tags::FOCAL_DISTANCE, VR::IS)
                .e(tags::COLLIMATOR_TYPE, VR::CS)
                .e(tags::IMAGE_ORIENTATION_PATIENT, VR::DS)
                .e(tags::IMAGE_POSITION_PATIENT, VR::DS);
            b.seq(tags::ENERGY_WINDOW_INFORMATION_SEQUENCE, Vec::new())
                .seq(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE, Vec::new())
                .seq(tags::DETECTOR_INFORMATION_SEQUENCE, vec![det.done()])
                .m(tags::PIXEL_SPACING, VR::DS, &["1", "1"]);
        }
        "PET" => {
            image(&mut b, 16, "MONOCHROME2");
            plane(&mut b, &for_uid);
            b.m(tags::IMAGE_TYPE, VR::CS, &["ORIGINAL", "PRIMARY"])
                .us(tags::BITS_STORED, 16)
                .us(tags::HIGH_BIT, 15)
                .s(tags::UNITS, VR::CS, "CNTS")
                .s(tags::COUNTS_SOURCE, VR::CS, "EMISSION")
                .m(tags::SERIES_TYPE, VR::CS, &["STATIC", "IMAGE"])
                .m(tags::CORRECTED_IMAGE, VR::CS, &["DECY", "ATTN"])
                .s(tags::DECAY_CORRECTION, VR::CS, "START")
                .us(tags::NUMBER_OF_SLICES, 1)
                .e(tags::COLLIMATOR_TYPE, VR::CS)
                .seq(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE, Vec::new())
                .s(tags::RESCALE_INTERCEPT, VR::DS, "0")
                .s(tags::RESCALE_SLOPE, VR::DS, "1")
                .s(tags::FRAME_REFERENCE_TIME, VR::DS, "0")
                .us(tags::IMAGE_INDEX, 1)
                .s(tags::ACQUISITION_DATE, VR::DA, &m.study_date)
                .s(tags::ACQUISITION_TIME, VR::TM, &m.study_time)
                .s(tags::ACTUAL_FRAME_DURATION, VR::IS, "1000")
                .s(tags::DECAY_FACTOR, VR::DS, "1")
                .seq(tags::PATIENT_ORIENTATION_CODE_SEQUENCE, Vec::new())
                .seq(tags::PATIENT_GANTRY_RELATIONSHIP_CODE_SEQUENCE, Vec::new());
        }
        "XA" => {
            xray_angio(&mut b);
            b.e(tags::POSITIONER_PRIMARY_ANGLE, VR::DS)
                .e(tags::POSITIONER_SECONDARY_ANGLE, VR::DS);
        }
        "RF" => xray_angio(&mut b),
        "Secondary Capture" => {
            image(&mut b, 8, "MONOCHROME2");
            b.s(tags::CONVERSION_TYPE, VR::CS, "WSD");
        }
        "RT Dose" => {
            image(&mut b, 16, "MONOCHROME2");
            plane(&mut b, &for_uid);
            b.e(tags::OPERATORS_NAME, VR::PN)
                .us(tags::BITS_STORED, 16)
                .us(tags::HIGH_BIT, 15)
                .s(tags::DOSE_UNITS, VR::CS, "GY")
                .s(tags::DOSE_TYPE, VR::CS, "PHYSICAL")
                .s(tags::DOSE_SUMMATION_TYPE, VR::CS, "PLAN")
                .s(tags::DOSE_GRID_SCALING, VR::DS, "0.001")
                .s(tags::NUMBER_OF_FRAMES, VR::IS, "2")
                .at(
                    tags::FRAME_INCREMENT_POINTER,
                    &[tags::GRID_FRAME_OFFSET_VECTOR],
                )
                .m(tags::GRID_FRAME_OFFSET_VECTOR, VR::DS, &["0", "1"])
                .e(tags::PATIENT_ORIENTATION, VR::CS);
            // The dose references the plan it was computed for.
            let mut plan = B::item();
            plan.s(
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                uids::RT_PLAN_STORAGE,
            )
            .s(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &new_uid());
            b.seq(tags::REFERENCED_RT_PLAN_SEQUENCE, vec![plan.done()]);
            let n = 2 * usize::from(SIZE) * usize::from(SIZE);
            b.0.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(C::from_vec((0..n).map(|i| (i % 1000) as u16).collect())),
            ));
        }
        "RT Plan" => {
            b.e(tags::OPERATORS_NAME, VR::PN)
                .s(tags::RT_PLAN_LABEL, VR::SH, "PROBE")
                .s(tags::RT_PLAN_DATE, VR::DA, &m.study_date)
                .s(tags::RT_PLAN_TIME, VR::TM, &m.study_time)
                .s(tags::RT_PLAN_GEOMETRY, VR::CS, "TREATMENT_DEVICE")
                .s(tags::FRAME_OF_REFERENCE_UID, VR::UI, &for_uid)
                .e(tags::POSITION_REFERENCE_INDICATOR, VR::LO);
        }
        "Basic Text SR" | "Enhanced SR" | "Comprehensive SR" => {
            let mut text = B::item();
            text.s(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS")
                .s(tags::VALUE_TYPE, VR::CS, "TEXT")
                .seq(
                    tags::CONCEPT_NAME_CODE_SEQUENCE,
                    vec![code("121071", "DCM", "Finding")],
                )
                .s(
                    tags::TEXT_VALUE,
                    VR::UT,
                    "Test data written by dicomtap probe; safe to delete.",
                );
            b.seq(
                tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
                Vec::new(),
            )
            .s(tags::COMPLETION_FLAG, VR::CS, "COMPLETE")
            .s(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED")
            .seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, Vec::new())
            .s(tags::VALUE_TYPE, VR::CS, "CONTAINER")
            .seq(
                tags::CONCEPT_NAME_CODE_SEQUENCE,
                vec![code("18748-4", "LN", "Diagnostic Imaging Report")],
            )
            .s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")
            .seq(tags::CONTENT_SEQUENCE, vec![text.done()]);
        }
        "Encapsulated PDF" => {
            let mut pdf = TINY_PDF.to_vec();
            if pdf.len() % 2 == 1 {
                pdf.push(0);
            }
            b.s(tags::CONVERSION_TYPE, VR::CS, "WSD")
                .e(tags::ACQUISITION_DATE_TIME, VR::DT)
                .s(tags::BURNED_IN_ANNOTATION, VR::CS, "YES")
                .s(tags::DOCUMENT_TITLE, VR::ST, "dicomtap probe test document")
                .seq(tags::CONCEPT_NAME_CODE_SEQUENCE, Vec::new())
                .s(
                    tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
                    VR::LO,
                    "application/pdf",
                );
            b.0.put(DataElement::new(
                tags::ENCAPSULATED_DOCUMENT,
                VR::OB,
                PrimitiveValue::U8(C::from_vec(pdf)),
            ));
        }
        _ => {}
    }
    Ok(b.done())
}

/// A minimal `sop_class` instance marked by `m`, encoded in `ts` (one of
/// [`TRANSFER_SYNTAXES`]).
pub fn generate(sop_class: &str, m: &TestMarks, ts: &str) -> Result<EncodedObject, PeerError> {
    let obj = build(sop_class, m)?;
    let ts_desc = transfer_syntax(ts)
        .ok_or_else(|| PeerError::Encode(format!("unsupported transfer syntax {ts}")))?;
    let sop_instance_uid = obj
        .element(tags::SOP_INSTANCE_UID)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches('\0').to_string())
        .unwrap_or_default();
    let mut dataset = Vec::new();
    obj.write_dataset_with_ts(&mut dataset, ts_desc)
        .map_err(|e| PeerError::Encode(e.to_string()))?;
    Ok(EncodedObject {
        sop_class_uid: sop_class.trim_end_matches(['\0', ' ']).to_string(),
        sop_instance_uid,
        transfer_syntax: ts_desc.uid().to_string(),
        dataset,
    })
}

/// `obj` (Implicit or Explicit VR Little Endian) re-encoded with the test marks of `m`:
/// Patient's Name and ID, Study Description, Patient Comments and the private block
/// (the Study Instance UID is kept).
pub fn mark(obj: &EncodedObject, m: &TestMarks) -> Result<EncodedObject, PeerError> {
    let ts = transfer_syntax(&obj.transfer_syntax).ok_or_else(|| {
        PeerError::Encode(format!(
            "unsupported transfer syntax {}",
            obj.transfer_syntax
        ))
    })?;
    let o = InMemDicomObject::read_dataset_with_ts(obj.dataset.as_slice(), ts)
        .map_err(|e| PeerError::Encode(e.to_string()))?;
    let mut b = B(o);
    b.s(tags::PATIENT_NAME, VR::PN, &m.patient_name)
        .s(tags::PATIENT_ID, VR::LO, &m.patient_id)
        .s(tags::STUDY_DESCRIPTION, VR::LO, &m.study_description)
        .s(tags::PATIENT_COMMENTS, VR::LT, &m.patient_comments)
        .s(tags::INSTITUTION_NAME, VR::LO, "dicomtap probe test data")
        .s(Tag(0x0009, 0x0010), VR::LO, PRIVATE_CREATOR)
        .s(Tag(0x0009, 0x1000), VR::LO, "test data, safe to delete");
    let mut dataset = Vec::new();
    b.0.write_dataset_with_ts(&mut dataset, ts)
        .map_err(|e| PeerError::Encode(e.to_string()))?;
    Ok(EncodedObject {
        dataset,
        ..obj.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn marks() -> TestMarks {
        TestMarks {
            patient_name: "DICOMTAPTEST^IODS".into(),
            patient_id: "DICOMTAPTEST-IODS".into(),
            study_uid: new_uid(),
            study_description: "dicomtap probe test data".into(),
            patient_comments: "test data".into(),
            study_date: "20260101".into(),
            study_time: "120000".into(),
        }
    }

    #[test]
    fn every_iod_encodes_and_decodes_with_its_marks() -> Result<(), Box<dyn std::error::Error>> {
        let m = marks();
        for iod in IODS {
            for ts in TRANSFER_SYNTAXES {
                let o = generate(iod.sop_class, &m, ts)?;
                let tsd = transfer_syntax(ts).ok_or("ts")?;
                let back = InMemDicomObject::read_dataset_with_ts(o.dataset.as_slice(), tsd)?;
                let s = |t| -> Result<String, Box<dyn std::error::Error>> {
                    Ok(back
                        .element(t)?
                        .to_str()?
                        .trim_end_matches(['\0', ' '])
                        .to_string())
                };
                assert_eq!(s(tags::SOP_CLASS_UID)?, iod.sop_class, "{}", iod.name);
                assert_eq!(s(tags::SOP_INSTANCE_UID)?, o.sop_instance_uid);
                assert_eq!(s(tags::PATIENT_ID)?, m.patient_id);
                assert_eq!(s(tags::STUDY_DESCRIPTION)?, m.study_description);
                assert_eq!(s(Tag(0x0009, 0x0010))?, PRIVATE_CREATOR);
                assert_eq!(s(tags::MODALITY)?, iod.modality);
            }
        }
        Ok(())
    }
}
