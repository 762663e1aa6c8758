"""A dlib network's layer stack as a graph: residual wiring, output shapes and FLOPs.

Why separate from `dlib_format`: reading bytes and reasoning about the network are two
ideas; the converters and the speed benchmark need the second, only loaders the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facegate.vision.dlib_format import DlibFormatError
from facegate.vision.dlib_layers import (
    CONV_MODE,
    AddPrev,
    Affine,
    Conv,
    FullyConnected,
    InputRGB,
    Layer,
    Marker,
    Network,
    Pool,
)


@dataclass(frozen=True, slots=True)
class Node:
    """One computing layer with the indices of the nodes it reads (-1: the input image)."""

    layer: Layer
    inputs: tuple[int, ...]
    shape: tuple[int, int, int]  # output (channels, rows, cols) for one sample


@dataclass(frozen=True, slots=True)
class Graph:
    input: InputRGB
    nodes: list[Node] = field(default_factory=list)


def resolve_residual_graph(net: Network) -> list[tuple[Layer, tuple[int, ...]]]:
    """Wire the layer stack into a graph, recovering the tag/skip markers dlib does not store.

    dlib does not write tag ids, so the wiring follows the residual idioms of dlib's own
    ResNet examples (dnn_face_recognition_ex.cpp, dnn_imagenet_ex.cpp):

    * `residual`:      add_prev1<block<tag1<x>>>  -> one marker, then the block, then add;
    * `residual_down`: add_prev2<avg_pool<skip1<tag2<block<tag1<x>>>>>> -> marker (tag1),
      block, two adjacent markers (tag2 then skip1 back to tag1), pool, add with tag2.

    Any other use of markers raises, so a network of another shape is refused, not
    silently miswired.
    """
    out: list[tuple[Layer, tuple[int, ...]]] = []
    current = -1  # index of the node whose output flows up; -1 is the input image
    tag1: int | None = None
    tag2: int | None = None
    layers = net.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Marker):
            if i + 1 < len(layers) and isinstance(layers[i + 1], Marker):
                if tag1 is None:
                    raise DlibFormatError(f"skip marker at layer {i + 1} without a tag to return to")
                tag2, current = current, tag1
                i += 2
                continue
            tag1, tag2 = current, None
            i += 1
            continue
        if isinstance(layer, AddPrev):
            other = tag2 if tag2 is not None else tag1
            if other is None:
                raise DlibFormatError(f"add_prev at layer {i} with no tagged output before it")
            out.append((layer, (current, other)))
            tag1 = tag2 = None
        else:
            out.append((layer, (current,)))
        current = len(out) - 1
        i += 1
    return out


def _pool_out(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def _output_shape(layer: Layer, inputs: list[tuple[int, int, int]], where: str) -> tuple[int, int, int]:
    """Output (channels, rows, cols) of one layer given its inputs' shapes."""
    k, nr, nc = inputs[0]
    shape = (k, nr, nc)
    if isinstance(layer, Conv):
        n_out, k_in, fr, fc = layer.filters.shape
        if k_in != k:
            raise DlibFormatError(f"conv at {where} expects {k_in} channels, gets {k}")
        shape = (
            n_out,
            _pool_out(nr, fr, layer.stride[0], layer.padding[0]),
            _pool_out(nc, fc, layer.stride[1], layer.padding[1]),
        )
    elif isinstance(layer, Pool):
        wr, wc = layer.window[0] or nr, layer.window[1] or nc
        shape = (
            k,
            _pool_out(nr, wr, layer.stride[0], layer.padding[0]),
            _pool_out(nc, wc, layer.stride[1], layer.padding[1]),
        )
    elif isinstance(layer, FullyConnected):
        if layer.weights.shape[0] != k * nr * nc:
            raise DlibFormatError(f"fc at {where} expects {layer.weights.shape[0]} inputs, gets {k * nr * nc}")
        shape = (layer.weights.shape[1], 1, 1)
    elif isinstance(layer, AddPrev):
        k2, nr2, nc2 = inputs[1]
        shape = (max(k, k2), max(nr, nr2), max(nc, nc2))
    elif isinstance(layer, Affine):
        expected = k if layer.mode == CONV_MODE else k * nr * nc
        if layer.gamma.size != expected:
            raise DlibFormatError(f"affine at {where} has {layer.gamma.size} params, expects {expected}")
    if min(shape) < 1:
        raise DlibFormatError(f"{type(layer).__name__} at {where} would have empty output {shape}")
    return shape


def infer_graph(net: Network) -> Graph:
    """Resolve the wiring and compute each node's output shape with dlib's size rules.

    Convolution and pooling: out = 1 + (in + 2*pad - window) // stride. `add_prev`
    outputs the elementwise maximum of its inputs' shapes: dlib zero-fills whatever one
    operand lacks (channels, rows or columns), which the face ResNet relies on where a
    strided 3x3 conv and a 2x2 average pool disagree on the output size.
    """
    if not isinstance(net.input, InputRGB) or net.input.size is None:
        raise DlibFormatError("the input layer has no fixed size; shapes cannot be inferred")
    shapes: dict[int, tuple[int, int, int]] = {-1: (3, *net.input.size)}
    nodes: list[Node] = []
    for idx, (layer, inputs) in enumerate(resolve_residual_graph(net)):
        shape = _output_shape(layer, [shapes[i] for i in inputs], f"node {idx}")
        shapes[idx] = shape
        nodes.append(Node(layer, inputs, shape))
    return Graph(net.input, nodes)


def layer_flops(graph: Graph) -> list[int]:
    """Floating-point operations per sample for each node (multiply-add counted as 2)."""
    shapes = {-1: (3, *graph.input.size)} if graph.input.size else {}
    flops: list[int] = []
    for idx, node in enumerate(graph.nodes):
        out = int(np.prod(node.shape))
        layer = node.layer
        if isinstance(layer, Conv):
            _, k_in, fr, fc = layer.filters.shape
            f = 2 * out * k_in * fr * fc + (out if layer.bias is not None else 0)
        elif isinstance(layer, FullyConnected):
            f = 2 * layer.weights.size + (layer.weights.shape[1] if layer.bias is not None else 0)
        elif isinstance(layer, Pool):
            _k, nr, nc = shapes[node.inputs[0]]
            wr, wc = layer.window[0] or nr, layer.window[1] or nc
            f = out * wr * wc
        elif isinstance(layer, Affine):
            f = 2 * out
        else:
            f = out
        shapes[idx] = node.shape
        flops.append(f)
    return flops


def fold_affine(conv: Conv, affine: Affine) -> Conv:
    """The conv whose output equals `affine(conv(x))`: a per-channel affine scales each
    filter and shifts its bias, so test-time batch norm costs nothing."""
    if affine.mode != CONV_MODE or affine.gamma.size != conv.filters.shape[0]:
        raise DlibFormatError("only a per-channel affine with one value per filter folds into a conv")
    bias = conv.bias if conv.bias is not None else np.zeros(conv.filters.shape[0], np.float32)
    filters = conv.filters * affine.gamma[:, None, None, None]
    return Conv(filters.astype(np.float32), (bias * affine.gamma + affine.beta).astype(np.float32), conv.stride, conv.padding)
