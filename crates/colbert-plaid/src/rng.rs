//! A tiny deterministic PRNG (SplitMix64). Results depend only on the seed, never on the
//! platform or the thread count, so sampling and k-means are reproducible.

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), via Lemire's multiply-shift (negligible bias for our sizes).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `k` distinct indices from `0..n`, in random order (partial Fisher–Yates on a map for
    /// large `n`, so memory is O(k)).
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        let k = k.min(n);
        if k * 4 >= n {
            let mut all: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = i + self.below(n - i);
                all.swap(i, j);
            }
            all.truncate(k);
            return all;
        }
        let mut swapped: std::collections::HashMap<usize, usize> = Default::default();
        let mut out = Vec::with_capacity(k);
        for i in 0..k {
            let j = i + self.below(n - i);
            let vj = *swapped.get(&j).unwrap_or(&j);
            let vi = *swapped.get(&i).unwrap_or(&i);
            swapped.insert(j, vi);
            out.push(vj);
        }
        out
    }

    /// A gaussian sample (Box–Muller); used by tests and synthetic data helpers.
    #[cfg(test)]
    pub fn gauss(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sample_indices_are_distinct_and_deterministic() {
        for &(n, k) in &[(10usize, 10usize), (1000, 7), (50, 20)] {
            let a = Rng::new(1).sample_indices(n, k);
            let b = Rng::new(1).sample_indices(n, k);
            assert_eq!(a, b);
            let mut s = a.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), k);
            assert!(s.iter().all(|&v| v < n));
        }
    }
}
