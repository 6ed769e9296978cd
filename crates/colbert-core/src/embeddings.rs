//! Token-embedding batches (ColBERT multi-vectors).
//!
//! An [`Embeddings`] batch stores every token vector of every item in one row-major buffer:
//! item `i` owns rows `offsets[i]..offsets[i + 1]`, each row `dim` floats. This is the shape the
//! encoder produces, the shape the TypeScript API exposes (`{ dim, offsets, data }`) and the shape
//! the PLAID index consumes, so no stage converts between representations.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
