//! Replays every committed fuzz input — the minimised corpora `fuzz/corpus/<target>/` and the
//! crash reproducers `fuzz/regressions/<target>/` — through the same harness functions the
//! `cargo fuzz` targets call (`colbert_encode::fuzzing`), on stable, as part of `cargo test`.
//! No ONNX Runtime is needed.
//!
//! `write_seed_corpus` (ignored) regenerates the real-input seeds from the fixture folders:
//! `cargo test -p colbert-encode --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::path::{Path, PathBuf};

use colbert_encode::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `harness` on every file of the target's corpus and regressions; fails listing the
/// inputs that panicked.
fn replay(target: &str, harness: fn(&[u8])) {
    let mut files = Vec::new();
    for sub in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(fuzz_dir().join(sub).join(target)) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no committed inputs for {target}");
    let failed: Vec<String> = files
        .iter()
        .filter(|p| {
            let data = std::fs::read(p).expect("corpus file");
            std::panic::catch_unwind(|| harness(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: inputs that panic: {failed:#?}"
    );
}

#[test]
fn model_config_corpus() {
    replay("model_config", fuzzing::model_config);
}

#[test]
fn tokenize_corpus() {
    replay("tokenize", fuzzing::tokenize);
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed");
}

fn config_input(ctrl: &[u8], dir: &Path) -> Vec<u8> {
    let mut data = ctrl.to_vec();
    for name in fuzzing::CONFIG_FILES {
        data.push(0xFF);
        if let Ok(b) = std::fs::read(dir.join(name)) {
            data.extend_from_slice(&b);
        }
    }
    data
}

/// Real inputs: each fixture folder's configuration files (both folder layouts), with and
/// without overrides, and the golden texts of the parity tests under several settings.
#[test]
#[ignore]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let folders = [
        ("tiny-bert", root.join("__test__/fixtures/tiny-bert"), 0u8),
        ("minilm", root.join("models/minilm-colbert"), 1),
        (
            "tiny-modernbert",
            root.join("__test__/fixtures/tiny-modernbert"),
            64,
        ),
        (
            "modernbert-onnx-export",
            root.join("__test__/fixtures/tiny-modernbert-onnx-export"),
            64,
        ),
    ];
    for (name, dir, pick) in &folders {
        write("model_config", name, &config_input(&[*pick], dir));
        write(
            "model_config",
            &format!("{name}-overrides"),
            &config_input(&[*pick | 2 | 8 | 16, 12, 40], dir),
        );
    }
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(root.join("__test__/fixtures/tiny-bert/golden/texts.json"))
            .expect("texts"),
    )
    .expect("texts JSON");
    // Control byte 0: fixture (bits 0, 6), document (1), no expansion (2), attend (3),
    // lowercase (4), no prefix (5); byte 1: lengths.
    let settings: [[u8; 2]; 8] = [
        [0, 2],
        [2, 8],
        [1, 2],
        [3, 9],
        [64, 2],
        [66, 14],
        [4 | 16, 1],
        [8 | 32 | 1, 6],
    ];
    for (i, t) in texts.iter().enumerate() {
        let mut data = settings[i % settings.len()].to_vec();
        data.extend_from_slice(t.as_bytes());
        write("tokenize", &format!("{i:02}"), &data);
    }
}
