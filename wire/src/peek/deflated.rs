//! Deflated Explicit VR Little Endian data sets: a bounded prefix is inflated, then
//! walked like any other data set.

use flate2::{Decompress, FlushDecompress, Status};

use super::walk::{Stop, Syntax, Walker};
use super::{DatasetPeek, MAX_INFLATED};

/// Inflated bytes allowed per input byte (and at least [`MIN_INFLATED`]): enough for
/// header elements, far too little for a decompression bomb to matter.
const INFLATE_RATIO: usize = 4;
const MIN_INFLATED: usize = 16 * 1024;

/// Inflates a bounded prefix of a raw DEFLATE data set, then peeks at it.
pub(super) fn peek(bytes: &[u8], complete: bool) -> DatasetPeek {
    let cap = bytes
        .len()
        .saturating_mul(INFLATE_RATIO)
        .clamp(MIN_INFLATED, MAX_INFLATED);
    let inflated = inflate_prefix(bytes, cap);
    let mut peek = Walker::new(
        &inflated.data,
        Syntax::EXPLICIT_LE,
        complete && inflated.whole && inflated.error.is_none(),
    )
    .run();
    if let Some(e) = inflated.error
        && peek.error.is_none()
    {
        peek.truncated = false;
        peek.error = Some(e.to_string());
    }
    peek
}

pub(super) struct Inflated {
    pub(super) data: Vec<u8>,
    /// The deflate stream ended within the output cap.
    pub(super) whole: bool,
    pub(super) error: Option<Stop>,
}

/// Inflates at most about `cap` bytes of `input`, growing the output as data arrives (so
/// the allocation follows what was actually inflated, not a guess).
pub(super) fn inflate_prefix(input: &[u8], cap: usize) -> Inflated {
    const CHUNK: usize = 16 * 1024;
    let mut d = Decompress::new(false);
    let mut data = Vec::new();
    loop {
        if data.len() >= cap {
            return Inflated {
                data,
                whole: false,
                error: None,
            };
        }
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        data.reserve_exact(CHUNK.min(cap - data.len()));
        let out_before = d.total_out();
        match d.decompress_vec(rest, &mut data, FlushDecompress::None) {
            Ok(Status::StreamEnd) => {
                return Inflated {
                    data,
                    whole: true,
                    error: None,
                };
            }
            Ok(Status::Ok | Status::BufError) => {
                let progressed = usize::try_from(d.total_in()).unwrap_or(usize::MAX) != consumed
                    || d.total_out() != out_before;
                if !progressed {
                    return Inflated {
                        data,
                        whole: false,
                        error: None,
                    };
                }
            }
            Err(e) => {
                return Inflated {
                    data,
                    whole: false,
                    error: Some(Stop::Deflate {
                        offset: consumed,
                        message: e.to_string(),
                    }),
                };
            }
        }
    }
}
