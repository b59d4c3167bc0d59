"""The few parts of an ONNX file Nomina changes before onnxruntime runs it, read and written with protobuf.

Only the fields used here are declared (field numbers from ONNX's ``onnx.proto``); every other field of the
file is kept as protobuf's unknown fields and written back unchanged. The ``onnx`` package would do the same
but takes about a second to import, on every start of a command that loads a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

__all__ = ["float_weights", "message", "open_input_size", "read"]

_F = descriptor_pb2.FieldDescriptorProto
# message: (field name, number, type, repeated, message type or "", packed)
_SCHEMA: dict[str, list[tuple[str, int, int, bool, str, bool]]] = {
    "Model": [("graph", 7, _F.TYPE_MESSAGE, False, "Graph", False)],
    "Graph": [
        ("node", 1, _F.TYPE_MESSAGE, True, "Node", False),
        ("initializer", 5, _F.TYPE_MESSAGE, True, "Tensor", False),
        ("input", 11, _F.TYPE_MESSAGE, True, "ValueInfo", False),
        ("output", 12, _F.TYPE_MESSAGE, True, "ValueInfo", False),
        ("value_info", 13, _F.TYPE_MESSAGE, True, "ValueInfo", False),
    ],
    "Node": [
        ("input", 1, _F.TYPE_STRING, True, "", False),
        ("output", 2, _F.TYPE_STRING, True, "", False),
        ("op_type", 4, _F.TYPE_STRING, False, "", False),
        ("attribute", 5, _F.TYPE_MESSAGE, True, "Attribute", False),
    ],
    "Attribute": [("name", 1, _F.TYPE_STRING, False, "", False), ("i", 3, _F.TYPE_INT64, False, "", False)],
    "Tensor": [
        ("dims", 1, _F.TYPE_INT64, True, "", False),
        ("data_type", 2, _F.TYPE_INT32, False, "", False),
        ("float_data", 4, _F.TYPE_FLOAT, True, "", True),
        ("int32_data", 5, _F.TYPE_INT32, True, "", True),
        ("int64_data", 7, _F.TYPE_INT64, True, "", True),
        ("name", 8, _F.TYPE_STRING, False, "", False),
        ("raw_data", 9, _F.TYPE_BYTES, False, "", False),
        ("double_data", 10, _F.TYPE_DOUBLE, True, "", True),
    ],
    "ValueInfo": [("name", 1, _F.TYPE_STRING, False, "", False), ("type", 2, _F.TYPE_MESSAGE, False, "Type", False)],
    "Type": [("tensor_type", 1, _F.TYPE_MESSAGE, False, "TensorType", False)],
    "TensorType": [
        ("elem_type", 1, _F.TYPE_INT32, False, "", False),
        ("shape", 2, _F.TYPE_MESSAGE, False, "Shape", False),
    ],
    "Shape": [("dim", 1, _F.TYPE_MESSAGE, True, "Dimension", False)],
    "Dimension": [
        ("dim_value", 1, _F.TYPE_INT64, False, "", False),
        ("dim_param", 2, _F.TYPE_STRING, False, "", False),
    ],
}
_FLOAT = 1
# ONNX element types read here, by their number in TensorProto.DataType, stored little-endian in raw_data
_DTYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 10: "<f2", 11: "<f8", 12: "<u4"}
_IN_INT32_DATA = {2, 3, 4, 5, 6, 10}  # types ONNX keeps in int32_data when a tensor has no raw_data


def _classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="nomina_onnx_subset.proto", package="nomina_onnx", syntax="proto2")
    for message, fields in _SCHEMA.items():
        proto = file.message_type.add(name=message)
        for name, number, kind, repeated, type_name, packed in fields:
            field = proto.field.add(name=name, number=number, type=kind)
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".nomina_onnx.{type_name}"
            if packed:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {m: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"nomina_onnx.{m}")) for m in _SCHEMA}


_CLASSES = _classes()


def message(kind: str, **fields: Any) -> Any:
    """A new message of one of the declared kinds (``Model``, ``Graph``, ``Node``, ``Tensor``...)."""
    return _CLASSES[kind](**fields)


def read(data: bytes) -> Any:
    """The model in an ONNX file's bytes; ValueError when they are not one."""
    model = message("Model")
    try:
        model.ParseFromString(data)
    except DecodeError:
        raise ValueError("not an ONNX file (its bytes are not an ONNX model)") from None
    if not model.HasField("graph"):
        raise ValueError("not an ONNX file (no graph)")
    return model


def _array(tensor: Any) -> np.ndarray:
    dtype = _DTYPES.get(tensor.data_type)
    if dtype is None:
        raise ValueError(f"tensor {tensor.name!r}: element type {tensor.data_type} is not one Nomina reads")
    if tensor.HasField("raw_data"):
        values = np.frombuffer(tensor.raw_data, dtype=dtype)
    elif tensor.data_type == _FLOAT:
        values = np.asarray(tensor.float_data, dtype=dtype)
    elif tensor.data_type in _IN_INT32_DATA:
        values = np.asarray(tensor.int32_data, dtype=np.int32).astype(dtype)
    elif tensor.data_type == 7:
        values = np.asarray(tensor.int64_data, dtype=dtype)
    else:
        values = np.asarray(tensor.double_data, dtype=dtype)
    shape = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in shape) or values.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"tensor {tensor.name!r} holds {values.size} values, not the {shape} its shape says")
    return values.reshape(shape)


def _dequantised(node: Any, stored: dict[str, Any]) -> np.ndarray:
    """What a DequantizeLinear of stored tensors computes: (x - zero point) * scale, per tensor, per axis or
    per block of ``block_size`` along ``axis`` (float32)."""
    if len(node.input) < 2 or len(node.output) != 1:
        raise ValueError(f"a DequantizeLinear node has {len(node.input)} input(s) and {len(node.output)} output(s)")
    x = _array(stored[node.input[0]]).astype(np.float32)
    scale = _array(stored[node.input[1]]).astype(np.float32)
    has_zero = len(node.input) > 2 and node.input[2]
    zero = _array(stored[node.input[2]]).astype(np.float32) if has_zero else np.zeros_like(scale)
    attrs = {a.name: int(a.i) for a in node.attribute}
    axis, block = attrs.get("axis", 1) % max(x.ndim, 1), attrs.get("block_size", 0)
    if scale.ndim and block > 0:
        if scale.ndim != x.ndim or scale.shape[axis] != -(-x.shape[axis] // block):  # as ONNX requires
            raise ValueError(f"node {node.output[0]!r}: blocks of {block} do not fit weights {x.shape}")
        if zero.shape == scale.shape and x.shape[axis] == scale.shape[axis] * block:
            # whole blocks (the shipped files): each block's scale broadcast over it, no full-size copies of them
            blocks = (*x.shape[:axis], scale.shape[axis], block, *x.shape[axis + 1 :])
            per_block = (*scale.shape[:axis], scale.shape[axis], 1, *scale.shape[axis + 1 :])
            out = x.reshape(blocks)
            out -= zero.reshape(per_block)
            out *= scale.reshape(per_block)
            return out.reshape(x.shape)
        whole = [slice(None)] * x.ndim
        whole[axis] = slice(0, x.shape[axis])
        each = min(block, x.shape[axis])  # one block of a million weights over six: six copies, not a million
        scale = np.repeat(scale, each, axis=axis)[tuple(whole)]
        zero = np.repeat(zero, each, axis=axis)[tuple(whole)]
    elif scale.ndim:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    try:
        fits = zero.shape == scale.shape and np.broadcast_shapes(x.shape, scale.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"node {node.output[0]!r}: scale {scale.shape} does not fit weights {x.shape}")
    return ((x - zero) * scale).astype(np.float32)


def float_weights(model: Any) -> Any:
    """The model with every ``DequantizeLinear`` of stored tensors replaced by the float tensor it computes, and
    only what the network is fed (the photo) left as an input of the graph. Changed in place, and returned."""
    graph = model.graph
    stored = {t.name: t for t in graph.initializer}
    kept, made = [], []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(name in stored for name in node.input if name):
            kept.append(node)
            continue
        weights = _dequantised(node, stored)
        raw = weights.astype("<f4", copy=False).tobytes()
        made.append(message("Tensor", name=node.output[0], dims=list(weights.shape), data_type=_FLOAT, raw_data=raw))
    read_by_nodes = {name for node in kept for name in node.input}
    old = [t for t in graph.initializer if t.name in read_by_nodes]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(old + made)
    # the file also lists its weights, and names no node reads, as inputs of the graph: only the photo is one
    inside = {t.name for t in graph.initializer} | {out for node in graph.node for out in node.output}
    inputs = [i for i in graph.input if i.name in read_by_nodes and i.name not in inside]
    del graph.input[:]
    graph.input.extend(inputs)
    return model


def open_input_size(model: Any) -> Any:
    """The model with its one image input's height and width left open (a file may fix them) and no fixed
    output or intermediate shapes. Changed in place, and returned."""
    graph = model.graph
    if len(graph.input) != 1 or len(graph.input[0].type.tensor_type.shape.dim) != 4:
        raise ValueError("the network must take one image (N x 3 x H x W) as its only input")
    dims = graph.input[0].type.tensor_type.shape.dim
    for dim, name in ((dims[2], "height"), (dims[3], "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    for out in graph.output:
        out.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    return model
