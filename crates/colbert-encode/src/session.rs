//! ONNX Runtime sessions: creating them on an execution provider, checking the graph's inputs and
//! outputs, and running one padded batch.

use std::path::Path;
use std::sync::Arc;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session};
use ort::value::{TensorRef, ValueType};

use crate::error::{EncodeError, Result};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionProvider {
    #[default]
    Cpu,
    Cuda,
}

impl ExecutionProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        }
    }
}

/// The names the graph uses, checked once at load time.
#[derive(Debug, Clone)]
pub struct GraphIo {
    pub uses_token_type_ids: bool,
    pub output: String,
    /// The static last dimension of the output, when the graph declares one.
    pub output_dim: Option<usize>,
}

/// A committed session and the provider it actually runs on.
pub struct LoadedSession {
    pub session: Session,
    pub provider: ExecutionProvider,
    /// Set when the requested provider could not be used and the session fell back to CPU.
    pub warning: Option<String>,
}

fn ort_err(path: &Path, e: impl std::fmt::Display) -> EncodeError {
    EncodeError::ModelInvalid(format!(
        "{}: ONNX Runtime cannot load this model: {e}",
        path.display()
    ))
}

fn builder(threads: usize) -> ort::Result<ort::session::builder::SessionBuilder> {
    Ok(Session::builder()?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_inter_op_spinning(false)?)
}

/// Creates a session with `threads` intra-op threads. CUDA is tried first when asked for; when it
/// cannot be registered, the session is built for CPU and the reason is returned as a warning.
pub fn load(path: &Path, threads: usize, provider: ExecutionProvider) -> Result<LoadedSession> {
    crate::runtime::require()?;
    let mut warning = None;
    if provider == ExecutionProvider::Cuda {
        let attempt = builder(threads)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                b.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                    .map_err(|e| e.to_string())
            })
            .and_then(|mut b| b.commit_from_file(path).map_err(|e| e.to_string()));
        match attempt {
            Ok(session) => {
                return Ok(LoadedSession {
                    session,
                    provider,
                    warning: None,
                })
            }
            Err(reason) => {
                warning = Some(format!(
                    "the CUDA execution provider is not available ({reason}); running on CPU. A CUDA-enabled ONNX Runtime with its provider libraries is needed (see README)"
                ))
            }
        }
    }
    let session = builder(threads)
        .map_err(|e| ort_err(path, e))?
        .commit_from_file(path)
        .map_err(|e| ort_err(path, e))?;
    Ok(LoadedSession {
        session,
        provider: ExecutionProvider::Cpu,
        warning,
    })
}

/// Checks that the graph takes `input_ids` and `attention_mask` (and maybe `token_type_ids`) and
/// returns a float tensor of rank 3, named `embeddings` (our exporter) or `output`
/// (pylate-onnx-export), or its only output.
pub fn inspect(session: &Session, path: &Path) -> Result<GraphIo> {
    let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    for required in ["input_ids", "attention_mask"] {
        if !names.contains(&required) {
            return Err(EncodeError::ModelInvalid(format!(
                "{}: the ONNX graph has no `{required}` input (inputs: {names:?}); export it with tools/export_onnx.py",
                path.display()
            )));
        }
    }
    if let Some(other) = names
        .iter()
        .find(|n| !matches!(**n, "input_ids" | "attention_mask" | "token_type_ids"))
    {
        return Err(EncodeError::ModelInvalid(format!(
            "{}: the ONNX graph has an unexpected input `{other}` (inputs: {names:?})",
            path.display()
        )));
    }
    let outputs = session.outputs();
    let out = outputs
        .iter()
        .find(|o| o.name() == "embeddings")
        .or_else(|| outputs.iter().find(|o| o.name() == "output"))
        .or(if outputs.len() == 1 {
            outputs.first()
        } else {
            None
        })
        .ok_or_else(|| {
            EncodeError::ModelInvalid(format!(
                "{}: the ONNX graph has no `embeddings` output (outputs: {:?})",
                path.display(),
                outputs.iter().map(|o| o.name()).collect::<Vec<_>>()
            ))
        })?;
    let output_dim = match out.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            if *ty != ort::value::TensorElementType::Float32 || shape.len() != 3 {
                return Err(EncodeError::ModelInvalid(format!(
                    "{}: output `{}` must be a float32 tensor [batch, sequence, dim], found {:?} with shape {:?}",
                    path.display(),
                    out.name(),
                    ty,
                    &shape[..]
                )));
            }
            usize::try_from(shape[2]).ok()
        }
        other => {
            return Err(EncodeError::ModelInvalid(format!(
                "{}: output `{}` is not a tensor ({other:?})",
                path.display(),
                out.name()
            )))
        }
    };
    Ok(GraphIo {
        uses_token_type_ids: names.contains(&"token_type_ids"),
        output: out.name().to_string(),
        output_dim,
    })
}

/// A padded batch, row-major `[batch, sequence]`.
pub struct BatchInputs {
    pub batch: usize,
    pub sequence: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub token_type_ids: Vec<i64>,
}

/// Runs one batch and returns `[batch, sequence, dim]` floats and `dim`. `run_options` lets another
/// thread terminate the run.
pub fn run(
    session: &mut Session,
    io: &GraphIo,
    inputs: &BatchInputs,
    run_options: &Arc<RunOptions>,
) -> Result<(Vec<f32>, usize)> {
    let shape = [inputs.batch, inputs.sequence];
    fn t(shape: [usize; 2], v: &[i64]) -> Result<TensorRef<'_, i64>> {
        TensorRef::from_array_view((shape, v))
            .map_err(|e| EncodeError::Inference(format!("cannot build an input tensor: {e}")))
    }
    let ids = t(shape, &inputs.input_ids)?;
    let mask = t(shape, &inputs.attention_mask)?;
    let outputs = if io.uses_token_type_ids {
        let types = t(shape, &inputs.token_type_ids)?;
        session.run_with_options(
            ort::inputs!["input_ids" => ids, "attention_mask" => mask, "token_type_ids" => types],
            run_options,
        )
    } else {
        session.run_with_options(
            ort::inputs!["input_ids" => ids, "attention_mask" => mask],
            run_options,
        )
    };
    let outputs = outputs.map_err(|e| EncodeError::Inference(format!("inference failed: {e}")))?;
    let value = outputs.get(io.output.as_str()).ok_or_else(|| {
        EncodeError::Inference(format!("the model returned no `{}` output", io.output))
    })?;
    let (out_shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| EncodeError::Inference(format!("the output is not a float tensor: {e}")))?;
    if out_shape.len() != 3
        || out_shape[0] as usize != inputs.batch
        || out_shape[1] as usize != inputs.sequence
    {
        return Err(EncodeError::Inference(format!(
            "the model returned shape {:?} for a batch of shape [{}, {}]",
            &out_shape[..],
            inputs.batch,
            inputs.sequence
        )));
    }
    Ok((data.to_vec(), out_shape[2] as usize))
}
