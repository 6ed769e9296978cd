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

/// The on-disk format version this build writes (and the newest it reads).
///
/// * 3: segments store each token's inverse reconstruction norm (`1 / ‖centroid + residual‖`),
///   so search scores stored codes without decompressing them.
/// * 2: the first format with checksummed containers and transactions (no stored norms).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format this build reads. Files of any version in
/// `OLDEST_SUPPORTED_FORMAT..=FORMAT_VERSION` open; new files are always written in
/// `FORMAT_VERSION`, so the first commit to an older index upgrades its manifest, and
/// `compact()` rewrites every older segment.
pub const OLDEST_SUPPORTED_FORMAT: u32 = 2;
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

    /// Renumbers section `i` (written so far) as the last section: a file can place a section
    /// next to related data while its number stays the one a newer format appended.
    pub fn move_section_to_end(&mut self, i: usize) {
        if i < self.sections.len() {
            let s = self.sections.remove(i);
            self.sections.push(s);
        }
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
        let head = header(self.kind, &self.sections, data_len, table_off);
        self.write_at(0, &head)?;
        let map = self.map_written()?;
        let data = map.get(..data_len as usize).ok_or_else(|| {
            PlaidError::Internal(format!("{} is shorter than written", self.name))
        })?;
        let (table, table_crc) = checksum_table(data);
        drop(map);
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

/// The header and section table of a container whose checksummed data is `data_len` bytes
/// and whose checksum table starts at `table_off`.
fn header(kind: Kind, sections: &[(u64, u64)], data_len: u64, table_off: u64) -> Vec<u8> {
    let n_blocks = (data_len as usize).div_ceil(BLOCK);
    let mut head = Vec::with_capacity(HEADER + 16 * sections.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&(kind as u32).to_le_bytes());
    head.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    head.extend_from_slice(&(BLOCK as u32).to_le_bytes());
    head.extend_from_slice(&data_len.to_le_bytes());
    head.extend_from_slice(&table_off.to_le_bytes());
    head.extend_from_slice(&(n_blocks as u64).to_le_bytes());
    head.resize(HEADER, 0);
    for &(o, l) in sections {
        head.extend_from_slice(&o.to_le_bytes());
        head.extend_from_slice(&l.to_le_bytes());
    }
    head
}

/// The checksum table of `data` (CRC-32 per block, little-endian) and the table's own CRC,
/// which the manifest records.
fn checksum_table(data: &[u8]) -> (Vec<u8>, u32) {
    let table: Vec<u8> = data
        .chunks(BLOCK)
        .flat_map(|b| crc32fast::hash(b).to_le_bytes())
        .collect();
    let crc = crc32fast::hash(&table);
    (table, crc)
}

/// In-memory containers for the fuzzing harnesses and their regression tests.
pub(crate) mod memory {
    use super::*;

    /// A whole container (as [`ContainerWriter`] writes it) holding `sections`, and the CRC of
    /// its checksum table.
    pub fn build(kind: Kind, sections: &[&[u8]]) -> (Vec<u8>, u32) {
        let mut out = vec![0u8; HEADER + 16 * sections.len()];
        let mut table = Vec::with_capacity(sections.len());
        for s in sections {
            out.resize(out.len().next_multiple_of(ALIGN as usize), 0);
            table.push((out.len() as u64, s.len() as u64));
            out.extend_from_slice(s);
        }
        let data_len = out.len() as u64;
        let table_off = data_len.next_multiple_of(8);
        let head = header(kind, &table, data_len, table_off);
        out[..head.len()].copy_from_slice(&head);
        seal(out, data_len as usize)
    }

    /// Makes the checksums of `bytes` consistent whatever they hold: everything becomes the
    /// checksummed data (the header's data length, table offset and block count are
    /// overwritten), then the block table is appended. Returns the file and its table CRC.
    pub fn reseal(mut bytes: Vec<u8>) -> (Vec<u8>, u32) {
        if bytes.len() < HEADER {
            return (bytes, 0);
        }
        let data_len = bytes.len();
        let table_off = data_len.next_multiple_of(8);
        let n_blocks = data_len.div_ceil(BLOCK);
        bytes[24..32].copy_from_slice(&(data_len as u64).to_le_bytes());
        bytes[32..40].copy_from_slice(&(table_off as u64).to_le_bytes());
        bytes[40..48].copy_from_slice(&(n_blocks as u64).to_le_bytes());
        seal(bytes, data_len)
    }

    /// Pads `bytes` (data of `data_len` bytes) to 8 and appends its checksum table.
    fn seal(mut bytes: Vec<u8>, data_len: usize) -> (Vec<u8>, u32) {
        let (table, crc) = checksum_table(&bytes[..data_len]);
        bytes.truncate(data_len);
        bytes.resize(data_len.next_multiple_of(8), 0);
        bytes.extend_from_slice(&table);
        (bytes, crc)
    }

    /// The CRC of the checksum table where the header of `bytes` says it is (0 when it
    /// points outside), i.e. what a manifest entry for this file would pin.
    pub fn claimed_table_crc(bytes: &[u8]) -> u32 {
        let (Some(off), Some(n)) = (rd_u64(bytes, 32), rd_u64(bytes, 40)) else {
            return 0;
        };
        let end = (n as usize)
            .checked_mul(4)
            .and_then(|l| l.checked_add(off as usize));
        end.and_then(|e| bytes.get(off as usize..e))
            .map_or(0, crc32fast::hash)
    }

    /// Reads section `i` of `bytes` as the section table says (no checks beyond bounds).
    pub fn section(bytes: &[u8], i: usize) -> Option<&[u8]> {
        let o = rd_u64(bytes, HEADER + 16 * i)? as usize;
        let l = rd_u64(bytes, HEADER + 16 * i + 8)? as usize;
        bytes.get(o..o.checked_add(l)?)
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

/// The bytes of a container: a memory map of the file, or (fuzzing and tests) an owned copy
/// kept in `u64` words so that typed sections are aligned as in a map.
enum Bytes {
    Map(Mmap),
    Owned(Vec<u64>, usize),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(words, len) => {
                let all: &[u8] = bytemuck::cast_slice(words);
                all.get(..*len).unwrap_or(all)
            }
        }
    }
}

/// A mapped, checksummed container.
pub(crate) struct Container {
    map: Bytes,
    name: String,
    sections: Vec<Range<usize>>,
    data_len: usize,
    crcs: Vec<u32>,
    /// The format version in the header (checked to be supported).
    version: u32,
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
        // (Too short for a header is checked before mapping: an empty file cannot be mapped.)
        if len != fref.len || len < HEADER as u64 {
            return Err(PlaidError::corrupt(format!(
                "{}: length {len}, expected {}",
                fref.name, fref.len
            )));
        }
        let map = map_file(&file, &path)?;
        Self::parse(Bytes::Map(map), &fref.name, fref.table_crc, kind)
    }

    /// A container over a copy of `bytes` (no file), checked exactly as [`Self::open`] checks
    /// a file whose manifest entry has this `table_crc` and the bytes' length.
    pub fn from_bytes(name: &str, bytes: &[u8], table_crc: u32, kind: Kind) -> Result<Self> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::parse(Bytes::Owned(words, bytes.len()), name, table_crc, kind)
    }

    /// Checks header, version, kind and the checksum table of a container's bytes.
    fn parse(map: Bytes, name: &str, table_crc: u32, kind: Kind) -> Result<Self> {
        let bad = |what: &str| PlaidError::corrupt(format!("{name}: {what}"));
        let b = &map[..];
        if b.len() < HEADER {
            return Err(bad(&format!("length {} is shorter than a header", b.len())));
        }
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
        if crc32fast::hash(table) != table_crc {
            return Err(bad("checksum table mismatch"));
        }
        if data_len < HEADER || data_len > table_off || n_blocks != data_len.div_ceil(BLOCK) {
            return Err(bad("inconsistent header"));
        }
        let crcs: Vec<u32> = table.chunks_exact(4).filter_map(|c| rd_u32(c, 0)).collect();
        let c = Container {
            name: name.to_string(),
            sections: Vec::new(),
            data_len,
            state: (0..n_blocks).map(|_| AtomicU8::new(0)).collect(),
            crcs,
            version,
            map,
        };
        // The header is checksummed like everything else: verify it before trusting it.
        c.verify(0..HEADER)?;
        if !(OLDEST_SUPPORTED_FORMAT..=FORMAT_VERSION).contains(&version) {
            return Err(PlaidError::format_unsupported(version as u64));
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

    /// The format version this file was written in.
    pub fn version(&self) -> u32 {
        self.version
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
    use colbert_core::CodedError;

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
