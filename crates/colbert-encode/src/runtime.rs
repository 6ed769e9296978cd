//! Loading ONNX Runtime from a shared library chosen at run time (`ort`'s `load-dynamic`).
//!
//! The library is validated with our own `dlopen` probe before `ort` sees it, so a wrong path gives
//! an error and leaves the process able to try again with another path.

use std::ffi::CStr;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use crate::error::{EncodeError, Result};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The ONNX Runtime library this process uses.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub version: String,
    pub path: String,
}

/// The loaded runtime, if any.
pub fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Loads ONNX Runtime from `lib` once per process. Later calls return the runtime already loaded
/// (whatever path they pass). A failure leaves nothing half-initialised.
pub fn init(lib: &Path) -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    if !lib.is_absolute() {
        return Err(EncodeError::OrtLoad(format!(
            "the ONNX Runtime library path must be absolute, got {}",
            lib.display()
        )));
    }
    if !lib.is_file() {
        return Err(EncodeError::OrtLoad(format!(
            "the ONNX Runtime library {} does not exist; install onnxruntime-node or set COLBERT_ORT_DYLIB_PATH to libonnxruntime",
            lib.display()
        )));
    }
    let version = probe(lib)?;
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if minor < ort::MINOR_VERSION {
        return Err(EncodeError::OrtLoad(format!(
            "ONNX Runtime {version} at {} is too old; colbert needs 1.{} or newer",
            lib.display(),
            ort::MINOR_VERSION
        )));
    }
    // Past the probe, `ort` opens the same file; its loader only fails for the reasons the probe
    // already ruled out.
    let builder = ort::init_from(lib).map_err(|e| {
        EncodeError::OrtLoad(format!(
            "ONNX Runtime at {} failed to load: {e}{}",
            lib.display(),
            load_hint(cfg!(windows))
        ))
    })?;
    builder.with_name("colbert").with_telemetry(false).commit();
    Ok(RUNTIME.get_or_init(|| Runtime {
        version,
        path: lib.display().to_string(),
    }))
}

/// What a failed load adds to its message. On Windows the usual cause is a missing C++ runtime:
/// our addon links its C runtime statically, but ONNX Runtime's `onnxruntime.dll` (shipped as
/// Microsoft builds it) needs the Visual C++ 2015-2022 Redistributable, and Windows then reports
/// only that a module could not be found.
fn load_hint(windows: bool) -> &'static str {
    if windows {
        " (onnxruntime.dll needs the Microsoft Visual C++ 2015-2022 Redistributable: install it from \
         https://aka.ms/vs/17/release/vc_redist.x64.exe, or vc_redist.arm64.exe on ARM64, and retry)"
    } else {
        ""
    }
}

/// Opens the library on its own, checks that it is ONNX Runtime and reads its version. The handle
/// is closed again; nothing global changes.
fn probe(lib: &Path) -> Result<String> {
    // SAFETY: loading a shared library runs its initialisers; this is the library the user chose
    // to run models with, and it is loaded again by `ort` right after.
    let handle = unsafe { libloading::Library::new(lib) }.map_err(|e| {
        EncodeError::OrtLoad(format!(
            "cannot load the ONNX Runtime library {}: {e}{}",
            lib.display(),
            load_hint(cfg!(windows))
        ))
    })?;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release; the returned
    // struct and the version string are static data of the library, read while it is loaded.
    unsafe {
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            handle.get(b"OrtGetApiBase").map_err(|_| {
                EncodeError::OrtLoad(format!(
                    "{} is not an ONNX Runtime library (it has no OrtGetApiBase)",
                    lib.display()
                ))
            })?;
        let base = get_base();
        if base.is_null() {
            return Err(EncodeError::OrtLoad(format!(
                "{} returned no API base",
                lib.display()
            )));
        }
        let version = CStr::from_ptr(((*base).GetVersionString)())
            .to_string_lossy()
            .into_owned();
        Ok(version)
    }
}

/// Fails unless ONNX Runtime has been loaded with [`init`].
pub(crate) fn require() -> Result<&'static Runtime> {
    RUNTIME.get().ok_or_else(|| {
        EncodeError::OrtLoad(
            "ONNX Runtime is not loaded yet; call init with the library path first".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_load_names_the_vc_runtime_on_windows_only() {
        assert!(load_hint(true).contains("Visual C++ 2015-2022 Redistributable"));
        assert_eq!(load_hint(false), "");
    }
}
