"""dlib's MMOD CNN face detector, converted locally to ONNX and run with ONNX Runtime.

Why: the prebuilt dlib wheel runs the network without BLAS (0.3 s on a 250x250 photo,
about 20 s on a 1280 px group photo). The same weights in ONNX Runtime find the same
faces many times faster. Nothing is downloaded: the graph is built on this machine from
the CC0 `mmod_human_face_detector.dat` in `face_recognition_models` and cached.

What runs where, following dlib (tools/python/src/cnn_face_detector.cpp, dnn/loss.h):

* `upsample` times, the image is enlarged 2x as dlib's binding does (`mmod_pyramid`);
* the image pyramid is tiled into one tensor (`mmod_pyramid`), in numpy;
* the fully convolutional net (con_ with its batch norm folded in, relu) runs in ONNX
  Runtime on that tensor, one score map per detector window;
* every score above 0 is a detection: its output cell maps back through the convs to a
  tensor point, the window is centred there and mapped to the image; detections are
  taken best first, dropping any that the file's overlap tester says overlaps a kept one.

`tests/vision/test_detect_onnx.py` holds the result to dlib's own detector's boxes and
confidences on real photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import dlib_format as df
from facegate.vision import dlib_layers as dl
from facegate.vision import dlib_net, onnx_cache
from facegate.vision import mmod_pyramid as mp
from facegate.vision.types import Box, Detection

if TYPE_CHECKING:  # onnx is needed only to convert a model: not importing it saves 46 ms a process
    import onnx

MODEL_NAME = "dlib-mmod-face-v1"
CONVERTER_VERSION = 1  # bump when the produced graph changes; old cache files are ignored
OPSET = 17
INPUT_NAME = "pyramid"
OUTPUT_NAME = "scores"
PYRAMID_N = 6  # the net's input is input_rgb_image_pyramid<pyramid_down<6>>
Corners = tuple[int, int, int, int]  # left, top, right, bottom, inclusive (dlib's rectangle)


class OnnxMmodDetector:
    """`cnn_face_detection_model_v1` on ONNX Runtime's CPU provider."""

    name = "cnn-onnx"

    def __init__(
        self, dat_path: Path, cache_dir: Path, min_face_size: int = 40, upsample: int = 0, threads: int | None = None
    ) -> None:
        if upsample < 0 or min_face_size < 0:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "upsample and min_face_size must be >= 0")
        self.onnx_path = onnx_cache.ensure_onnx(
            Path(dat_path), Path(cache_dir), MODEL_NAME, CONVERTER_VERSION, lambda data: convert(df.read_network(data))
        )
        # Decoding needs the file's pyramid and loss settings and the conv geometry; reading
        # them again (0.7 MB, milliseconds) keeps the cached ONNX file a plain graph.
        net = df.read_network(Path(dat_path).read_bytes())
        if not isinstance(net.input, dl.InputRGBPyramid) or not isinstance(net.loss, dl.LossMmod):
            raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"{Path(dat_path).name} is not an MMOD detector")
        self._input = net.input
        self._loss = net.loss
        self._convs = [layer for layer in net.layers if isinstance(layer, dl.Conv)]
        self.min_face_size = min_face_size
        self.upsample = upsample
        self._session = onnx_cache.cpu_session(self.onnx_path, threads)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, boxes clipped, largest first."""
        _check_image(image)
        height, width = image.shape[:2]
        out: list[Detection] = []
        for (left, top, right, bottom), score in self.find(image):
            box = _clip(left, top, right, bottom, width, height)
            if box is not None and max(right - left + 1, bottom - top + 1) >= self.min_face_size:
                out.append(Detection(box=box, confidence=score, detector=self.name))
        return sorted(out, key=lambda d: -d.box.area)

    def find(self, image: np.ndarray) -> list[tuple[Corners, float]]:
        """What `dlib.cnn_face_detection_model_v1(image, upsample)` returns: unclipped boxes
        (inclusive corners, pixels of `image`) with confidences, best first."""
        _check_image(image)
        scaled = image
        for _ in range(self.upsample):
            scaled = mp.upsample_2x(scaled)
        return [(mp.box_down_2x(box, self.upsample), score) for box, score in self._net_detections(scaled)]

    def _net_detections(self, image: np.ndarray) -> list[tuple[Corners, float]]:
        """What dlib's `net(image)` returns: boxes in pixels of `image`, best first."""
        rows, cols = image.shape[:2]
        layout = mp.tile_layout(rows, cols, PYRAMID_N, self._input.padding, self._input.outer_padding)
        if not layout.tiles or min(layout.rows, layout.cols) < self._receptive_min():
            return []
        tensor = mp.pyramid_tensor(image, layout, self._input.mean_rgb)
        (scores,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: tensor})
        return self._decode(np.asarray(scores)[0], layout)

    def _receptive_min(self) -> int:
        """The smallest tensor side the convs turn into at least one output cell."""
        size = 1
        for conv in reversed(self._convs):
            size = (size - 1) * conv.stride[0] + conv.filters.shape[2] - 2 * conv.padding[0]
        return size

    def _to_tensor_point(self, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dlib's output_tensor_to_input_tensor: p -> p * stride - padding + size // 2, top down."""
        x, y = col.astype(np.float64), row.astype(np.float64)
        for conv in reversed(self._convs):
            x = x * conv.stride[1] - conv.padding[1] + conv.filters.shape[3] // 2
            y = y * conv.stride[0] - conv.padding[0] + conv.filters.shape[2] // 2
        return x, y

    def _decode(self, scores: np.ndarray, layout: mp.Layout) -> list[tuple[Corners, float]]:
        candidates: list[tuple[float, Corners]] = []
        for k, window in enumerate(self._loss.windows):
            rows, cols = np.nonzero(scores[k] > 0)
            xs, ys = self._to_tensor_point(cols, rows)
            half_w, half_h = (window.width - 1) / 2, (window.height - 1) / 2
            for x, y, r, c in zip(xs, ys, rows, cols):
                box = mp.tensor_to_image(layout.tiles, PYRAMID_N, (x - half_w, y - half_h, x + half_w, y + half_h))
                corners = tuple(mp.round_pixel(v) for v in box)
                candidates.append((float(scores[k, r, c]), corners))  # type: ignore[arg-type]
        candidates.sort(key=lambda item: -item[0])
        kept: list[tuple[Corners, float]] = []
        tester = self._loss.overlaps_nms
        for score, corners in candidates:
            if not any(_overlaps(tester, other, corners) for other, _ in kept):
                kept.append((corners, score))
        return kept


def _check_image(image: object) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "image must be an RGB uint8 array (rows, cols, 3)")


def _area(a: Corners) -> int:
    return max(0, a[2] - a[0] + 1) * max(0, a[3] - a[1] + 1)


def _overlaps(tester: dl.OverlapTester, a: Corners, b: Corners) -> bool:
    """dlib's test_box_overlap: IoU against the bounding box of both, or percent covered."""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > tester.iou or inner / _area(a) > tester.covered or inner / _area(b) > tester.covered


def _clip(left: int, top: int, right: int, bottom: int, width: int, height: int) -> Box | None:
    left, top = max(0, left), max(0, top)
    right, bottom = min(width, right + 1), min(height, bottom + 1)
    if right - left < 2 or bottom - top < 2:
        return None
    return Box(left, top, right - left, bottom - top)


# ---------------------------------------------------------------------------------------
# conversion


def convert(network: dl.Network) -> onnx.ModelProto:
    """An ONNX model from the tiled pyramid tensor (1, 3, H, W) to the score maps (1, K, h, w).

    Only the MMOD shape is accepted: pyramid input, loss_mmod without box regression and
    a plain chain of con_ (each optionally followed by an affine_) and relu_ layers.
    """
    from onnx import TensorProto, helper, numpy_helper
    if not isinstance(network.input, dl.InputRGBPyramid) or not isinstance(network.loss, dl.LossMmod):
        raise df.DlibFormatError("only networks with an RGB pyramid input and loss_mmod_ are converted")
    if network.loss.bounding_box_regression:
        raise df.DlibFormatError("loss_mmod_ with bounding box regression is not supported")
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = INPUT_NAME
    layers = list(network.layers)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, dl.Conv):
            if i + 1 < len(layers) and isinstance(layers[i + 1], dl.Affine) and not layers[i + 1].disabled:
                layer = dlib_net.fold_affine(layer, layers[i + 1])  # type: ignore[arg-type]
                i += 1
            bias = layer.bias if layer.bias is not None else np.zeros(layer.filters.shape[0], np.float32)
            w_name, b_name, out = f"w{len(inits)}", f"b{len(inits)}", f"conv{i}"
            inits += [numpy_helper.from_array(layer.filters, w_name), numpy_helper.from_array(bias, b_name)]
            py, px = layer.padding
            nodes.append(
                helper.make_node(
                    "Conv", [x, w_name, b_name], [out], name=out,
                    kernel_shape=list(layer.filters.shape[2:]), strides=list(layer.stride), pads=[py, px, py, px],
                )
            )
            x = out
        elif isinstance(layer, dl.Relu):
            out = f"relu{i}"
            nodes.append(helper.make_node("Relu", [x], [out], name=out))
            x = out
        else:
            raise df.DlibFormatError(f"cannot convert {type(layer).__name__} at layer {i} of an MMOD net")
        i += 1
    k = len(network.loss.windows)
    nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = helper.make_graph(
        nodes,
        "dlib_mmod",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, k, "h", "w"])],
        initializer=inits,
    )
    return onnx_cache.finish_model(graph, "facegate.vision.detect_onnx", CONVERTER_VERSION, OPSET)
