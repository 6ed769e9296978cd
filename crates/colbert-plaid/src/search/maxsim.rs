//! Stage 7: exact MaxSim of the query against decompressed documents (the register-tiled
//! dot kernel over document tokens × query tokens, then a column max), and the final top-k.

use colbert_core::kernels::dots_into;

/// `Σ_q max_t q · d_t`; 0 for a document without tokens. `scratch` is reused across calls.
pub(crate) fn maxsim(query: &[f32], doc: &[f32], dim: usize, scratch: &mut Vec<f32>) -> f32 {
    let nq = query.len() / dim;
    let nt = doc.len() / dim;
    if nt == 0 || nq == 0 {
        return 0.0;
    }
    scratch.clear();
    scratch.resize(nt * nq + nq, 0.0);
    let (sims, maxes) = scratch.split_at_mut(nt * nq);
    dots_into(doc, query, dim, sims);
    maxes.copy_from_slice(&sims[..nq]);
    for row in sims.chunks_exact(nq).skip(1) {
        for (m, &s) in maxes.iter_mut().zip(row) {
            if s > *m {
                *m = s;
            }
        }
    }
    maxes.iter().sum()
}
