"""The ONNX rewriting behind the networks on onnxruntime and OpenVINO: dequantised weights, an open input size, and the
refusals of files that are not what they should be (nomina.models.onnx_graph)."""

from __future__ import annotations

import numpy as np
import pytest

from nomina.models import MODELS, locate_files, onnx_graph


def tensor(name: str, values: np.ndarray, data_type: int, raw: bool = True):
    fields = {"name": name, "dims": list(values.shape), "data_type": data_type}
    if raw:
        fields["raw_data"] = values.tobytes()
    else:
        fields["int32_data" if data_type != 1 else "float_data"] = values.reshape(-1).tolist()
    return onnx_graph.message("Tensor", **fields)


def dequantise(x, scale, zero, **attrs):
    node = onnx_graph.message("Node", input=["x", "s", "z"], output=["w"], op_type="DequantizeLinear")
    for key, value in attrs.items():
        node.attribute.add(name=key, i=value)
    conv = onnx_graph.message("Node", input=["photo", "w", "b"], output=["y"], op_type="Conv")
    graph = onnx_graph.message("Graph", node=[node, conv])
    graph.initializer.extend(
        [tensor("x", x, 3), tensor("s", scale, 1), tensor("z", zero, 3), tensor("b", np.zeros(2, np.float32), 1)]
    )
    for name in ("photo", "x", "s", "z", "b"):  # files list their weights as inputs too
        graph.input.add(name=name)
    model = onnx_graph.read(onnx_graph.message("Model", graph=graph).SerializeToString())
    onnx_graph.float_weights(model)
    (made,) = [t for t in model.graph.initializer if t.name == "w"]
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    assert sorted(t.name for t in model.graph.initializer) == ["b", "w"]
    assert [i.name for i in model.graph.input] == ["photo"]
    assert made.data_type == 1
    return np.frombuffer(made.raw_data, "<f4").reshape(tuple(made.dims))


RNG = np.random.default_rng(7)
X = RNG.integers(-128, 128, size=(2, 6, 3, 3)).astype(np.int8)


def test_weights_quantised_per_tensor_per_axis_and_per_block_become_what_they_stand_for():
    assert np.array_equal(dequantise(X, np.float32(0.5), np.int8(3)), (X.astype(np.float32) - 3) * 0.5)
    scale, zero = np.array([0.1, 0.2], np.float32), np.array([1, -2], np.int8)
    want = (X.astype(np.float32) - zero.reshape(2, 1, 1, 1)) * scale.reshape(2, 1, 1, 1)
    assert np.allclose(dequantise(X, scale, zero, axis=0), want)
    # blocks of 4 along axis 1: channels 0-3 share a scale, 4-5 the next (the last block is short)
    scale = RNG.uniform(0.01, 0.1, size=(2, 2, 3, 3)).astype(np.float32)
    zero = RNG.integers(-5, 5, size=(2, 2, 3, 3)).astype(np.int8)
    full = np.repeat(scale, 4, axis=1)[:, :6], np.repeat(zero, 4, axis=1)[:, :6].astype(np.float32)
    assert np.allclose(dequantise(X, scale, zero, axis=1, block_size=4), (X - full[1]) * full[0])
    # blocks of 3 along axis 1, two of them whole (as in the shipped files): the same arithmetic, to the bit
    scale = RNG.uniform(0.01, 0.1, size=(2, 2, 3, 3)).astype(np.float32)
    zero = RNG.integers(-5, 5, size=(2, 2, 3, 3)).astype(np.int8)
    full = np.repeat(scale, 3, axis=1), np.repeat(zero, 3, axis=1).astype(np.float32)
    assert np.array_equal(dequantise(X, scale, zero, axis=1, block_size=3), (X - full[1]) * full[0])


def test_one_block_longer_than_its_axis_is_the_whole_axis():
    scale, zero = np.array([[[[0.5]], [[0.25]]]], np.float32).reshape(2, 1, 1, 1), np.zeros((2, 1, 1, 1), np.int8)
    scale, zero = np.broadcast_to(scale, (2, 1, 3, 3)).copy(), np.broadcast_to(zero, (2, 1, 3, 3)).copy()
    got = dequantise(X, scale, zero, axis=1, block_size=2**40)  # repeated as often as the axis is long, no more
    assert np.array_equal(got, X.astype(np.float32) * scale)


def test_values_kept_in_typed_fields_are_read_like_raw_bytes():
    node_scale = np.array([0.25, 4.0], np.float32)
    graph = onnx_graph.message("Graph")
    graph.node.add(input=["x", "s"], output=["w"], op_type="DequantizeLinear").attribute.add(name="axis", i=0)
    graph.initializer.extend([tensor("x", X, 3, raw=False), tensor("s", node_scale, 1, raw=False)])
    model = onnx_graph.float_weights(onnx_graph.message("Model", graph=graph))
    (made,) = model.graph.initializer
    got = np.frombuffer(made.raw_data, "<f4").reshape(tuple(made.dims))
    assert np.array_equal(got, X.astype(np.float32) * node_scale.reshape(2, 1, 1, 1))


def longer_shape(x, s):
    x.dims.append(2)


def unread_type(x, s):
    x.data_type = 8  # strings


def five_scales_for_two_channels(x, s):
    s.raw_data = np.ones(5, np.float32).tobytes()
    s.dims[:] = [5]


def blocks_of_a_million(x, s):
    s.dims[:] = [2, 2, 3, 3]  # two blocks along axis 1 ...
    s.raw_data = np.full(36, 0.5, np.float32).tobytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (blocks_of_a_million, r"node 'w': blocks of 1000000 do not fit weights \(2, 6, 3, 3\)"),
        (longer_shape, r"tensor 'x' holds 108 values, not the \(2, 6, 3, 3, 2\) its shape says"),
        (unread_type, "tensor 'x': element type 8 is not one Nomina reads"),
        (five_scales_for_two_channels, r"node 'w': scale \(1, 5, 1, 1\) does not fit weights \(2, 6, 3, 3\)"),
    ],
)
def test_tensors_that_do_not_hold_what_they_say_are_refused(change, message):
    graph = onnx_graph.message("Graph")
    node = graph.node.add(input=["x", "s"], output=["w"], op_type="DequantizeLinear")
    node.attribute.add(name="axis", i=1)
    if change is blocks_of_a_million:
        node.attribute.add(name="block_size", i=1_000_000)  # ... of a million weights each, over six
    graph.initializer.extend([tensor("x", X, 3), tensor("s", np.full(6, 0.5, np.float32), 1)])
    change(graph.initializer[0], graph.initializer[1])
    with pytest.raises(ValueError, match=message):
        onnx_graph.float_weights(onnx_graph.message("Model", graph=graph))


def test_a_dequantisation_node_without_its_inputs_is_refused_in_one_line():
    graph = onnx_graph.message("Graph")
    graph.node.add(input=["x"], output=["w"], op_type="DequantizeLinear")
    graph.initializer.extend([tensor("x", X, 3)])
    with pytest.raises(ValueError, match=r"^a DequantizeLinear node has 1 input\(s\) and 1 output\(s\)$"):
        onnx_graph.float_weights(onnx_graph.message("Model", graph=graph))


@pytest.mark.parametrize("data", [b"", b"hello world", b"\xff\xd8\xff\xe0" + bytes(200), b"\x3a\x05abc"])
def test_bytes_that_are_not_an_onnx_model_are_refused(data):
    with pytest.raises(ValueError, match=r"^not an ONNX file"):
        onnx_graph.read(data)


def yunet_file() -> bytes:
    return locate_files(MODELS["sface"])["detector"].read_bytes()


def test_the_shipped_detector_is_read_and_written_back_whole():
    data = yunet_file()
    again = onnx_graph.read(data).SerializeToString()
    # fields Nomina does not declare are kept (and written after the ones it does, so the order may differ)
    assert len(again) == len(data)
    assert onnx_graph.read(again).SerializeToString() == again


def test_the_detector_input_is_opened_to_any_size_and_nothing_else_is_fixed():
    model = onnx_graph.open_input_size(onnx_graph.float_weights(onnx_graph.read(yunet_file())))
    (photo,) = model.graph.input
    dims = photo.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 3] and [d.dim_param for d in dims[2:]] == ["height", "width"]
    assert not any(d.HasField("dim_value") for d in dims[2:])
    assert all(not out.type.tensor_type.HasField("shape") for out in model.graph.output)
    assert len(model.graph.value_info) == 0
    assert not [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    two = onnx_graph.message("Model", graph=onnx_graph.message("Graph"))
    two.graph.input.add(name="a")
    two.graph.input.add(name="b")
    with pytest.raises(ValueError, match="must take one image"):
        onnx_graph.open_input_size(two)
