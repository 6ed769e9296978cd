//! Progress of long calls, one typed event shape for every engine: `done` of `total` units of
//! a [`Stage`]. Engines report real counts; the bindings hand the event on unchanged.

/// What a long call is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Texts encoded (`done` of `total` texts).
    Encode,
    /// Documents sampled for k-means (one event: `done` sampled of the `total` in the commit).
    Sample,
    /// k-means iterations finished (`done` of `total`).
    KMeans,
    /// Centroid expansion finished (one event: `done` = `total` = centroids added).
    Expand,
    /// Documents compressed (`done` of `total`).
    Compress,
    /// Segment files, checksums and the manifest switch (`0` of `1` when it starts, `1` of `1`
    /// when the commit is durable).
    Write,
}

impl Stage {
    /// The stage's name in the JavaScript API.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Encode => "encode",
            Stage::Sample => "sample",
            Stage::KMeans => "kmeans",
            Stage::Expand => "expand",
            Stage::Compress => "compress",
            Stage::Write => "write",
        }
    }
}

/// One progress event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
}

impl Progress {
    pub fn new(stage: Stage, done: usize, total: usize) -> Self {
        Progress { stage, done, total }
    }
}

/// Receives progress events (from any thread of the call).
pub type OnProgress<'a> = &'a (dyn Fn(Progress) + Sync);
