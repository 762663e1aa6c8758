"""The layers of a dlib DNN as plain data: what `dlib_format` reads and converters consume.

Arrays stay in dlib's own layouts (filters (out, in, rows, cols), fc weights (in, out));
each consumer (`embed_onnx`, `detect_onnx`) converts them to its runtime's conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONV_MODE = 0  # dlib's layer_mode enum: affine/bn per channel (CONV) or per unit (FC)
FC_MODE = 1

@dataclass(frozen=True, slots=True)
class InputRGB:
    """`input_rgb_image[_sized]`: value = (pixel - mean) / 256, channels R, G, B."""

    mean_rgb: tuple[float, float, float]
    size: tuple[int, int] | None  # (rows, cols) for the _sized variant


@dataclass(frozen=True, slots=True)
class Conv:
    """`con_`: filters (out, in, rows, cols) applied as cross-correlation, zero padding."""

    filters: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), the same on both sides


@dataclass(frozen=True, slots=True)
class Affine:
    """`affine_` (batch norm frozen at test time): y = gamma * x + beta per channel or unit."""

    gamma: np.ndarray  # shape (k,) in CONV_MODE, (k*nr*nc,) in FC_MODE
    beta: np.ndarray
    mode: int
    disabled: bool  # dlib's fuse_convolutions folds it into the conv and disables it


@dataclass(frozen=True, slots=True)
class Relu:
    pass


@dataclass(frozen=True, slots=True)
class Pool:
    """`max_pool_` / `avg_pool_`; window (0, 0) means the whole input (`*_pool_everything`)."""

    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class FullyConnected:
    """`fc_`: output = flatten(x) @ weights (+ bias); weights is (inputs, outputs)."""

    weights: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True, slots=True)
class AddPrev:
    """`add_prev_`: sum with a tagged earlier output; the tag id is not stored in the file."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A `tag` or `skip` wrapper: the file says one is here but not which kind or id."""


Layer = Conv | Affine | Relu | Pool | FullyConnected | AddPrev | Marker


@dataclass(frozen=True, slots=True)
class InputRGBPyramid:
    """`input_rgb_image_pyramid<pyramid_down<N>>`: the image and its downscaled copies,
    tiled into one tensor with `padding` px between levels and `outer_padding` around
    them; values are (pixel - mean) / 256, zero (the mean colour) outside the levels."""

    mean_rgb: tuple[float, float, float]
    padding: int
    outer_padding: int


@dataclass(frozen=True, slots=True)
class LossMetric:
    """`loss_metric_`: the network output is the descriptor itself (no normalisation)."""

    margin: float
    distance_threshold: float


@dataclass(frozen=True, slots=True)
class OverlapTester:
    """dlib's `test_box_overlap`: two boxes overlap when their IoU exceeds `iou` or one
    covers more than `covered` of the other."""

    iou: float
    covered: float


@dataclass(frozen=True, slots=True)
class DetectorWindow:
    """One sliding window of `loss_mmod_`, in pixels of the pyramid level it scans."""

    width: int
    height: int
    label: str


@dataclass(frozen=True, slots=True)
class LossMmod:
    """`loss_mmod_`: one score channel per window (plus 4 box-regression channels each
    when `bounding_box_regression`); a score above 0 is a detection."""

    windows: tuple[DetectorWindow, ...]
    overlaps_nms: OverlapTester
    bounding_box_regression: bool


@dataclass(frozen=True, slots=True)
class LossOther:
    """A loss layer we read no further than its name (its details are not needed)."""

    name: str


@dataclass(frozen=True, slots=True)
class Network:
    """A dlib network as stored: input layer, layers input-to-output, loss layer."""

    input: InputRGB | InputRGBPyramid
    layers: list[Layer]
    loss: LossMetric | LossMmod | LossOther

