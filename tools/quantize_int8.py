"""Writes model_int8.onnx next to a folder's model.onnx with our int8 settings.

    python tools/quantize_int8.py <folder> [--no-per-channel] [--no-reduce-range]

Dynamic quantisation (onnxruntime.quantization.quantize_dynamic, int8 weights, per-batch uint8
activations). The defaults are per-channel weight scales and `reduce_range` (7-bit weights):
with full 8-bit weights, CPUs without AVX-512 VNNI compute uint8 x int8 products with
VPMADDUBSW, whose 16-bit sums saturate, and int8 embeddings then depend on the CPU (the
tiny-modernbert fixture's query fidelity fell from >= 0.99 to 0.9805 mean cosine on an AVX-only
EPYC). With 7-bit weights the sums cannot saturate, so every x86 CPU computes the same integers.

tools/export_onnx.py quantizes through `quantize` and then verifies the result against PyTorch.
Run standalone on an exported folder, it re-quantizes model.onnx, records the settings, size and
hash in onnx_export.json and drops the exporter's int8 verification numbers, which no longer
describe the file (the fixtures' int8 fidelity test measures it instead). Needs only onnx and
onnxruntime (tools/requirements.txt).
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path


def settings(per_channel: bool, reduce_range: bool) -> dict:
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": per_channel,
        "reduce_range": reduce_range,
    }


def quantize(fp32: Path, int8: Path, per_channel: bool = True, reduce_range: bool = True) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model_input=str(fp32),
        model_output=str(int8),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        reduce_range=reduce_range,
    )
    return settings(per_channel, reduce_range)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--no-per-channel", action="store_true")
    ap.add_argument("--no-reduce-range", action="store_true")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    fp32, int8 = folder / "model.onnx", folder / "model_int8.onnx"
    if not fp32.exists():
        print(f"{fp32} not found", file=sys.stderr)
        return 1
    s = quantize(fp32, int8, not args.no_per_channel, not args.no_reduce_range)
    sidecar = folder / "onnx_export.json"
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        meta["int8"] = s
        data = int8.read_bytes()
        meta.setdefault("files", {})["model_int8.onnx"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        meta.get("verification", {}).pop("int8", None)
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {int8} ({int8.stat().st_size / 1e6:.2f} MB, {s})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
