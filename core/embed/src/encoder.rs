//! The BERT encoder's forward pass in f32: embeddings, the post-LayerNorm transformer layers
//! and mean pooling, over a batch of token segments concatenated into one matrix.
//!
//! The encoder's linear weights are dequantised from Q4_0 once at load and stored as
//! `[in, out]` f32 matrices, so every token-wise projection of a whole batch is one ndarray
//! `dot` (matrixmultiply's SIMD kernels). Only the word-embedding table (250k rows) stays
//! 4-bit, and only looked-up rows are expanded.
//!
//! Each layer is split over the cores as Megatron splits it: a thread owns some attention
//! heads (their Q, K and V columns in one fused matrix, and the matching rows of the output
//! projection) and a slice of the feed-forward units (columns of the first matrix, rows of
//! the second), and returns a partial sum of the layer's output. A layer thus synchronises
//! twice, and no thread waits for another's columns between two matmuls.

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Slice};
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};

use crate::format::{dequantise_row, Header, ModelFile, Q4_BLOCK_BYTES, QK};
use crate::EmbedError;

/// matrixmultiply's f32 kernels are 8 columns wide: feed-forward slices split on that.
const KERNEL_COLUMNS: usize = 8;

/// One thread's share of a layer.
struct Part {
    /// How many attention heads it owns.
    heads: usize,
    /// `[H, 3 · heads · hd]`: the Q columns of its heads, then their K, then their V.
    qkv_w: Array2<f32>,
    qkv_b: Array1<f32>,
    /// `[heads · hd, H]`: the output projection's rows for its heads.
    attn_out_w: Array2<f32>,
    /// `[H, ff part]` and `[ff part, H]`.
    ff_in_w: Array2<f32>,
    ff_in_b: Array1<f32>,
    ff_out_w: Array2<f32>,
}

struct Layer {
    parts: Vec<Part>,
    attn_out_b: Array1<f32>,
    attn_ln_w: Array1<f32>,
    attn_ln_b: Array1<f32>,
    ff_out_b: Array1<f32>,
    out_ln_w: Array1<f32>,
    out_ln_b: Array1<f32>,
}

pub(crate) struct Encoder {
    hidden: usize,
    head_dim: usize,
    eps: f32,
    /// The Q4_0 word-embedding table, `vocab_rows` rows of `hidden / 32` blocks.
    word: Vec<u8>,
    word_row_bytes: usize,
    /// Position embeddings; e5's are already offset past XLM-R's padding positions.
    positions: Array2<f32>,
    token_type: Array1<f32>,
    emb_ln_w: Array1<f32>,
    emb_ln_b: Array1<f32>,
    layers: Vec<Layer>,
}

/// A Q4_0 `[out, in]` matrix from the file, as an f32 `[in, out]` one for `x.dot(&w)`.
fn linear(
    file: &ModelFile<'_>,
    name: &str,
    out: usize,
    inp: usize,
) -> Result<Array2<f32>, EmbedError> {
    let blocks = file.q4(name, out, inp)?;
    let row_bytes = inp / QK * Q4_BLOCK_BYTES;
    let mut w = Array2::<f32>::zeros((out, inp));
    for (block_row, mut row) in blocks.chunks_exact(row_bytes).zip(w.rows_mut()) {
        if let Some(row) = row.as_slice_mut() {
            dequantise_row(block_row, row);
        }
    }
    Ok(w.reversed_axes().as_standard_layout().into_owned())
}

fn vector(file: &ModelFile<'_>, name: &str, len: usize) -> Result<Array1<f32>, EmbedError> {
    Ok(Array1::from(file.f32s(name, len)?))
}

fn columns(w: &Array2<f32>, range: Range<usize>) -> ArrayView2<'_, f32> {
    w.slice_axis(Axis(1), Slice::from(range))
}

fn part_of(v: &Array1<f32>, range: Range<usize>) -> ndarray::ArrayView1<'_, f32> {
    v.slice_axis(Axis(0), Slice::from(range))
}

fn rows(w: &Array2<f32>, range: Range<usize>) -> Array2<f32> {
    w.slice_axis(Axis(0), Slice::from(range)).to_owned()
}

/// `i`-th of `parts` near-equal splits of `n`, on multiples of `align`.
fn split(n: usize, parts: usize, align: usize, i: usize) -> Range<usize> {
    let at = |j: usize| {
        if j >= parts {
            n
        } else {
            n * j / parts / align * align
        }
    };
    at(i)..at(i + 1)
}

impl Encoder {
    pub fn new(file: &ModelFile<'_>) -> Result<Self, EmbedError> {
        let Header {
            hidden: h,
            layers,
            heads,
            ff,
            vocab_rows,
            max_positions,
            type_vocab,
            eps,
        } = file.header;
        let hd = h / heads;
        // One part per thread of rayon's pool, as long as each keeps a head.
        let parts = rayon::current_num_threads().clamp(1, heads.min(ff / KERNEL_COLUMNS));
        let word = file.q4("emb.word", vocab_rows, h)?.to_vec();
        let positions =
            Array2::from_shape_vec((max_positions, h), file.f32s("emb.pos", max_positions * h)?)
                .map_err(|e| EmbedError::Corrupt(format!("emb.pos: {e}")))?;
        let token_type = file.f32s("emb.type", type_vocab * h)?;
        let layers = (0..layers)
            .map(|l| {
                let name = |t: &str| format!("l{l}.{t}");
                let corrupt =
                    |e: ndarray::ShapeError| EmbedError::Corrupt(format!("layer {l}: {e}"));
                let q = linear(file, &name("q.w"), h, h)?;
                let k = linear(file, &name("k.w"), h, h)?;
                let v = linear(file, &name("v.w"), h, h)?;
                let qb = vector(file, &name("q.b"), h)?;
                let kb = vector(file, &name("k.b"), h)?;
                let vb = vector(file, &name("v.b"), h)?;
                let ao = linear(file, &name("ao.w"), h, h)?;
                let fi = linear(file, &name("fi.w"), ff, h)?;
                let fi_b = vector(file, &name("fi.b"), ff)?;
                let fo = linear(file, &name("fo.w"), h, ff)?;
                let parts = (0..parts)
                    .map(|i| {
                        let own = split(heads, parts, 1, i);
                        let cols = own.start * hd..own.end * hd;
                        let units = split(ff, parts, KERNEL_COLUMNS, i);
                        Ok(Part {
                            heads: own.len(),
                            qkv_w: ndarray::concatenate(
                                Axis(1),
                                &[
                                    columns(&q, cols.clone()),
                                    columns(&k, cols.clone()),
                                    columns(&v, cols.clone()),
                                ],
                            )
                            .map_err(corrupt)?,
                            qkv_b: ndarray::concatenate(
                                Axis(0),
                                &[
                                    part_of(&qb, cols.clone()),
                                    part_of(&kb, cols.clone()),
                                    part_of(&vb, cols.clone()),
                                ],
                            )
                            .map_err(corrupt)?,
                            attn_out_w: rows(&ao, cols.clone()),
                            ff_in_w: columns(&fi, units.clone()).to_owned(),
                            ff_in_b: part_of(&fi_b, units.clone()).to_owned(),
                            ff_out_w: rows(&fo, units),
                        })
                    })
                    .collect::<Result<Vec<_>, EmbedError>>()?;
                Ok(Layer {
                    parts,
                    attn_out_b: vector(file, &name("ao.b"), h)?,
                    attn_ln_w: vector(file, &name("aln.w"), h)?,
                    attn_ln_b: vector(file, &name("aln.b"), h)?,
                    ff_out_b: vector(file, &name("fo.b"), h)?,
                    out_ln_w: vector(file, &name("oln.w"), h)?,
                    out_ln_b: vector(file, &name("oln.b"), h)?,
                })
            })
            .collect::<Result<Vec<_>, EmbedError>>()?;
        Ok(Encoder {
            hidden: h,
            head_dim: hd,
            eps,
            word,
            word_row_bytes: h / QK * Q4_BLOCK_BYTES,
            positions,
            token_type: Array1::from(token_type[..h].to_vec()),
            emb_ln_w: vector(file, "emb.ln.w", h)?,
            emb_ln_b: vector(file, "emb.ln.b", h)?,
            layers,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The most tokens one segment may have (special tokens included).
    pub fn max_positions(&self) -> usize {
        self.positions.nrows()
    }

    /// Runs the encoder over `segments` (each a full `<s> … </s>` token sequence of at most
    /// [`Self::max_positions`] ids, all below the vocabulary size) and returns each one's
    /// mean-pooled last hidden state, unnormalised, as a row.
    pub fn forward(&self, segments: &[&[u32]]) -> Array2<f32> {
        let h = self.hidden;
        let total: usize = segments.iter().map(|s| s.len()).sum();
        let mut bounds = Vec::with_capacity(segments.len());
        let mut x = Array2::<f32>::zeros((total, h));
        let mut word = vec![0f32; h];
        let mut t = 0;
        for seg in segments {
            bounds.push(t..t + seg.len());
            for (p, &id) in seg.iter().enumerate() {
                let start = id as usize * self.word_row_bytes;
                dequantise_row(&self.word[start..start + self.word_row_bytes], &mut word);
                let sums = word.iter().zip(self.positions.row(p)).zip(&self.token_type);
                for (r, ((&w, &pe), &te)) in x.row_mut(t).iter_mut().zip(sums) {
                    *r = w + pe + te;
                }
                t += 1;
            }
        }
        layer_norm(x.view_mut(), &self.emb_ln_w, &self.emb_ln_b, self.eps);

        for layer in &self.layers {
            let partials: Vec<Array2<f32>> = layer
                .parts
                .par_iter()
                .map(|part| self.attention(part, x.view(), &bounds))
                .collect();
            add_partials(&mut x, partials, &layer.attn_out_b);
            layer_norm(x.view_mut(), &layer.attn_ln_w, &layer.attn_ln_b, self.eps);

            let partials: Vec<Array2<f32>> = layer
                .parts
                .par_iter()
                .map(|part| {
                    let mut mid = affine(x.view(), &part.ff_in_w, &part.ff_in_b);
                    match mid.as_slice_memory_order_mut() {
                        // A plain slice loop, so that the compiler vectorises the GELU.
                        Some(values) => values.iter_mut().for_each(|v| *v = gelu(*v)),
                        None => mid.mapv_inplace(gelu),
                    }
                    mid.dot(&part.ff_out_w)
                })
                .collect();
            add_partials(&mut x, partials, &layer.ff_out_b);
            layer_norm(x.view_mut(), &layer.out_ln_w, &layer.out_ln_b, self.eps);
        }

        let mut pooled = Array2::<f32>::zeros((segments.len(), h));
        for (mut out, range) in pooled.rows_mut().into_iter().zip(&bounds) {
            if range.is_empty() {
                continue;
            }
            let rows = x.slice_axis(Axis(0), Slice::from(range.clone()));
            let mean = rows.sum_axis(Axis(0)) / range.len() as f32;
            out.assign(&mean);
        }
        pooled
    }
}

/// The `rows` × `cols` block of `x` (ndarray's `s!` macro is out: it allows `unsafe_code`,
/// which the workspace forbids).
fn block<'a>(
    mut x: ArrayView2<'a, f32>,
    rows: &Range<usize>,
    cols: Range<usize>,
) -> ArrayView2<'a, f32> {
    x.slice_axis_inplace(Axis(0), Slice::from(rows.clone()));
    x.slice_axis_inplace(Axis(1), Slice::from(cols));
    x
}

impl Encoder {
    /// One part's heads over every segment (attention stays within a segment), projected
    /// by its rows of the output matrix: its partial sum of the attention block's output.
    fn attention(
        &self,
        part: &Part,
        x: ArrayView2<'_, f32>,
        bounds: &[Range<usize>],
    ) -> Array2<f32> {
        let hd = self.head_dim;
        let width = part.heads * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let qkv = affine(x, &part.qkv_w, &part.qkv_b);
        let mut ctx = Array2::<f32>::zeros((x.nrows(), width));
        for head in 0..part.heads {
            let cols = head * hd..(head + 1) * hd;
            for range in bounds {
                let q = block(qkv.view(), range, cols.clone());
                let k = block(qkv.view(), range, width + cols.start..width + cols.end);
                let v = block(
                    qkv.view(),
                    range,
                    2 * width + cols.start..2 * width + cols.end,
                );
                let mut scores = q.dot(&k.t());
                softmax_rows(&mut scores, scale);
                let mut out = ctx.view_mut();
                out.slice_axis_inplace(Axis(0), Slice::from(range.clone()));
                out.slice_axis_inplace(Axis(1), Slice::from(cols.clone()));
                ndarray::linalg::general_mat_mul(1.0, &scores, &v, 0.0, &mut out);
            }
        }
        ctx.dot(&part.attn_out_w)
    }
}

/// `x · w + b`, the bias broadcast first so that the matmul accumulates onto it.
fn affine(x: ArrayView2<'_, f32>, w: &Array2<f32>, b: &Array1<f32>) -> Array2<f32> {
    let mut y = Array2::from_shape_fn((x.nrows(), w.ncols()), |(_, j)| b[j]);
    ndarray::linalg::general_mat_mul(1.0, &x, w, 1.0, &mut y);
    y
}

/// The residual connection: `x += Σ partials + b`.
fn add_partials(x: &mut Array2<f32>, partials: Vec<Array2<f32>>, b: &Array1<f32>) {
    for p in &partials {
        *x += p;
    }
    *x += b;
}

fn layer_norm(mut x: ArrayViewMut2<'_, f32>, w: &Array1<f32>, b: &Array1<f32>, eps: f32) {
    let n = x.ncols() as f32;
    let (Some(w), Some(b)) = (w.as_slice(), b.as_slice()) else {
        return;
    };
    let mut centred = vec![0f32; x.ncols()];
    for mut row in x.rows_mut() {
        let Some(row) = row.as_slice_mut() else {
            continue;
        };
        let mean = sum(row) / n;
        centred
            .iter_mut()
            .zip(row.iter())
            .for_each(|(c, &v)| *c = (v - mean) * (v - mean));
        let inv = 1.0 / (sum(&centred) / n + eps).sqrt();
        for ((v, &g), &beta) in row.iter_mut().zip(w).zip(b) {
            *v = (*v - mean) * inv * g + beta;
        }
    }
}

/// Row-wise `softmax(scale · scores)`. The exponentials are [`exp_nonpositive`] in plain
/// slice loops, which the compiler vectorises: with libm's `expf` per score, the softmax of
/// a 256-token passage took a tenth of the forward pass.
fn softmax_rows(scores: &mut Array2<f32>, scale: f32) {
    for mut row in scores.rows_mut() {
        let Some(row) = row.as_slice_mut() else {
            continue;
        };
        let max = row
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        for v in row.iter_mut() {
            *v = exp_nonpositive((*v - max) * scale);
        }
        let sum = sum(row);
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// A sum in eight lanes, which the compiler may keep in one vector register (a plain f32
/// sum must add in order and cannot be vectorised).
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// `e^x` for `x ≤ 0` (the softmax's shifted scores), within 2 ulp: `x = n·ln2 + r`, then
/// Cephes' polynomial for `e^r` on `|r| ≤ ln2/2`, scaled by `2^n` built from its bits. All
/// arithmetic, no branches: a loop of it vectorises.
fn exp_nonpositive(x: f32) -> f32 {
    // Below -87, e^x is under f32's smallest normal: the softmax can take it as 2^-126.
    let x = x.clamp(-87.0, 0.0);
    // Round x·log2(e) to an integer n: adding 1.5·2^23 leaves no fraction bits, and the
    // sum's low mantissa bits are then n itself (an `as i32` cast would not vectorise).
    let shifted = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = shifted - 12_582_912.0;
    // ln 2 in two parts, so that n·ln2 is exact enough.
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // n is in [-126, 0]: 2^n is a normal float with exponent bits n + 127.
    let exponent = shifted
        .to_bits()
        .wrapping_sub(0x4b40_0000)
        .wrapping_add(127);
    e_r * f32::from_bits(exponent << 23)
}

/// BERT's exact GELU, `x/2 · (1 + erf(x/√2))` (not the tanh approximation: the model was
/// trained with erf).
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf in f32 as a rational function of x (Eigen's and TensorFlow's): within a few ulp of
/// the true erf, and without branches, table lookups or `exp`, so the GELU loop vectorises.
/// A libm call per value made GELU a fifth of the whole forward pass.
fn erf(x: f32) -> f32 {
    // erf(±4) is ±1 in f32, and the rational function is fitted on [-4, 4].
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) / 10_000.0;
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "max relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 1e-37);
        assert!(exp_nonpositive(f32::NEG_INFINITY) >= 0.0);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut scores =
            Array2::from_shape_vec((2, 3), vec![1.0, 2.0, 3.0, -5.0, 0.0, 5.0]).expect("shape");
        softmax_rows(&mut scores, 0.5);
        for row in scores.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        let e: Vec<f32> = [1f32, 2.0, 3.0].iter().map(|v| (v * 0.5).exp()).collect();
        let total: f32 = e.iter().sum();
        assert!((scores[[0, 2]] - e[2] / total).abs() < 1e-6);
    }

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 / 10_000.0;
            worst = worst.max((f64::from(erf(x)) - libm::erf(f64::from(x))).abs());
        }
        assert!(worst < 5e-7, "max error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(f32::NAN).is_nan());
    }
}
