"""MTCNN's three networks as ONNX graphs, built from facenet-pytorch's weight files.

MTCNN (Zhang et al., 2016) cascades three small CNNs: P-Net scans an image pyramid fully
convolutionally, R-Net and O-Net re-score and refine candidate boxes on 24x24 and 48x48
crops, O-Net also giving five landmarks. The weights are the ones facenet-pytorch (MIT)
ships in its wheel, converted from the original Caffe release; the layer sequence below
is that package's `PNet`/`RNet`/`ONet`. Inputs are uint8 RGB, normalised as MTCNN was
trained, (x - 127.5) / 128:

* P-Net takes pyramid levels (N, H, W, 3) and returns maps;
* R-Net and O-Net take the whole image (1, H, W, 3) and candidate boxes (K, 4) as float
  (x1, y1, x2, y2) pixels, and crop and resize the boxes themselves with ONNX's RoiAlign
  (the mean of ROI_SAMPLES x ROI_SAMPLES bilinear samples per output pixel, zero outside
  the image, as the original MTCNN pads). Cutting in the graph takes a third of the time
  of cropping each box with Pillow (1 ms against 3 ms for the 31 boxes of an LFW photo);
  RoiAlign's adaptive sampling (as many samples as source pixels) took 5 ms.

The weights are read with `torch_weights` (no PyTorch) from the installed package's
directory, located without importing it (importing it would import PyTorch).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import onnx_cache
from facegate.vision.torch_weights import TorchFormatError, load_state_dict

if TYPE_CHECKING:  # onnx is needed only to convert a model: not importing it saves 46 ms a process
    import onnx

CONVERTER_VERSION = 1  # bump when a produced graph changes; old cache files are ignored
OPSET = 17
INPUT_NAME = "images"  # P-Net: pyramid levels; R-Net and O-Net: the whole image
BOXES_NAME = "boxes"  # R-Net and O-Net: candidate boxes to crop
WEIGHTS_PACKAGE = "facenet_pytorch"
ROI_SAMPLES = 1

# (kind, argument): conv/prelu/dense name a state-dict prefix; pool gives (kernel, stride);
# "flatten" is facenet-pytorch's permute(0, 3, 2, 1) then view (the Caffe weight order).
Layer = tuple[str, object]
TRUNKS: dict[str, list[Layer]] = {
    "pnet": [
        ("conv", "conv1"), ("prelu", "prelu1"), ("pool", (2, 2)),
        ("conv", "conv2"), ("prelu", "prelu2"),
        ("conv", "conv3"), ("prelu", "prelu3"),
    ],
    "rnet": [
        ("conv", "conv1"), ("prelu", "prelu1"), ("pool", (3, 2)),
        ("conv", "conv2"), ("prelu", "prelu2"), ("pool", (3, 2)),
        ("conv", "conv3"), ("prelu", "prelu3"),
        ("flatten", None), ("dense", "dense4"), ("prelu", "prelu4"),
    ],
    "onet": [
        ("conv", "conv1"), ("prelu", "prelu1"), ("pool", (3, 2)),
        ("conv", "conv2"), ("prelu", "prelu2"), ("pool", (3, 2)),
        ("conv", "conv3"), ("prelu", "prelu3"), ("pool", (2, 2)),
        ("conv", "conv4"), ("prelu", "prelu4"),
        ("flatten", None), ("dense", "dense5"), ("prelu", "prelu5"),
    ],
}
# Output name -> (layer, classifier?): face probability, box regression, landmarks.
# A two-way softmax is a sigmoid of the logits' difference, so the classifier layer is
# folded into one output (weights and bias of "face" minus those of "not face") and a
# Sigmoid: "prob" has one channel, and ONNX Runtime's slow softmax over channels is gone.
HEADS: dict[str, dict[str, tuple[str, bool]]] = {
    "pnet": {"prob": ("conv4_1", True), "reg": ("conv4_2", False)},
    "rnet": {"prob": ("dense5_1", True), "reg": ("dense5_2", False)},
    "onet": {"prob": ("dense6_1", True), "reg": ("dense6_2", False), "points": ("dense6_3", False)},
}
INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}


def weights_dir() -> Path:
    """facenet-pytorch's `data/` directory, or UNKNOWN_MODEL saying how to install it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FacegateError(
            ErrorCode.UNKNOWN_MODEL,
            "the mtcnn detector needs the weights in the facenet-pytorch wheel: "
            "pip install --no-deps facenet-pytorch==2.6.0 (PyTorch itself is not needed)",
        )
    return Path(spec.origin).parent / "data"


def ensure_onnx(net: str, cache_dir: Path) -> Path:
    """The cached ONNX graph of one of "pnet", "rnet", "onet", converted when missing."""
    return onnx_cache.ensure_onnx(
        weights_dir() / f"{net}.pt", cache_dir, f"mtcnn-{net}", CONVERTER_VERSION, lambda data: convert(net, data)
    )


def convert(net: str, data: bytes) -> onnx.ModelProto:
    """The ONNX model of network `net` from the bytes of its state-dict file."""
    from onnx import TensorProto, helper
    weights = load_state_dict(data)
    g = onnx_cache.GraphBuilder()
    x = g.op("Transpose", [g.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)], perm=[0, 3, 1, 2])
    side = INPUT_SIDE[net]
    if side is not None:
        count = g.op("Shape", [BOXES_NAME], start=0, end=1)  # (K,): every box is on image 0
        zeros = g.op("ConstantOfShape", [count], value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
        x = g.op("RoiAlign", [x, BOXES_NAME, zeros], mode="avg", output_height=side, output_width=side,
                 sampling_ratio=ROI_SAMPLES, spatial_scale=1.0, coordinate_transformation_mode="half_pixel")
    x = g.op("Mul", [g.op("Sub", [x, g.const(np.float32(127.5), "mean")]), g.const(np.float32(1 / 128), "scale")])
    try:
        flat = False  # after the flatten, PReLU slopes are (C,) rather than (C, 1, 1)
        for kind, arg in TRUNKS[net]:
            flat = flat or kind == "flatten"
            x = _layer(g, weights, kind, arg, x, flat)
        outputs = []
        for out_name, (layer, classifier) in HEADS[net].items():
            if classifier:
                weights[f"{layer}.weight"] = weights[f"{layer}.weight"][1:] - weights[f"{layer}.weight"][:1]
                weights[f"{layer}.bias"] = weights[f"{layer}.bias"][1:] - weights[f"{layer}.bias"][:1]
            y = _layer(g, weights, "dense" if flat else "conv", layer, x, flat)
            if classifier:
                y = g.op("Sigmoid", [y])
            g.nodes.append(helper.make_node("Identity", [y], [out_name], name=f"out_{out_name}"))
            outputs.append(out_name)
    except KeyError as exc:
        raise TorchFormatError(f"{net}: weight {exc} missing") from None
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N" if side is None else 1, "H", "W", 3])]
    if side is not None:
        inputs.append(helper.make_tensor_value_info(BOXES_NAME, TensorProto.FLOAT, ["K", 4]))
    graph = helper.make_graph(
        g.nodes,
        f"mtcnn_{net}",
        inputs,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", "C"] if flat else ["N", "C", "h", "w"]) for name in outputs],
        initializer=g.inits,
    )
    return onnx_cache.finish_model(graph, "facegate.vision.mtcnn_net", CONVERTER_VERSION, OPSET)


def _layer(
    g: onnx_cache.GraphBuilder, weights: dict[str, np.ndarray], kind: str, arg: object, x: str, flat: bool
) -> str:
    if kind == "conv":
        w = weights[f"{arg}.weight"].astype(np.float32)
        b = weights[f"{arg}.bias"].astype(np.float32)
        return g.op("Conv", [x, g.const(w, "w"), g.const(b, "b")], kernel_shape=list(w.shape[2:]))
    if kind == "prelu":
        # slope * x + (1 - slope) * relu(x): ONNX Runtime's PRelu kernel broadcasts slowly
        # (it was the costliest node of O-Net), while Mul/Add/Relu run in its fast path.
        slope = weights[f"{arg}.weight"].astype(np.float32)
        shape = slope.shape if flat else (-1, 1, 1)
        scaled = g.op("Mul", [x, g.const(slope.reshape(shape), "slope")])
        rest = g.op("Mul", [g.op("Relu", [x]), g.const((1 - slope).reshape(shape), "keep")])
        return g.op("Add", [scaled, rest])
    if kind == "pool":
        kernel, stride = arg  # type: ignore[misc]
        return g.op("MaxPool", [x], kernel_shape=[kernel, kernel], strides=[stride, stride], ceil_mode=1)
    if kind == "flatten":
        return g.op("Flatten", [g.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)
    if kind == "dense":
        w = weights[f"{arg}.weight"].astype(np.float32)
        b = weights[f"{arg}.bias"].astype(np.float32)
        return g.op("Gemm", [x, g.const(w, "w"), g.const(b, "b")], transB=1)
    raise ValueError(f"unknown layer kind {kind}")

