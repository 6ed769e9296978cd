//! The binary container every index file uses (codebook, segments, tombstones).
//!
//! ```text
//! offset  size  field
//! 0       8     magic "CLBPLAID"
//! 8       4     format_version (u32 LE)            -> INDEX_FORMAT_UNSUPPORTED if unknown
//! 12      4     kind (1 codebook, 2 segment, 3 tombstones)
//! 16      4     number of sections n
//! 20      4     checksum block size (65,536)
//! 24      8     data_len: bytes covered by block checksums (header + sections)
//! 32      8     offset of the checksum table (= data_len rounded up to 8)
//! 40      8     number of checksum blocks
//! 48      16    reserved (zero)
//! 64      16·n  section table: (offset u64, length u64), sections aligned to 64 bytes
//! ...           sections
//! table   4·b   CRC-32 of each 64 KiB block of [0, data_len)
//! ```
//!
//! The manifest records each file's length and the CRC-32 of its checksum table, so one
//! small check at open transitively covers every byte. Small sections are verified eagerly at
//! open; the large ones (codes, residuals, IVF postings) are verified block by block the first
//! time a search touches them, so opening stays O(metadata) and a flipped byte anywhere still
//! surfaces as `INDEX_CORRUPT` before it can influence a result.
//!
//! All integers are little-endian; the crate refuses to build for big-endian targets.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::error::{PlaidError, Result};

#[cfg(target_endian = "big")]
compile_error!("colbert-plaid stores little-endian data and does not support big-endian targets");

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"CLBPLAID";
const BLOCK: usize = 65_536;
const HEADER: usize = 64;
const ALIGN: u64 = 64;

/// Kinds of container files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Codebook = 1,
    Segment = 2,
    Tombstones = 3,
}

/// How the manifest names a file and pins its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    pub len: u64,
    pub table_crc: u32,
}

/// Writes a container: sections in order, optionally with reserved regions filled later.
pub(crate) struct ContainerWriter {
    out: BufWriter<File>,
    path: PathBuf,
    name: String,
    kind: Kind,
    sections: Vec<(u64, u64)>,
    n_sections: usize,
    pos: u64,
    open_section: Option<u64>,
}

fn io_err(path: &Path, e: std::io::Error) -> PlaidError {
    PlaidError::io("writing", path, e)
}

impl ContainerWriter {
    pub fn create(dir: &Path, name: String, kind: Kind, n_sections: usize) -> Result<Self> {
        let path = dir.join(&name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let mut w = Self {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            name,
            kind,
            sections: Vec::with_capacity(n_sections),
            n_sections,
            pos: 0,
            open_section: None,
        };
        let head = HEADER + 16 * n_sections;
        w.put(&vec![0u8; head])?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| io_err(&self.path, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn align(&mut self) -> Result<()> {
        let pad = (ALIGN - self.pos % ALIGN) % ALIGN;
        self.put(&vec![0u8; pad as usize])
    }

    /// Starts a section at the next aligned offset; its bytes come from [`Self::write`].
    pub fn begin(&mut self) -> Result<()> {
        self.align()?;
        self.open_section = Some(self.pos);
        Ok(())
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.put(bytes)
    }

    pub fn end(&mut self) {
        if let Some(start) = self.open_section.take() {
            self.sections.push((start, self.pos - start));
        }
    }

    /// A whole section in one call.
    pub fn section(&mut self, bytes: &[u8]) -> Result<()> {
        self.begin()?;
        self.write(bytes)?;
        self.end();
        Ok(())
    }

    /// Reserves `len` zero bytes as the next section and returns its offset; fill it with
    /// [`Self::write_at`].
    pub fn reserve(&mut self, len: u64) -> Result<u64> {
        self.begin()?;
        let start = self.pos;
        let zeros = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.put(&zeros[..n])?;
            left -= n as u64;
        }
        self.end();
        Ok(start)
    }

    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        let end = self.pos;
        self.out.flush().map_err(|e| io_err(&path, e))?;
        let f = self.out.get_mut();
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| io_err(&path, e))?;
        f.write_all(bytes).map_err(|e| io_err(&path, e))?;
        f.seek(SeekFrom::Start(end)).map_err(|e| io_err(&path, e))?;
        Ok(())
    }

    /// Flushes buffered bytes and maps what has been written so far (read-only), e.g. to
    /// build the IVF from codes already written.
    pub fn map_written(&mut self) -> Result<Mmap> {
        self.out.flush().map_err(|e| io_err(&self.path, e))?;
        map_file(self.out.get_ref(), &self.path)
    }

    /// Offset/length of section `i` written so far.
    pub fn section_range(&self, i: usize) -> Option<Range<usize>> {
        self.sections
            .get(i)
            .map(|&(o, l)| o as usize..(o + l) as usize)
    }

    /// Writes the header and checksum table and fsyncs the file.
    pub fn finish(mut self) -> Result<FileRef> {
        if self.sections.len() != self.n_sections {
            return Err(PlaidError::Internal(format!(
                "{} has {} sections, expected {}",
                self.name,
                self.sections.len(),
                self.n_sections
            )));
        }
        let data_len = self.pos;
        let pad = (8 - data_len % 8) % 8;
        self.put(&vec![0u8; pad as usize])?;
        let table_off = self.pos;
        let n_blocks = (data_len as usize).div_ceil(BLOCK);
        let mut head = Vec::with_capacity(HEADER + 16 * self.n_sections);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&(self.kind as u32).to_le_bytes());
        head.extend_from_slice(&(self.n_sections as u32).to_le_bytes());
        head.extend_from_slice(&(BLOCK as u32).to_le_bytes());
        head.extend_from_slice(&data_len.to_le_bytes());
        head.extend_from_slice(&table_off.to_le_bytes());
        head.extend_from_slice(&(n_blocks as u64).to_le_bytes());
        head.resize(HEADER, 0);
        for &(o, l) in &self.sections {
            head.extend_from_slice(&o.to_le_bytes());
            head.extend_from_slice(&l.to_le_bytes());
        }
        self.write_at(0, &head)?;
        let map = self.map_written()?;
        let data = map.get(..data_len as usize).ok_or_else(|| {
            PlaidError::Internal(format!("{} is shorter than written", self.name))
        })?;
        let crcs: Vec<u32> = data.chunks(BLOCK).map(crc32fast::hash).collect();
        drop(map);
        let table: Vec<u8> = crcs.iter().flat_map(|c| c.to_le_bytes()).collect();
        let table_crc = crc32fast::hash(&table);
        self.put(&table)?;
        self.out.flush().map_err(|e| io_err(&self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| io_err(&self.path, e))?;
        Ok(FileRef {
            name: self.name,
            len: self.pos,
            table_crc,
        })
    }
}

fn map_file(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: memory maps are only made of index files. Index files are immutable once
    // written: every change writes new files under new names and switches the manifest, and
    // nothing in this crate ever truncates or rewrites a file that may be mapped (a writer maps
    // only its own, not yet published, files). Another program modifying the index directory
    // behind our back is outside the contract (as for any database file).
    unsafe { Mmap::map(file) }.map_err(|e| PlaidError::io("mapping", path, e))
}

/// A mapped, checksummed container.
pub(crate) struct Container {
    map: Mmap,
    name: String,
    sections: Vec<Range<usize>>,
    data_len: usize,
    crcs: Vec<u32>,
    /// Per block: 0 not yet checked, 1 good, 2 bad.
    state: Vec<AtomicU8>,
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn rd_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl Container {
    /// Opens `dir/fref.name`, checks length, header, version, kind and the checksum table.
    pub fn open(dir: &Path, fref: &FileRef, kind: Kind) -> Result<Self> {
        let path = dir.join(&fref.name);
        let file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PlaidError::corrupt(format!("missing index file {}", fref.name))
            } else {
                PlaidError::io("opening", &path, e)
            }
        })?;
        let len = file
            .metadata()
            .map_err(|e| PlaidError::io("reading", &path, e))?
            .len();
        let bad = |what: &str| PlaidError::corrupt(format!("{}: {what}", fref.name));
        if len != fref.len || len < HEADER as u64 {
            return Err(bad(&format!("length {len}, expected {}", fref.len)));
        }
        let map = map_file(&file, &path)?;
        let b = &map[..];
        if &b[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        let parse = || -> Option<(u32, u32, usize, usize, usize, usize, usize)> {
            Some((
                rd_u32(b, 8)?,
                rd_u32(b, 12)?,
                rd_u32(b, 16)? as usize,
                rd_u32(b, 20)? as usize,
                rd_u64(b, 24)? as usize,
                rd_u64(b, 32)? as usize,
                rd_u64(b, 40)? as usize,
            ))
        };
        let (version, k, n_sections, block, data_len, table_off, n_blocks) =
            parse().ok_or_else(|| bad("short header"))?;
        let table = table_off
            .checked_add(n_blocks.saturating_mul(4))
            .filter(|&end| end == b.len())
            .and_then(|end| b.get(table_off..end))
            .ok_or_else(|| bad("bad checksum table position"))?;
        if crc32fast::hash(table) != fref.table_crc {
            return Err(bad("checksum table mismatch"));
        }
        if data_len < HEADER || data_len > table_off || n_blocks != data_len.div_ceil(BLOCK) {
            return Err(bad("inconsistent header"));
        }
        let crcs: Vec<u32> = table.chunks_exact(4).filter_map(|c| rd_u32(c, 0)).collect();
        let c = Container {
            name: fref.name.clone(),
            sections: Vec::new(),
            data_len,
            state: (0..n_blocks).map(|_| AtomicU8::new(0)).collect(),
            crcs,
            map,
        };
        // The header is checksummed like everything else: verify it before trusting it.
        c.verify(0..HEADER)?;
        if version != FORMAT_VERSION {
            return Err(PlaidError::FormatUnsupported {
                found: version as u64,
                supported: FORMAT_VERSION,
            });
        }
        if k != kind as u32 || block != BLOCK {
            return Err(bad("inconsistent header"));
        }
        let head_len = HEADER + 16 * n_sections;
        if head_len > data_len {
            return Err(bad("section table out of range"));
        }
        c.verify(0..head_len)?;
        let mut sections = Vec::with_capacity(n_sections);
        for i in 0..n_sections {
            let o = rd_u64(&c.map, HEADER + 16 * i).unwrap_or(u64::MAX) as usize;
            let l = rd_u64(&c.map, HEADER + 16 * i + 8).unwrap_or(u64::MAX) as usize;
            match o.checked_add(l) {
                Some(end) if end <= data_len && o >= head_len => sections.push(o..end),
                _ => return Err(bad("section out of range")),
            }
        }
        Ok(Container { sections, ..c })
    }

    /// Verifies the blocks overlapping `range` (each block once per process lifetime).
    pub fn verify(&self, range: Range<usize>) -> Result<()> {
        if range.start >= range.end {
            return Ok(());
        }
        if range.end > self.data_len {
            return Err(PlaidError::corrupt(format!(
                "{}: read past the data",
                self.name
            )));
        }
        for blk in range.start / BLOCK..=(range.end - 1) / BLOCK {
            let st = &self.state[blk];
            match st.load(Ordering::Acquire) {
                1 => continue,
                2 => return Err(self.block_error(blk)),
                _ => {
                    let end = ((blk + 1) * BLOCK).min(self.data_len);
                    let ok = crc32fast::hash(&self.map[blk * BLOCK..end]) == self.crcs[blk];
                    st.store(if ok { 1 } else { 2 }, Ordering::Release);
                    if !ok {
                        return Err(self.block_error(blk));
                    }
                }
            }
        }
        Ok(())
    }

    fn block_error(&self, blk: usize) -> PlaidError {
        PlaidError::corrupt(format!("{}: checksum mismatch in block {blk}", self.name))
    }

    pub fn n_sections(&self) -> usize {
        self.sections.len()
    }

    pub fn section_range(&self, i: usize) -> Range<usize> {
        self.sections.get(i).cloned().unwrap_or(0..0)
    }

    /// Raw bytes of section `i` (not verified: call [`Self::verify`] for what you read).
    pub fn bytes(&self, i: usize) -> &[u8] {
        &self.map[self.section_range(i)]
    }

    /// Section `i` as a typed slice (alignment is guaranteed by the layout).
    pub fn typed<T: bytemuck::Pod>(&self, i: usize) -> Result<&[T]> {
        bytemuck::try_cast_slice(self.bytes(i))
            .map_err(|_| PlaidError::corrupt(format!("{}: misaligned section {i}", self.name)))
    }

    /// Verifies section `i` in full.
    pub fn verify_section(&self, i: usize) -> Result<()> {
        self.verify(self.section_range(i))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detect_flips() {
        let dir = std::env::temp_dir().join(format!("plaid-format-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = ContainerWriter::create(&dir, "a.bin".into(), Kind::Segment, 3).unwrap();
        w.section(&[1, 2, 3]).unwrap();
        let off = w.reserve(200_000).unwrap();
        w.write_at(off + 5, &[9; 4]).unwrap();
        let floats: Vec<u8> = [1.5f32, 2.5].iter().flat_map(|f| f.to_le_bytes()).collect();
        w.section(&floats).unwrap();
        let fref = w.finish().unwrap();
        let c = Container::open(&dir, &fref, Kind::Segment).unwrap();
        assert_eq!(c.bytes(0), &[1, 2, 3]);
        assert_eq!(&c.bytes(1)[5..9], &[9; 4]);
        assert_eq!(c.typed::<f32>(2).unwrap(), &[1.5, 2.5]);
        c.verify(0..c.data_len).unwrap();
        assert!(Container::open(&dir, &fref, Kind::Codebook).is_err());
        // Flip a byte in the middle of the reserved section: open works, reading it fails.
        let path = dir.join("a.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[off as usize + 100_000] ^= 0x10;
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let c = Container::open(&dir, &fref, Kind::Segment).unwrap();
        let r = c.section_range(1);
        let e = c.verify(r).unwrap_err();
        assert_eq!(e.code(), "INDEX_CORRUPT");
        assert_eq!(c.bytes(0), &[1, 2, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
