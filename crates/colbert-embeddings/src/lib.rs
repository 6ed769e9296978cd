//! Token-embedding batches (ColBERT multi-vectors) and exact MaxSim scoring.
//!
//! An [`Embeddings`] batch stores every token vector of every item in one row-major buffer:
//! item `i` owns rows `offsets[i]..offsets[i + 1]`, each row `dim` floats. This is the shape the
//! encoder produces, the shape the TypeScript API exposes (`{ dim, offsets, data }`) and the shape
//! the PLAID index consumes, so no stage converts between representations.

use rayon::prelude::*;

/// Errors for malformed batches.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EmbeddingsError {
    /// The three parts of a batch disagree with each other.
    #[error("{0}")]
    Shape(String),
    /// A value is NaN or infinite.
    #[error("embeddings contain a non-finite value at row {row}")]
    NonFinite { row: usize },
}

/// A batch of multi-vectors: `offsets.len() - 1` items, `data.len() / dim` rows in total.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    pub offsets: Vec<u32>,
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Builds and validates a batch.
    pub fn new(dim: usize, offsets: Vec<u32>, data: Vec<f32>) -> Result<Self, EmbeddingsError> {
        validate(dim, &offsets, &data)?;
        Ok(Self { dim, offsets, data })
    }

    /// Concatenates per-item row blocks (each `rows * dim` floats) in order.
    pub fn from_items(dim: usize, items: Vec<Vec<f32>>) -> Self {
        let total: usize = items.iter().map(Vec::len).sum();
        let mut data = Vec::with_capacity(total);
        let mut offsets = Vec::with_capacity(items.len() + 1);
        offsets.push(0u32);
        for item in items {
            data.extend_from_slice(&item);
            offsets.push((data.len() / dim.max(1)) as u32);
        }
        Self { dim, offsets, data }
    }

    /// Number of items in the batch.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total number of token rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// The rows of item `i`, row-major.
    pub fn item(&self, i: usize) -> &[f32] {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        &self.data[a * self.dim..b * self.dim]
    }

    /// A borrowed view of this batch.
    pub fn view(&self) -> EmbeddingsView<'_> {
        EmbeddingsView {
            dim: self.dim,
            offsets: &self.offsets,
            data: &self.data,
        }
    }
}

/// A borrowed batch, e.g. straight from JavaScript typed arrays.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingsView<'a> {
    pub dim: usize,
    pub offsets: &'a [u32],
    pub data: &'a [f32],
}

impl<'a> EmbeddingsView<'a> {
    /// Validates borrowed parts and returns a view over them.
    pub fn new(dim: usize, offsets: &'a [u32], data: &'a [f32]) -> Result<Self, EmbeddingsError> {
        validate(dim, offsets, data)?;
        Ok(Self { dim, offsets, data })
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn item(&self, i: usize) -> &'a [f32] {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        &self.data[a * self.dim..b * self.dim]
    }
}

/// Checks that `offsets` starts at 0, never decreases, ends at the row count, and that every
/// value is finite.
pub fn validate(dim: usize, offsets: &[u32], data: &[f32]) -> Result<(), EmbeddingsError> {
    if dim == 0 {
        return Err(EmbeddingsError::Shape("dim must be at least 1".into()));
    }
    if offsets.is_empty() {
        return Err(EmbeddingsError::Shape(
            "offsets must have one entry more than the number of items (at least [0])".into(),
        ));
    }
    if offsets[0] != 0 {
        return Err(EmbeddingsError::Shape(format!(
            "offsets[0] must be 0, got {}",
            offsets[0]
        )));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(EmbeddingsError::Shape(format!(
            "data length {} is not a multiple of dim {dim}",
            data.len()
        )));
    }
    if let Some(w) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(EmbeddingsError::Shape(format!(
            "offsets must not decrease (offsets[{}] = {} > offsets[{}] = {})",
            w,
            offsets[w],
            w + 1,
            offsets[w + 1]
        )));
    }
    let rows = data.len() / dim;
    let last = *offsets.last().unwrap_or(&0) as usize;
    if last != rows {
        return Err(EmbeddingsError::Shape(format!(
            "the last offset ({last}) must equal the number of rows in data ({rows})"
        )));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(EmbeddingsError::NonFinite { row: i / dim });
    }
    Ok(())
}

/// Exact MaxSim of one query against one document: for every query row, the largest dot product
/// with any document row, summed. A document with no rows scores 0 (every query row contributes
/// nothing), matching PyLate's treatment of all-padding documents.
pub fn maxsim_pair(dim: usize, query: &[f32], document: &[f32]) -> f32 {
    if document.is_empty() {
        return 0.0;
    }
    maxsim_pair_floor(dim, query, document, f32::NEG_INFINITY)
}

/// MaxSim where each query row's best score starts at `floor` (0 = a zero padding row).
fn maxsim_pair_floor(dim: usize, query: &[f32], document: &[f32], floor: f32) -> f32 {
    let mut total = 0.0f32;
    for q in query.chunks_exact(dim) {
        let mut best = floor;
        for d in document.chunks_exact(dim) {
            let s = dot(q, d);
            if s > best {
                best = s;
            }
        }
        total += best;
    }
    total
}

/// Dot product, written so that the compiler vectorises it (eight independent accumulators).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for k in chunks * 8..a.len() {
        s += a[k] * b[k];
    }
    s
}

/// Exact MaxSim over real tokens for every (query, document) pair: a row-major
/// `queries.len() × documents.len()` matrix. Runs on the current rayon pool.
pub fn maxsim(
    queries: EmbeddingsView<'_>,
    documents: EmbeddingsView<'_>,
) -> Result<Vec<f32>, EmbeddingsError> {
    if queries.dim != documents.dim {
        return Err(EmbeddingsError::Shape(format!(
            "queries have dim {} but documents have dim {}",
            queries.dim, documents.dim
        )));
    }
    maxsim_with(queries, documents, false)
}

/// MaxSim as PyLate computes it on a zero-padded batch (`rank.rerank`, the evaluator):
/// documents are padded with zero rows to the longest document of `documents`, so for a
/// document shorter than that every query row contributes `max(0, best dot product)`.
/// Documents of the maximal length score exactly as [`maxsim`].
pub fn maxsim_zero_padded(
    queries: EmbeddingsView<'_>,
    documents: EmbeddingsView<'_>,
) -> Result<Vec<f32>, EmbeddingsError> {
    maxsim_with(queries, documents, true)
}

fn maxsim_with(
    queries: EmbeddingsView<'_>,
    documents: EmbeddingsView<'_>,
    zero_padded: bool,
) -> Result<Vec<f32>, EmbeddingsError> {
    if queries.dim != documents.dim {
        return Err(EmbeddingsError::Shape(format!(
            "queries have dim {} but documents have dim {}",
            queries.dim, documents.dim
        )));
    }
    let (nq, nd, dim) = (queries.len(), documents.len(), queries.dim);
    let mut out = vec![0.0f32; nq * nd];
    if nd == 0 {
        return Ok(out);
    }
    let longest = (0..nd).map(|d| documents.item(d).len()).max().unwrap_or(0);
    out.par_chunks_mut(nd).enumerate().for_each(|(qi, row)| {
        let q = queries.item(qi);
        for (di, cell) in row.iter_mut().enumerate() {
            let d = documents.item(di);
            *cell = if zero_padded && d.len() < longest {
                maxsim_pair_floor(dim, q, d, 0.0)
            } else {
                maxsim_pair(dim, q, d)
            };
        }
    });
    Ok(out)
}

/// In-place L2 normalisation of each row, as `torch.nn.functional.normalize(p=2, eps=1e-12)`:
/// `x / max(‖x‖₂, 1e-12)`.
pub fn normalize_rows(dim: usize, data: &mut [f32]) {
    for row in data.chunks_exact_mut(dim) {
        let norm = dot(row, row).sqrt().max(1e-12);
        for v in row.iter_mut() {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(dim: usize, items: &[&[f32]]) -> Embeddings {
        Embeddings::from_items(dim, items.iter().map(|s| s.to_vec()).collect())
    }

    #[test]
    fn maxsim_matches_hand_computation() {
        // query 0: rows (1,0), (0,1); documents: d0 rows (1,0),(0.5,0.5); d1 row (-1,0)
        let q = batch(2, &[&[1.0, 0.0, 0.0, 1.0]]);
        let d = batch(2, &[&[1.0, 0.0, 0.5, 0.5], &[-1.0, 0.0]]);
        let s = maxsim(q.view(), d.view()).expect("shapes agree");
        // d0: max(1, .5) + max(0, .5) = 1.5 ; d1: -1 + 0 = -1 (no zero clamp over real tokens)
        assert_eq!(s, vec![1.5, -1.0]);
    }

    #[test]
    fn zero_padded_clamps_only_shorter_documents() {
        // d0 has 2 rows (the longest), d1 one row (-1,0): padded to 2 rows with a zero row.
        let q = batch(2, &[&[1.0, 0.0, 0.0, 1.0]]);
        let d = batch(2, &[&[1.0, 0.0, 0.5, 0.5], &[-1.0, 0.0]]);
        let s = maxsim_zero_padded(q.view(), d.view()).expect("shapes agree");
        // d0 unchanged (1.5); d1: max(-1, 0) + max(0, 0) = 0
        assert_eq!(s, vec![1.5, 0.0]);
        // d0 alone is the longest of its batch: plain MaxSim (-1 + 0), negative rows kept.
        let d = batch(2, &[&[-1.0, 0.0, -1.0, 0.0]]);
        assert_eq!(
            maxsim_zero_padded(q.view(), d.view()).expect("ok"),
            vec![-1.0]
        );
    }

    #[test]
    fn empty_document_scores_zero() {
        let q = batch(2, &[&[1.0, 0.0]]);
        let d = batch(2, &[&[]]);
        assert_eq!(maxsim(q.view(), d.view()).expect("ok"), vec![0.0]);
    }

    #[test]
    fn validation_rejects_bad_shapes() {
        assert!(validate(0, &[0], &[]).is_err());
        assert!(validate(2, &[], &[]).is_err());
        assert!(validate(2, &[1, 1], &[0.0, 0.0]).is_err());
        assert!(validate(2, &[0, 2, 1], &[0.0; 4]).is_err());
        assert!(validate(2, &[0, 3], &[0.0; 4]).is_err());
        assert!(validate(2, &[0, 1], &[0.0; 3]).is_err());
        assert_eq!(
            validate(2, &[0, 1, 2], &[0.0, 0.0, f32::NAN, 0.0]),
            Err(EmbeddingsError::NonFinite { row: 1 })
        );
        assert!(validate(2, &[0, 1, 2], &[0.0; 4]).is_ok());
    }

    #[test]
    fn dim_mismatch_is_an_error() {
        let q = batch(2, &[&[1.0, 0.0]]);
        let d = batch(3, &[&[1.0, 0.0, 0.0]]);
        assert!(maxsim(q.view(), d.view()).is_err());
    }

    #[test]
    fn normalize_matches_torch_semantics() {
        let mut v = vec![3.0, 4.0, 0.0, 0.0];
        normalize_rows(2, &mut v);
        assert_eq!(v, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let expect: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expect);
    }
}
