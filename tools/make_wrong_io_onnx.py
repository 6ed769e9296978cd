"""Writes __test__/fixtures/wrong-io.onnx: a valid ONNX graph whose input and output are not the
ones a ColBERT encoder has (`x` -> Identity -> `y`), for the MODEL_INVALID test."""
import pathlib

import onnx
from onnx import TensorProto, helper

out = pathlib.Path(__file__).resolve().parent.parent / "__test__" / "fixtures" / "wrong-io.onnx"
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "wrong_io", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="colbert-tools")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, out)
print(f"wrote {out} ({out.stat().st_size} bytes)")
