//! A snapshot: one committed generation, opened from its manifest. Snapshots are immutable and
//! shared through `Arc`, so searches keep using the generation they started on while writers
//! publish newer ones.

use std::path::Path;
use std::sync::Arc;

use crate::codec::Codebook;
use crate::error::{PlaidError, Result};
use crate::format::{Container, ContainerWriter, FileRef, Kind};
use crate::manifest::Manifest;
use crate::segment::DocumentFields;
use crate::segment::Segment;
use crate::storage::unique_name;

/// The deletion bitmap (bit set = deleted). Documents beyond its length are live.
#[derive(Clone, Default)]
pub(crate) struct Tombstones {
    pub words: Vec<u64>,
}

impl Tombstones {
    #[inline]
    pub fn is_deleted(&self, doc: u32) -> bool {
        self.words
            .get(doc as usize / 64)
            .is_some_and(|w| (w >> (doc % 64)) & 1 == 1)
    }

    pub fn set(&mut self, doc: u32) {
        let i = doc as usize / 64;
        if self.words.len() <= i {
            self.words.resize(i + 1, 0);
        }
        self.words[i] |= 1 << (doc % 64);
    }

    /// Clears every bit from document `docs` on.
    pub fn truncate(&mut self, docs: u32) {
        let (full, rem) = (docs as usize / 64, docs % 64);
        self.words.truncate(full + usize::from(rem > 0));
        if rem > 0 {
            if let Some(w) = self.words.get_mut(full) {
                *w &= (1u64 << rem) - 1;
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    pub fn write(&self, dir: &Path, generation: u64) -> Result<FileRef> {
        let mut w = ContainerWriter::create(
            dir,
            unique_name("tomb-", generation, "plaid"),
            Kind::Tombstones,
            1,
        )?;
        w.section(bytemuck::cast_slice(&self.words))?;
        w.finish()
    }

    fn open(dir: &Path, fref: &FileRef) -> Result<Self> {
        Self::from_container(Container::open(dir, fref, Kind::Tombstones)?)
    }

    /// Reads an opened tombstones container.
    pub fn from_container(c: Container) -> Result<Self> {
        if c.n_sections() != 1 {
            return Err(PlaidError::corrupt("tombstones: wrong number of sections"));
        }
        c.verify_section(0)?;
        Ok(Tombstones {
            words: c.typed::<u64>(0)?.to_vec(),
        })
    }
}

pub(crate) struct Snapshot {
    pub manifest: Manifest,
    pub codebook: Option<Arc<Codebook>>,
    /// Shared with the snapshots before and after this one that list the same files (files are
    /// immutable, so an opened, verified segment stays valid).
    pub segments: Vec<Arc<Segment>>,
    pub tombstones: Tombstones,
}

impl Snapshot {
    pub fn open(dir: &Path, manifest: Manifest) -> Result<Self> {
        Self::open_from(dir, manifest, None)
    }

    /// Opens `manifest`'s generation, reusing the codebook and segments of `prev` that it
    /// still lists (same file, same metadata) instead of opening and verifying them again, so
    /// a small commit or a refresh costs the same whatever the index size.
    pub fn open_from(dir: &Path, manifest: Manifest, prev: Option<&Snapshot>) -> Result<Self> {
        // Segments depend on the codebook only through the residual row size.
        let reuse = prev.filter(|p| {
            p.manifest.dim == manifest.dim && p.manifest.options.nbits == manifest.options.nbits
        });
        let same_codebook = reuse.filter(|p| {
            p.manifest.codebook == manifest.codebook
                && p.manifest.num_centroids == manifest.num_centroids
        });
        let codebook = match (
            &manifest.codebook,
            same_codebook.and_then(|p| p.codebook.clone()),
        ) {
            (Some(_), Some(cb)) => Some(cb),
            (Some(f), None) => Some(Arc::new(Codebook::open(dir, f, &manifest)?)),
            (None, _) => None,
        };
        let row_bytes = codebook.as_ref().map_or(0, |c| c.codec.row_bytes());
        let segments = manifest
            .segments
            .iter()
            .map(|meta| {
                let known = reuse.and_then(|p| p.segments.iter().find(|s| &s.meta == meta));
                match known {
                    Some(s) => Ok(Arc::clone(s)),
                    None => Segment::open(dir, meta, row_bytes).map(Arc::new),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let tombstones = match &manifest.tombstones {
            Some(f) => Tombstones::open(dir, f)?,
            None => Tombstones::default(),
        };
        if tombstones.count() != manifest.deleted_docs
            || manifest.live_docs + manifest.deleted_docs != manifest.next_doc as u64
        {
            return Err(PlaidError::corrupt(
                "tombstone count does not match the manifest",
            ));
        }
        Ok(Snapshot {
            manifest,
            codebook,
            segments,
            tombstones,
        })
    }

    /// The segment holding `doc` and its local number.
    #[inline]
    pub fn locate(&self, doc: u32) -> Option<(&Segment, u32)> {
        let i = self.segments.partition_point(|s| s.meta.doc_start <= doc);
        let s = self.segments.get(i.checked_sub(1)?)?;
        let local = doc - s.meta.doc_start;
        (local < s.meta.n_docs).then_some((s, local))
    }

    pub fn is_live(&self, doc: u32) -> bool {
        doc < self.manifest.next_doc && !self.tombstones.is_deleted(doc)
    }

    /// The live document with external id `id`.
    pub fn lookup(&self, id: &str) -> Option<u32> {
        for s in self.segments.iter().rev() {
            for l in s.find(id) {
                let doc = s.meta.doc_start + l;
                if !self.tombstones.is_deleted(doc) {
                    return Some(doc);
                }
            }
        }
        None
    }

    pub fn external_id(&self, doc: u32) -> &str {
        self.locate(doc).map_or("", |(s, l)| s.id(l))
    }

    pub fn doc_tokens(&self, doc: u32) -> usize {
        self.locate(doc).map_or(0, |(s, l)| {
            let (a, b) = s.token_range(l);
            b - a
        })
    }

    /// Stored text and metadata of document `doc` (empty strings when none were stored).
    pub fn fields(&self, doc: u32) -> Result<(&str, &str)> {
        match self.locate(doc) {
            Some((s, l)) => Ok((s.text(l)?, s.metadata(l)?)),
            None => Ok(("", "")),
        }
    }

    /// Stored text and metadata of document `doc` as `documents` returns them. Metadata that
    /// is not a JSON object (only a forged or buggy file can hold it: checksums pass) is
    /// `INDEX_CORRUPT`, never handed to callers that parse it.
    pub fn document(&self, doc: u32) -> Result<DocumentFields> {
        let (text, metadata) = self.fields(doc)?;
        crate::filter::parse_stored(metadata)?;
        Ok(DocumentFields::from_stored(text, metadata))
    }

    /// Decompresses document `doc` into `out` (resized to `tokens × dim`).
    pub fn decompress_doc(&self, doc: u32, out: &mut Vec<f32>) -> Result<()> {
        let (Some(cb), Some((s, l))) = (&self.codebook, self.locate(doc)) else {
            out.clear();
            return Ok(());
        };
        cb.decompress_doc(s, l, out)
    }
}
