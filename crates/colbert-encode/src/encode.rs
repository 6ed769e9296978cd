//! The encoder: texts in, token embeddings out, in input order.
//!
//! A call first tokenizes every text (on a worker), then cuts the texts, sorted by token count
//! (long first), into batches so that padding is small; each batch is run through ONNX Runtime,
//! stripped of the rows PyLate drops, L2-normalised per token, and written back to its texts'
//! places. Batches are scheduled on
//! the shared thread budget ([`colbert_core::schedule`]); a call keeps at most as many batches queued as it
//! can run at once, so concurrent calls interleave instead of queueing behind each other.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use colbert_core::schedule;
use colbert_core::{normalize_rows, CancelToken, Embeddings, Progress, Stage};
use ort::session::{RunOptions, Session};

use crate::config::{ConfigOverrides, ModelConfig, ModelFolder, Precision};
use crate::error::{EncodeError, Result};
use crate::session::{self, BatchInputs, ExecutionProvider, GraphIo};
use crate::tokenize::{Kind, TextTokenizer, Tokenized};

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub precision: Precision,
    pub execution_provider: ExecutionProvider,
    /// Intra-op threads of each inference; `None`: the whole budget, or 1 for a graph that
    /// quantises dynamically (it runs one text per inference, so texts run in parallel instead).
    pub threads: Option<usize>,
    pub overrides: ConfigOverrides,
}

/// A loaded ColBERT model.
pub struct Encoder {
    config: ModelConfig,
    tokenizer: TextTokenizer,
    onnx_path: std::path::PathBuf,
    io: GraphIo,
    threads: usize,
    /// Budget permits one batch holds: its intra-op threads on CPU; the whole budget on CUDA, so
    /// that GPU batches run one at a time on a single session.
    permits: usize,
    provider: ExecutionProvider,
    warning: Option<String>,
    /// Idle sessions, created on demand. Each running batch holds `threads` permits of the budget,
    /// so at most `max_sessions = budget / threads` batches (and sessions) are ever in use at once.
    sessions: Mutex<Vec<Session>>,
    max_sessions: usize,
    /// The graph quantises activations dynamically (`DynamicQuantizeLinear`, our int8 export):
    /// its scales are computed per inference, so a batch of texts would share them and a text's
    /// embeddings would depend on what it was batched with. Such graphs run one text per
    /// inference, on one intra-op thread by default so that texts run side by side (faster
    /// than batching for documents here; BENCHMARKS.md).
    per_text: bool,
}

/// Whether the ONNX file at `path` quantises activations at run time (its graph names the
/// `DynamicQuantizeLinear` operator). Read in 1 MiB chunks, so a model of any size costs
/// constant memory; the scan runs at memory speed and warms the page cache for ONNX Runtime's
/// own read.
fn quantises_dynamically(path: &Path) -> Result<bool> {
    std::fs::File::open(path)
        .and_then(|f| contains(f, b"DynamicQuantizeLinear", 1 << 20))
        .map_err(|e| EncodeError::ModelInvalid(format!("{} cannot be read: {e}", path.display())))
}

/// Whether `reader` holds `name`, read `chunk` bytes at a time; each chunk is searched with the
/// end of the previous one, so a name straddling the seam is found.
fn contains(mut reader: impl std::io::Read, name: &[u8], chunk: usize) -> std::io::Result<bool> {
    let finder = memchr::memmem::Finder::new(name);
    let carry = name.len().saturating_sub(1);
    let mut buf = vec![0u8; carry + chunk.max(1)];
    let mut kept = 0;
    loop {
        let n = match reader.read(&mut buf[kept..]) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = kept + n;
        if finder.find(&buf[..end]).is_some() {
            return Ok(true);
        }
        kept = carry.min(end);
        buf.copy_within(end - kept..end, 0);
    }
}

/// Progress of one call: [`Stage::Encode`] events, texts done so far out of the total.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;
/// Receives the result of one call, exactly once.
pub type DoneFn = Box<dyn FnOnce(Result<Embeddings>) + Send>;

/// One encode call.
pub struct EncodeRequest {
    pub texts: Vec<String>,
    pub kind: Kind,
    pub batch_size: usize,
    pub cancel: CancelToken,
    pub progress: Option<ProgressFn>,
}

impl Encoder {
    /// Loads a model folder (see [`crate::config`]) on the loaded ONNX Runtime.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let folder = ModelFolder::open(dir, options.precision, &options.overrides)?;
        let budget = schedule::budget();
        let per_text = quantises_dynamically(&folder.onnx_path)?;
        // One text per inference is small work: by default such models run texts in parallel
        // on one thread each rather than each text on every core (measured faster for
        // documents and no slower for one query; BENCHMARKS.md).
        let default_threads = if per_text { 1 } else { budget };
        let threads = options.threads.unwrap_or(default_threads).clamp(1, budget);
        let first = session::load(&folder.onnx_path, threads, options.execution_provider)?;
        let io = session::inspect(&first.session, &folder.onnx_path)?;
        let mut config = folder.config;
        match (config.dim, io.output_dim) {
            (0, Some(d)) => config.dim = d,
            (c, Some(d)) if c != d => {
                return Err(EncodeError::ModelInvalid(format!(
                "{}: the graph outputs {d}-dim embeddings but the model's Dense config says {c}",
                folder.onnx_path.display()
            )))
            }
            _ => {}
        }
        let tokenizer = TextTokenizer::new(&folder.tokenizer, &config)?;
        let permits = if first.provider == ExecutionProvider::Cuda {
            budget
        } else {
            threads
        };
        let max_sessions = (budget / permits).max(1);
        Ok(Self {
            config,
            tokenizer,
            onnx_path: folder.onnx_path,
            io,
            threads,
            permits,
            provider: first.provider,
            warning: first.warning,
            sessions: Mutex::new(vec![first.session]),
            max_sessions,
            per_text,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The ONNX file in use.
    pub fn onnx_path(&self) -> &Path {
        &self.onnx_path
    }

    /// Intra-op threads per inference.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The execution provider the model really runs on.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// Why the requested execution provider was not used, if it was not.
    /// Whether each text runs in an inference of its own (a dynamically quantised graph), so that
    /// its embeddings do not depend on its batch: batching texts together saves no inference work.
    pub fn per_text(&self) -> bool {
        self.per_text
    }

    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Tokenizes one text as the encoder would (for inspection and tests).
    pub fn tokenize(&self, text: &str, kind: Kind) -> Result<Tokenized> {
        self.tokenizer.tokenize(text, kind)
    }

    /// Encodes texts and blocks until done.
    pub fn encode(
        self: &Arc<Self>,
        texts: Vec<String>,
        kind: Kind,
        batch_size: usize,
    ) -> Result<Embeddings> {
        let (tx, rx) = mpsc::channel();
        self.encode_async(
            EncodeRequest {
                texts,
                kind,
                batch_size,
                cancel: CancelToken::new(),
                progress: None,
            },
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(EncodeError::Internal("the encode call was dropped".into())))
    }

    /// Starts encoding on the shared thread budget; `done` receives the result exactly once, on a
    /// worker thread.
    pub fn encode_async(self: &Arc<Self>, request: EncodeRequest, done: DoneFn) {
        let EncodeRequest {
            texts,
            kind,
            batch_size,
            cancel,
            progress,
        } = request;
        if batch_size == 0 {
            done(Err(EncodeError::InvalidArgument(
                "batchSize must be at least 1".into(),
            )));
            return;
        }
        if cancel.is_cancelled() {
            done(Err(EncodeError::Aborted));
            return;
        }
        let n = texts.len();
        if n == 0 {
            done(Ok(Embeddings::from_items(self.config.dim, Vec::new())));
            return;
        }
        // Plan on a worker, never on the caller's thread: tokenize every text once, then batch
        // by token count, longest first (PyLate sorts by characters; tokens pad less), ties in
        // input order.
        let encoder = Arc::clone(self);
        schedule::submit(move || {
            let planned = catch_unwind(AssertUnwindSafe(|| {
                let _permit = schedule::acquire(1);
                texts
                    .iter()
                    .map(|t| encoder.tokenizer.tokenize(t, kind))
                    .collect::<Result<Vec<_>>>()
            }))
            .unwrap_or_else(|_| Err(EncodeError::Internal("tokenization panicked".into())));
            let tokens = match planned {
                Ok(t) if !cancel.is_cancelled() => t,
                Ok(_) => return done(Err(EncodeError::Aborted)),
                Err(e) => return done(Err(e)),
            };
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].input_ids.len()));
            let batches: Vec<Vec<usize>> =
                order.chunks(batch_size).map(<[usize]>::to_vec).collect();
            let parallel = encoder.max_sessions.min(batches.len());
            let job = Arc::new(Job {
                encoder,
                tokens,
                batches,
                next: AtomicUsize::new(parallel),
                in_flight: AtomicUsize::new(parallel),
                results: Mutex::new(vec![Vec::new(); n]),
                done_texts: AtomicUsize::new(0),
                error: Mutex::new(None),
                cancel,
                progress,
                done: Mutex::new(Some(done)),
            });
            for b in 0..parallel {
                let job = Arc::clone(&job);
                schedule::submit(move || job.run_batch(b));
            }
        });
    }

    fn take_session(&self) -> Result<Session> {
        if let Some(s) = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
        {
            return Ok(s);
        }
        // All sessions are busy: another batch runs concurrently within the budget.
        session::load(&self.onnx_path, self.threads, self.provider).map(|s| s.session)
    }

    fn return_session(&self, s: Session) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s);
    }

    /// Runs and post-processes one batch of tokenized texts; returns each text's rows.
    fn encode_batch(&self, toks: &[&Tokenized], cancel: &CancelToken) -> Result<Vec<Vec<f32>>> {
        if self.per_text && toks.len() > 1 {
            let mut items = Vec::with_capacity(toks.len());
            for t in toks {
                if cancel.is_cancelled() {
                    return Err(EncodeError::Aborted);
                }
                items.extend(self.encode_batch(std::slice::from_ref(t), cancel)?);
            }
            return Ok(items);
        }
        let sequence = toks.iter().map(|t| t.input_ids.len()).max().unwrap_or(0);
        let batch = toks.len();
        let mut inputs = BatchInputs {
            batch,
            sequence,
            input_ids: vec![i64::from(self.config.pad_token_id); batch * sequence],
            attention_mask: vec![0; batch * sequence],
            token_type_ids: vec![0; batch * sequence],
        };
        for (b, t) in toks.iter().enumerate() {
            let row = b * sequence;
            for (j, ((&id, &m), &ty)) in t
                .input_ids
                .iter()
                .zip(&t.attention_mask)
                .zip(&t.token_type_ids)
                .enumerate()
            {
                inputs.input_ids[row + j] = i64::from(id);
                inputs.attention_mask[row + j] = i64::from(m);
                inputs.token_type_ids[row + j] = i64::from(ty);
            }
        }

        let run_options = Arc::new(
            RunOptions::new()
                .map_err(|e| EncodeError::Inference(format!("cannot create run options: {e}")))?,
        );
        // A cancel stops this run (also one that raced with the registration).
        let stop = Arc::clone(&run_options);
        let on_cancel = cancel.on_cancel(move || {
            // Terminating a run that already finished is harmless.
            let _ = stop.terminate();
        });
        let mut session = self.take_session();
        let out = session
            .as_mut()
            .map_err(|e| EncodeError::Inference(e.to_string()))
            .and_then(|s| session::run(s, &self.io, &inputs, &run_options));
        if let Ok(s) = session {
            self.return_session(s);
        }
        drop(on_cancel);
        if cancel.is_cancelled() {
            return Err(EncodeError::Aborted);
        }
        let (out, dim) = out?;
        if dim != self.config.dim {
            return Err(EncodeError::Inference(format!(
                "the model returned {dim}-dim embeddings, expected {}",
                self.config.dim
            )));
        }

        let mut items = Vec::with_capacity(batch);
        for (b, t) in toks.iter().enumerate() {
            let kept = t.keep.iter().filter(|&&k| k).count();
            let mut rows = Vec::with_capacity(kept * dim);
            for (j, _) in t.keep.iter().enumerate().filter(|(_, &k)| k) {
                let at = (b * sequence + j) * dim;
                rows.extend_from_slice(&out[at..at + dim]);
            }
            normalize_rows(dim, &mut rows);
            items.push(rows);
        }
        Ok(items)
    }
}

struct Job {
    encoder: Arc<Encoder>,
    tokens: Vec<Tokenized>,
    batches: Vec<Vec<usize>>,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    results: Mutex<Vec<Vec<f32>>>,
    done_texts: AtomicUsize,
    error: Mutex<Option<EncodeError>>,
    cancel: CancelToken,
    progress: Option<ProgressFn>,
    done: Mutex<Option<DoneFn>>,
}

impl Job {
    fn failed(&self) -> bool {
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn fail(&self, e: EncodeError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    fn run_batch(self: Arc<Self>, b: usize) {
        if self.cancel.is_cancelled() {
            self.fail(EncodeError::Aborted);
        }
        if !self.failed() {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let _permit = schedule::acquire(self.encoder.permits);
                if self.cancel.is_cancelled() {
                    return Err(EncodeError::Aborted);
                }
                let toks: Vec<&Tokenized> =
                    self.batches[b].iter().map(|&i| &self.tokens[i]).collect();
                self.encoder.encode_batch(&toks, &self.cancel)
            }))
            .unwrap_or_else(|_| Err(EncodeError::Internal("a batch panicked".into())));
            match outcome {
                Ok(items) => {
                    let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
                    for (&i, rows) in self.batches[b].iter().zip(items) {
                        results[i] = rows;
                    }
                    drop(results);
                    let done = self
                        .done_texts
                        .fetch_add(self.batches[b].len(), Ordering::SeqCst)
                        + self.batches[b].len();
                    if let Some(p) = &self.progress {
                        let total = self.tokens.len();
                        // A progress callback must never break the call.
                        let _ = catch_unwind(AssertUnwindSafe(|| {
                            p(Progress::new(Stage::Encode, done, total))
                        }));
                    }
                }
                Err(e) => self.fail(e),
            }
        }
        // Hand the worker on to this call's next batch, or finish.
        if !self.failed() {
            let next = self.next.fetch_add(1, Ordering::SeqCst);
            if next < self.batches.len() {
                let job = Arc::clone(&self);
                schedule::submit(move || job.run_batch(next));
                return;
            }
        }
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.finish();
        }
    }

    fn finish(&self) {
        let Some(done) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            done(Err(e));
            return;
        }
        let items = std::mem::take(&mut *self.results.lock().unwrap_or_else(|p| p.into_inner()));
        done(Ok(Embeddings::from_items(self.encoder.config.dim, items)))
    }
}

#[cfg(test)]
mod tests {
    use super::contains;

    /// The name is found wherever it sits relative to the chunk seams, and only when present.
    #[test]
    fn a_name_across_a_chunk_seam_is_found() {
        let name = b"DynamicQuantizeLinear";
        for chunk in [1, 2, 7, 20, 21, 22, 64] {
            for at in 0..80 {
                let mut data = [b'x'; 100];
                data[at..at + name.len()].copy_from_slice(name);
                assert!(
                    contains(&data[..], name, chunk).unwrap_or(false),
                    "chunk {chunk}, at {at}"
                );
                // One byte changed: no match.
                data[at + 10] = b'y';
                assert!(
                    !contains(&data[..], name, chunk).unwrap_or(true),
                    "chunk {chunk}, at {at}"
                );
            }
        }
        assert!(!contains(&b""[..], name, 8).unwrap_or(true));
    }
}
