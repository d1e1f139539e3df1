"""The ONNX Runtime session opens a graph optimised once and kept beside the model."""

from __future__ import annotations

import numpy as np


def _tiny_model(path):
    """y = (x + 1) * 2 on float vectors: small, but with something for the optimiser to fold."""
    import onnx
    from onnx import TensorProto, helper

    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["t"]), helper.make_node("Mul", ["t", "two"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        initializer=[one, two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def test_optimised_graph_is_saved_reused_and_replaced_when_damaged(tmp_path):
    import onnxruntime as ort

    from qa.embedding.onnx import open_session

    model = tmp_path / "model-int8.onnx"
    _tiny_model(model)
    x = np.array([0.5, -1.0, 3.0], dtype=np.float32)
    first = open_session(model, threads=1)
    saved = tmp_path / f"model-int8.optimized-ort{ort.__version__}.onnx"
    assert saved.is_file() and not list(tmp_path.glob("*.partial"))
    np.testing.assert_allclose(first.run(None, {"x": x})[0], (x + 1) * 2)

    saved.write_bytes(b"not an onnx graph")  # e.g. a disk that filled up while it was written
    again = open_session(model, threads=1)
    np.testing.assert_allclose(again.run(None, {"x": x})[0], (x + 1) * 2)
    reopened = open_session(model, threads=1)  # the rewritten graph opens as it is
    np.testing.assert_allclose(reopened.run(None, {"x": x})[0], (x + 1) * 2)
    assert saved.read_bytes() != b"not an onnx graph"
