//! Segments: the immutable unit of stored documents. One commit writes one segment holding
//! documents `doc_start .. doc_start + n_docs` with their ids, centroid codes, packed residuals
//! and the segment's inverted file (centroid → document numbers).
//!
//! Sections of a segment container (see `format.rs` for the container itself):
//!
//! | # | content | type |
//! |---|---------|------|
//! | 0 | token offsets per document, `n_docs + 1` | u64 |
//! | 1 | id byte offsets, `n_docs + 1` | u64 |
//! | 2 | id bytes (UTF-8, concatenated) | u8 |
//! | 3 | FNV-1a hashes of the ids, sorted | u64 |
//! | 4 | local document of each sorted hash | u32 |
//! | 5 | centroid code per token | u16 if K ≤ 65,536 else u32 |
//! | 6 | packed residuals, `dim·nbits/8` bytes per token | u8 |
//! | 7 | IVF list offsets, `num_centroids + 1` | u64 |
//! | 8 | IVF postings: absolute document numbers, ascending per list, unique | u32 |
//! | 9 | text byte offsets, `n_docs + 1` | u64 |
//! | 10 | document texts (UTF-8, concatenated; empty = none) | u8 |
//! | 11 | metadata byte offsets, `n_docs + 1` | u64 |
//! | 12 | document metadata (JSON objects, concatenated; empty = none) | u8 |
//! | 13 | (format ≥ 3) inverse reconstruction norm per token, `1 / ‖centroid + residual‖` | f32 |
//!
//! Section 13 lies between the residuals and the IVF in the file (it is filled while tokens
//! are encoded); its number is the last so that a format-2 segment's sections keep theirs.
//! A format-2 segment has sections 0–12; search computes its norms from the codebook.

use std::path::Path;

use crate::error::{PlaidError, Result};
use crate::format::{Container, ContainerWriter, Kind, FORMAT_VERSION};
use crate::ids::{id_hash, StagedIds};
use crate::manifest::SegmentMeta;
use crate::storage::unique_name;

/// What is stored with a document besides its embeddings: its text and metadata (the text of
/// a JSON object; search filters match it). Both are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentFields {
    pub text: Option<String>,
    pub metadata: Option<String>,
}

impl DocumentFields {
    /// From the stored form, where an empty string means "not stored".
    pub(crate) fn from_stored(text: &str, metadata: &str) -> Self {
        DocumentFields {
            text: (!text.is_empty()).then(|| text.to_string()),
            metadata: (!metadata.is_empty()).then(|| metadata.to_string()),
        }
    }
}

const S_DOC_OFFSETS: usize = 0;
const S_ID_OFFSETS: usize = 1;
const S_ID_BLOB: usize = 2;
const S_ID_HASHES: usize = 3;
const S_ID_ORDER: usize = 4;
const S_CODES: usize = 5;
const S_RESIDUALS: usize = 6;
const S_IVF_OFFSETS: usize = 7;
const S_IVF_DOCS: usize = 8;
const S_TEXT_OFFSETS: usize = 9;
const S_TEXTS: usize = 10;
const S_META_OFFSETS: usize = 11;
const S_METAS: usize = 12;
const S_INV_NORMS: usize = 13;
const N_SECTIONS: usize = 14;
/// Sections of a format-2 segment (no stored norms).
const N_SECTIONS_V2: usize = 13;

/// Postings buffered at once while building the IVF (16 MiB; bounds memory for huge segments:
/// each pass over ranges of centroids rescans the codes, a fraction of the build's time).
#[cfg(not(test))]
const IVF_BUFFER: usize = 1 << 22;
/// Small in unit tests, so that their segments are built in many passes.
#[cfg(test)]
const IVF_BUFFER: usize = 64;

pub(crate) fn code_bytes_for(num_centroids: usize) -> u8 {
    if num_centroids <= 1 << 16 {
        2
    } else {
        4
    }
}

/// Streams one segment to disk.
pub(crate) struct SegmentWriter {
    cw: ContainerWriter,
    doc_start: u32,
    doc_offsets: Vec<u64>,
    code_bytes: u8,
    row_bytes: usize,
    codes_off: u64,
    res_off: u64,
    norms_off: u64,
    num_centroids: usize,
}

impl SegmentWriter {
    pub fn create(
        dir: &Path,
        generation: u64,
        doc_start: u32,
        doclens: &[u32],
        ids: &StagedIds,
        num_centroids: usize,
        row_bytes: usize,
    ) -> Result<Self> {
        let mut doc_offsets = Vec::with_capacity(doclens.len() + 1);
        let mut acc = 0u64;
        doc_offsets.push(0);
        for &l in doclens {
            acc += l as u64;
            doc_offsets.push(acc);
        }
        let code_bytes = code_bytes_for(num_centroids);
        let name = unique_name("seg-", generation, "plaid");
        let mut cw = ContainerWriter::create(dir, name, Kind::Segment, N_SECTIONS)?;
        cw.section(bytemuck::cast_slice(&doc_offsets))?;
        let (id_offsets, id_blob) = ids.sections();
        cw.section(bytemuck::cast_slice(id_offsets))?;
        cw.section(id_blob)?;
        let t = ids.table();
        cw.section(bytemuck::cast_slice(&t.hashes))?;
        cw.section(bytemuck::cast_slice(&t.order))?;
        let codes_off = cw.reserve(acc * code_bytes as u64)?;
        let res_off = cw.reserve(acc * row_bytes as u64)?;
        let norms_off = cw.reserve(acc * 4)?;
        Ok(Self {
            cw,
            doc_start,
            doc_offsets,
            code_bytes,
            row_bytes,
            codes_off,
            res_off,
            norms_off,
            num_centroids,
        })
    }

    pub fn path(&self) -> &Path {
        self.cw.path()
    }

    pub fn n_tokens(&self) -> u64 {
        self.doc_offsets.last().copied().unwrap_or(0)
    }

    /// Writes codes, packed residuals and inverse reconstruction norms of tokens
    /// `token_start ..`.
    pub fn write_tokens(
        &mut self,
        token_start: u64,
        codes: &[u32],
        residuals: &[u8],
        inv_norms: &[f32],
    ) -> Result<()> {
        if token_start + codes.len() as u64 > self.n_tokens()
            || residuals.len() != codes.len() * self.row_bytes
            || inv_norms.len() != codes.len()
        {
            return Err(PlaidError::Internal("segment write out of range".into()));
        }
        let bytes: Vec<u8> = if self.code_bytes == 2 {
            codes
                .iter()
                .flat_map(|&c| (c as u16).to_le_bytes())
                .collect()
        } else {
            codes.iter().flat_map(|&c| c.to_le_bytes()).collect()
        };
        self.cw.write_at(
            self.codes_off + token_start * self.code_bytes as u64,
            &bytes,
        )?;
        self.cw.write_at(
            self.res_off + token_start * self.row_bytes as u64,
            residuals,
        )?;
        self.cw.write_at(
            self.norms_off + token_start * 4,
            bytemuck::cast_slice(inv_norms),
        )
    }

    /// Builds the IVF from the written codes, writes the stored text and metadata of each
    /// document (`fields`: per document `(text length, metadata length)` and the concatenated
    /// bytes, text then metadata per document), then the header and checksums, and fsyncs.
    pub fn finish(mut self, fields: &StagedFields<'_>) -> Result<SegmentMeta> {
        let n = self.doc_offsets.len() - 1;
        if fields.lens.len() != n {
            return Err(PlaidError::Internal(
                "stored fields do not match documents".into(),
            ));
        }
        let k = self.num_centroids;
        let map = self.cw.map_written()?;
        let range = self
            .cw
            .section_range(S_CODES)
            .ok_or_else(|| PlaidError::Internal("codes section missing".into()))?;
        let raw = map
            .get(range)
            .ok_or_else(|| PlaidError::Internal("short segment".into()))?;
        let codes: Vec<u32>;
        let code_at: Box<dyn Fn(usize) -> usize + '_> = if self.code_bytes == 2 {
            let s: &[u16] = bytemuck::try_cast_slice(raw)
                .map_err(|_| PlaidError::Internal("misaligned codes".into()))?;
            Box::new(move |i| s[i] as usize)
        } else {
            codes = bytemuck::try_cast_slice::<u8, u32>(raw)
                .map_err(|_| PlaidError::Internal("misaligned codes".into()))?
                .to_vec();
            Box::new(move |i| codes[i] as usize)
        };
        let n_docs = self.doc_offsets.len() - 1;
        // Pass 1: distinct (centroid, doc) pairs per centroid.
        let mut counts = vec![0u64; k];
        let mut last = vec![u32::MAX; k];
        for d in 0..n_docs {
            for t in self.doc_offsets[d]..self.doc_offsets[d + 1] {
                let c = code_at(t as usize);
                if c >= k {
                    return Err(PlaidError::Internal(format!("code {c} ≥ {k}")));
                }
                if last[c] != d as u32 {
                    last[c] = d as u32;
                    counts[c] += 1;
                }
            }
        }
        let mut offsets = Vec::with_capacity(k + 1);
        offsets.push(0u64);
        for &c in &counts {
            offsets.push(offsets.last().copied().unwrap_or(0) + c);
        }
        self.cw.section(bytemuck::cast_slice(&offsets))?;
        // Pass 2..: fill postings for ranges of centroids that fit the buffer.
        self.cw.begin()?;
        let mut c0 = 0;
        while c0 < k {
            let mut c1 = c0 + 1;
            while c1 < k && (offsets[c1 + 1] - offsets[c0]) as usize <= IVF_BUFFER {
                c1 += 1;
            }
            let base = offsets[c0];
            let mut buf = vec![0u32; (offsets[c1] - base) as usize];
            let mut fill: Vec<u64> = offsets[c0..c1].iter().map(|o| o - base).collect();
            last[c0..c1].fill(u32::MAX);
            for d in 0..n_docs {
                for t in self.doc_offsets[d]..self.doc_offsets[d + 1] {
                    let c = code_at(t as usize);
                    if c >= c0 && c < c1 && last[c] != d as u32 {
                        last[c] = d as u32;
                        buf[fill[c - c0] as usize] = self.doc_start + d as u32;
                        fill[c - c0] += 1;
                    }
                }
            }
            self.cw.write(bytemuck::cast_slice(&buf))?;
            c0 = c1;
        }
        self.cw.end();
        drop(code_at);
        drop(map);
        // Stored fields: texts, then metadata, each as offsets + concatenated bytes.
        for which in 0..2 {
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0u64);
            for l in fields.lens {
                let len = if which == 0 { l.0 } else { l.1 };
                offsets.push(offsets.last().copied().unwrap_or(0) + len as u64);
            }
            self.cw.section(bytemuck::cast_slice(&offsets))?;
            self.cw.begin()?;
            let mut at = 0usize;
            for l in fields.lens {
                let (skip, take) = if which == 0 { (0, l.0) } else { (l.0, l.1) };
                let a = at + skip as usize;
                let bytes = fields
                    .bytes
                    .get(a..a + take as usize)
                    .ok_or_else(|| PlaidError::Internal("stored fields truncated".into()))?;
                self.cw.write(bytes)?;
                at += (l.0 + l.1) as usize;
            }
            self.cw.end();
        }
        let n_tokens = self.n_tokens();
        // Reserved right after the residuals (physical section 7), numbered 13.
        self.cw.move_section_to_end(S_RESIDUALS + 1);
        let file = self.cw.finish()?;
        Ok(SegmentMeta {
            file,
            doc_start: self.doc_start,
            n_docs: n_docs as u32,
            n_tokens,
            code_bytes: self.code_bytes,
            num_centroids: k as u32,
            format: FORMAT_VERSION,
        })
    }
}

/// Text and metadata of the documents of one transaction, as staged by the writer.
pub(crate) struct StagedFields<'a> {
    /// Per document: (text bytes, metadata bytes).
    pub lens: &'a [(u32, u32)],
    /// Text then metadata of each document, concatenated in document order.
    pub bytes: &'a [u8],
}

/// Codes of a segment, borrowed from the map.
#[derive(Clone, Copy)]
pub(crate) enum Codes<'a> {
    U16(&'a [u16]),
    U32(&'a [u32]),
}

/// An open segment.
pub(crate) struct Segment {
    c: Container,
    pub meta: SegmentMeta,
    row_bytes: usize,
}

impl Segment {
    pub fn open(dir: &Path, meta: &SegmentMeta, row_bytes: usize) -> Result<Self> {
        let c = Container::open(dir, &meta.file, Kind::Segment)?;
        Self::from_container(c, meta, row_bytes)
    }

    /// Checks an opened container against the manifest's `meta`: the small sections are
    /// verified and validated, the large ones left to lazy verification.
    pub fn from_container(c: Container, meta: &SegmentMeta, row_bytes: usize) -> Result<Self> {
        let bad = |m: &str| PlaidError::corrupt(format!("{}: {m}", meta.file.name));
        if c.version() != meta.format {
            return Err(bad("format version differs from the manifest's"));
        }
        let expected = if c.version() >= 3 {
            N_SECTIONS
        } else {
            N_SECTIONS_V2
        };
        if c.n_sections() != expected {
            return Err(bad("wrong number of sections"));
        }
        for s in [
            S_DOC_OFFSETS,
            S_ID_OFFSETS,
            S_ID_BLOB,
            S_ID_HASHES,
            S_ID_ORDER,
            S_IVF_OFFSETS,
            S_TEXT_OFFSETS,
            S_META_OFFSETS,
        ] {
            c.verify_section(s)?;
        }
        let seg = Segment {
            c,
            meta: meta.clone(),
            row_bytes,
        };
        let n = meta.n_docs as usize;
        let nt = meta.n_tokens;
        let docs = seg.doc_offsets()?;
        if docs.len() != n + 1
            || docs[0] != 0
            || docs[n] != nt
            || docs.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad("bad document offsets"));
        }
        let ido = seg.c.typed::<u64>(S_ID_OFFSETS)?;
        let blob = seg.c.bytes(S_ID_BLOB);
        if ido.len() != n + 1
            || ido[0] != 0
            || ido[n] != blob.len() as u64
            || ido.windows(2).any(|w| w[0] > w[1])
            || std::str::from_utf8(blob).is_err()
        {
            return Err(bad("bad id table"));
        }
        for i in 0..n {
            if std::str::from_utf8(&blob[ido[i] as usize..ido[i + 1] as usize]).is_err() {
                return Err(bad("id is not UTF-8"));
            }
        }
        let hashes = seg.c.typed::<u64>(S_ID_HASHES)?;
        let order = seg.c.typed::<u32>(S_ID_ORDER)?;
        if hashes.len() != n || order.len() != n || order.iter().any(|&o| o as usize >= n) {
            return Err(bad("bad id index"));
        }
        // Checked: a forged token count must not wrap around to the sections' real sizes.
        // Once this holds, every token offset (≤ nt) indexes inside both sections.
        if Some(seg.c.bytes(S_CODES).len() as u64) != nt.checked_mul(meta.code_bytes as u64)
            || Some(seg.c.bytes(S_RESIDUALS).len() as u64) != nt.checked_mul(row_bytes as u64)
            || (expected == N_SECTIONS
                && Some(seg.c.bytes(S_INV_NORMS).len() as u64) != nt.checked_mul(4))
        {
            return Err(bad("bad code/residual sizes"));
        }
        seg.inv_norms()?;
        seg.codes()?;
        let ivo = seg.c.typed::<u64>(S_IVF_OFFSETS)?;
        let ivd = seg.c.typed::<u32>(S_IVF_DOCS)?;
        if ivo.len() != meta.num_centroids as usize + 1
            || ivo[0] != 0
            || ivo.last().copied() != Some(ivd.len() as u64)
            || ivo.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad("bad IVF offsets"));
        }
        for (o, b) in [(S_TEXT_OFFSETS, S_TEXTS), (S_META_OFFSETS, S_METAS)] {
            let offs = seg.c.typed::<u64>(o)?;
            if offs.len() != n + 1
                || offs[0] != 0
                || offs[n] != seg.c.bytes(b).len() as u64
                || offs.windows(2).any(|w| w[0] > w[1])
            {
                return Err(bad("bad stored-field offsets"));
            }
        }
        Ok(seg)
    }

    pub fn doc_offsets(&self) -> Result<&[u64]> {
        self.c.typed::<u64>(S_DOC_OFFSETS)
    }

    /// Token range of a local document (checked at open, so indexing is safe).
    #[inline]
    pub fn token_range(&self, local: u32) -> (usize, usize) {
        let o = self.c.typed::<u64>(S_DOC_OFFSETS).unwrap_or(&[]);
        let l = local as usize;
        match (o.get(l), o.get(l + 1)) {
            (Some(&a), Some(&b)) => (a as usize, b as usize),
            _ => (0, 0),
        }
    }

    pub fn codes(&self) -> Result<Codes<'_>> {
        Ok(if self.meta.code_bytes == 2 {
            Codes::U16(self.c.typed::<u16>(S_CODES)?)
        } else {
            Codes::U32(self.c.typed::<u32>(S_CODES)?)
        })
    }

    /// Bytes of (codes + residuals + stored norms, IVF offsets + postings).
    pub fn byte_breakdown(&self) -> (u64, u64) {
        let l = |i| self.c.section_range(i).len() as u64;
        let norms = if self.has_inv_norms() {
            l(S_INV_NORMS)
        } else {
            0
        };
        (
            l(S_CODES) + l(S_RESIDUALS) + norms,
            l(S_IVF_OFFSETS) + l(S_IVF_DOCS),
        )
    }

    /// Whether the segment stores inverse norms (format ≥ 3).
    pub fn has_inv_norms(&self) -> bool {
        self.c.n_sections() > S_INV_NORMS
    }

    /// The stored inverse reconstruction norm of every token (format ≥ 3; `None` before).
    pub fn inv_norms(&self) -> Result<Option<&[f32]>> {
        if !self.has_inv_norms() {
            return Ok(None);
        }
        self.c.typed::<f32>(S_INV_NORMS).map(Some)
    }

    /// Verifies the stored norms of tokens `a..b` (lazy checksum; nothing without norms).
    pub fn check_inv_norms(&self, a: usize, b: usize) -> Result<()> {
        if !self.has_inv_norms() {
            return Ok(());
        }
        let base = self.c.section_range(S_INV_NORMS).start;
        self.c.verify(base + a * 4..base + b * 4)
    }

    pub fn residuals(&self) -> &[u8] {
        self.c.bytes(S_RESIDUALS)
    }

    /// Verifies the codes of tokens `a..b` (lazy checksum).
    #[inline]
    pub fn check_codes(&self, a: usize, b: usize) -> Result<()> {
        let base = self.c.section_range(S_CODES).start;
        let cb = self.meta.code_bytes as usize;
        self.c.verify(base + a * cb..base + b * cb)
    }

    /// Verifies the residuals of tokens `a..b` (lazy checksum).
    pub fn check_residuals(&self, a: usize, b: usize) -> Result<()> {
        let base = self.c.section_range(S_RESIDUALS).start;
        self.c
            .verify(base + a * self.row_bytes..base + b * self.row_bytes)
    }

    /// The IVF list of centroid `c` (empty if the segment predates that centroid), verified.
    pub fn ivf_list(&self, c: usize) -> Result<&[u32]> {
        let offs = self.c.typed::<u64>(S_IVF_OFFSETS)?;
        let (Some(&a), Some(&b)) = (offs.get(c), offs.get(c + 1)) else {
            return Ok(&[]);
        };
        let docs = self.c.typed::<u32>(S_IVF_DOCS)?;
        let base = self.c.section_range(S_IVF_DOCS).start;
        self.c
            .verify(base + a as usize * 4..base + b as usize * 4)?;
        docs.get(a as usize..b as usize).ok_or_else(|| {
            PlaidError::corrupt(format!("{}: IVF out of range", self.meta.file.name))
        })
    }

    /// External id of a local document.
    pub fn id(&self, local: u32) -> &str {
        let o = self.c.typed::<u64>(S_ID_OFFSETS).unwrap_or(&[]);
        let l = local as usize;
        match (o.get(l), o.get(l + 1)) {
            (Some(&a), Some(&b)) => self
                .c
                .bytes(S_ID_BLOB)
                .get(a as usize..b as usize)
                .and_then(|s| std::str::from_utf8(s).ok())
                .unwrap_or(""),
            _ => "",
        }
    }

    /// Stored field bytes of a local document (section `offsets`/`blob`), verified lazily.
    fn field(&self, offsets: usize, blob: usize, local: u32) -> Result<&[u8]> {
        let o = self.c.typed::<u64>(offsets)?;
        let l = local as usize;
        let (Some(&a), Some(&b)) = (o.get(l), o.get(l + 1)) else {
            return Ok(&[]);
        };
        let base = self.c.section_range(blob).start;
        self.c.verify(base + a as usize..base + b as usize)?;
        self.c
            .bytes(blob)
            .get(a as usize..b as usize)
            .ok_or_else(|| {
                PlaidError::corrupt(format!(
                    "{}: stored field out of range",
                    self.meta.file.name
                ))
            })
    }

    /// The stored text of a local document ("" when none was stored).
    pub fn text(&self, local: u32) -> Result<&str> {
        std::str::from_utf8(self.field(S_TEXT_OFFSETS, S_TEXTS, local)?).map_err(|_| {
            PlaidError::corrupt(format!("{}: stored text is not UTF-8", self.meta.file.name))
        })
    }

    /// The stored metadata (a JSON object's text) of a local document ("" when none).
    pub fn metadata(&self, local: u32) -> Result<&str> {
        std::str::from_utf8(self.field(S_META_OFFSETS, S_METAS, local)?).map_err(|_| {
            PlaidError::corrupt(format!(
                "{}: stored metadata is not UTF-8",
                self.meta.file.name
            ))
        })
    }

    /// Bytes of stored texts and metadata.
    pub fn field_bytes(&self) -> u64 {
        let l = |i| self.c.section_range(i).len() as u64;
        l(S_TEXT_OFFSETS) + l(S_TEXTS) + l(S_META_OFFSETS) + l(S_METAS)
    }

    /// Local documents whose id is `id` (several if earlier copies were deleted and re-added
    /// within... never within one segment, but kept general).
    pub fn find(&self, id: &str) -> impl Iterator<Item = u32> + '_ {
        let h = id_hash(id);
        let hashes = self.c.typed::<u64>(S_ID_HASHES).unwrap_or(&[]);
        let order = self.c.typed::<u32>(S_ID_ORDER).unwrap_or(&[]);
        let start = hashes.partition_point(|&x| x < h);
        let id = id.to_string();
        hashes[start..]
            .iter()
            .zip(&order[start.min(order.len())..])
            .take_while(move |(&x, _)| x == h)
            .map(|(_, &l)| l)
            .filter(move |&l| self.id(l) == id)
    }
}
