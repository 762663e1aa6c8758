"""Read dlib's serialization format and the layer stack of a dlib DNN `.dat` file.

Why this exists: dlib's CC0 models are only usable through dlib's own C++ runtime, which
in the prebuilt `dlib-bin` wheel runs without BLAS. To run the same networks on another
runtime (ONNX Runtime, see `embed_onnx`) we must read the weights ourselves. This module
understands the file and nothing more: it returns plain dataclasses and numpy arrays and
knows nothing of ONNX.

The format, as dlib writes it (dlib/serialize.h, dlib/dnn/{core,layers,input,loss}.h):

* integers: one header byte (low nibble: number of value bytes, bit 7: negative), then
  the magnitude little-endian;
* floats and doubles: an integer mantissa and an integer exponent, value = m * 2**e
  (special exponents mark inf and nan), so files are portable across platforms;
* strings: an integer length, then the bytes; bools: the characters '1' or '0';
* tensors: version 2 writes n, k, nr, nc then raw little-endian float32 (version 1 used
  the portable float encoding per value);
* a network is written from the loss layer down: each wrapper writes its version and
  then its sub-network first, and only afterwards its own layer details. So the file
  holds all the wrapper versions output-to-input, then the input layer, then the layer
  details input-to-output. `add_layer` writes version 2 (version 3 when it sits directly
  on the input layer); `add_tag_layer` and `add_skip_layer` both write version 1 and
  nothing else, so their tag ids are not in the file (see `dlib_net.resolve_residual_graph`);
* `bn_con2` (batch norm as trained) is read as the `affine_` dlib itself turns it into at
  load time: gamma / sqrt(running_variance + eps) and beta - that * running_mean.

The layers come back as the plain data of `dlib_layers`.
"""

from __future__ import annotations

import math

import numpy as np

from facegate.vision.dlib_layers import (
    CONV_MODE,
    FC_MODE,
    AddPrev,
    Affine,
    Conv,
    DetectorWindow,
    FullyConnected,
    InputRGB,
    InputRGBPyramid,
    Layer,
    LossMetric,
    LossMmod,
    Marker,
    Network,
    OverlapTester,
    Pool,
    Relu,
)

_FLOAT_INF = 32000  # dlib float_details: exponent values that encode special numbers
_FLOAT_NINF = 32001
_FLOAT_NAN = 32002


class DlibFormatError(ValueError):
    """The bytes are not a dlib network this reader understands; the message says where."""


# ---------------------------------------------------------------------------------------
# primitives


class Reader:
    """A cursor over the bytes of a dlib-serialized object, one primitive per method."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self._data)

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self._data):
            raise DlibFormatError(f"unexpected end of data at byte {self.pos} (wanted {n} more)")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        """dlib's variable-length integer: size/sign header byte, then magnitude bytes."""
        start = self.pos
        header = self._take(1)[0]
        size = header & 0x0F
        if header & 0x70 or size > 8:
            raise DlibFormatError(f"bad integer header 0x{header:02x} at byte {start}")
        value = int.from_bytes(self._take(size), "little") if size else 0
        return -value if header & 0x80 else value

    def floating(self) -> float:
        """A float or double in dlib's portable form: integer mantissa times 2**exponent."""
        mantissa = self.integer()
        exponent = self.integer()
        if exponent == _FLOAT_INF:
            return math.inf
        if exponent == _FLOAT_NINF:
            return -math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def take_byte(self) -> int:
        """One raw byte, as dlib writes a `uint8_t`."""
        return int(self._take(1)[0])

    def boolean(self) -> bool:
        ch = bytes(self._take(1))
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        length = self.integer()
        try:
            return bytes(self._take(length)).decode("utf-8")
        except UnicodeDecodeError:
            raise DlibFormatError(f"string at byte {self.pos - length} is not text") from None

    def tensor(self) -> np.ndarray:
        """A `resizable_tensor` as a float32 array of shape (n, k, nr, nc)."""
        version = self.integer()
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:
            raw = self._take(4 * count)
            return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        if version == 1:
            return np.array([self.floating() for _ in range(count)], np.float32).reshape(shape)
        raise DlibFormatError(f"unknown tensor version {version} at byte {self.pos}")

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An `alias_tensor`: only a shape (n, k, nr, nc) that views part of a params tensor."""
        version = self.integer()
        if version != 1:
            raise DlibFormatError(f"unknown alias_tensor version {version} at byte {self.pos}")
        n, k, nr, nc = (self.integer() for _ in range(4))
        return (n, k, nr, nc)


# ---------------------------------------------------------------------------------------
# layer details


def _skip_multipliers(r: Reader, count: int) -> None:
    """Learning-rate and weight-decay multipliers: training settings, read and dropped."""
    for _ in range(count):
        r.floating()


def _read_conv(r: Reader, version: str) -> Conv:
    params = r.tensor().reshape(-1)
    num_filters = r.integer()
    rows, cols = r.integer(), r.integer()
    stride = (r.integer(), r.integer())
    padding = (r.integer(), r.integer())
    filt = r.alias_tensor()
    bias_shape = r.alias_tensor()
    _skip_multipliers(r, 4)
    use_bias = r.boolean() if version == "con_5" else True
    n_filt = int(np.prod(filt))
    if filt[0] != num_filters or filt[2:] != (rows, cols):
        raise DlibFormatError(f"con_ filter shape {filt} disagrees with {num_filters}x{rows}x{cols}")
    filters = params[:n_filt].reshape(filt)
    bias = None
    if use_bias and int(np.prod(bias_shape)) > 0:
        bias = params[n_filt : n_filt + num_filters].copy()
    if params.size != n_filt + (0 if bias is None else num_filters):
        raise DlibFormatError(f"con_ params size {params.size} disagrees with its shapes")
    return Conv(filters.copy(), bias, stride, padding)


def _read_affine(r: Reader, version: str) -> Affine:
    params = r.tensor().reshape(-1)
    gamma_shape = r.alias_tensor()
    r.alias_tensor()  # beta has gamma's shape
    mode = r.integer()
    disabled = r.boolean() if version == "affine_2" else False
    n = int(np.prod(gamma_shape))
    if params.size != 2 * n or mode not in (CONV_MODE, FC_MODE):
        raise DlibFormatError(f"affine_ params {params.size} / mode {mode} not understood")
    return Affine(params[:n].copy(), params[n:].copy(), mode, disabled)


def _read_batch_norm(r: Reader) -> Affine:
    """`bn_con2` with its running statistics folded in, as dlib's affine_(bn_) does."""
    params = r.tensor().reshape(-1)
    gamma_shape = r.alias_tensor()
    r.alias_tensor()  # beta has gamma's shape
    r.tensor()  # means and inverse std-devs of the last training batch: unused at test time
    r.tensor()
    running_means = r.tensor().reshape(-1).astype(np.float64)
    running_variances = r.tensor().reshape(-1).astype(np.float64)
    r.integer()  # num_updates
    r.integer()  # running_stats_window_size
    _skip_multipliers(r, 4)
    eps = r.floating()
    n = int(np.prod(gamma_shape))
    if params.size != 2 * n or running_means.size != n or running_variances.size != n:
        raise DlibFormatError(f"bn_con2 params {params.size} / statistics {running_means.size} disagree")
    gamma = params[:n].astype(np.float64) / np.sqrt(running_variances + eps)
    beta = params[n:].astype(np.float64) - gamma * running_means
    return Affine(gamma.astype(np.float32), beta.astype(np.float32), CONV_MODE, False)


def _read_pool(r: Reader, kind: str) -> Pool:
    window = (r.integer(), r.integer())
    stride = (r.integer(), r.integer())
    padding = (r.integer(), r.integer())
    return Pool(kind, window, stride, padding)


def _read_fc(r: Reader, version: str) -> FullyConnected:
    num_outputs = r.integer()
    num_inputs = r.integer()
    params = r.tensor().reshape(-1)
    w_shape = r.alias_tensor()
    r.alias_tensor()  # biases
    bias_mode = r.integer()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    _skip_multipliers(r, 4)
    use_bias = r.boolean() if version == "fc_3" else True
    n_w = num_inputs * num_outputs
    if w_shape[:2] != (num_inputs, num_outputs):
        raise DlibFormatError(f"fc_ weight shape {w_shape} disagrees with {num_inputs}x{num_outputs}")
    weights = params[:n_w].reshape(num_inputs, num_outputs).copy()
    has_bias = bias_mode == 0 and use_bias
    bias = params[n_w : n_w + num_outputs].copy() if has_bias else None
    if params.size != n_w + (num_outputs if has_bias else 0):
        raise DlibFormatError(f"fc_ params size {params.size} disagrees with its shapes")
    return FullyConnected(weights, bias)


def _read_details(r: Reader) -> Layer:
    start = r.pos
    name = r.string()
    if name in ("con_4", "con_5"):
        return _read_conv(r, name)
    if name in ("affine_", "affine_2"):
        return _read_affine(r, name)
    if name == "bn_con2":
        return _read_batch_norm(r)
    if name == "relu_":
        return Relu()
    if name == "max_pool_2":
        return _read_pool(r, "max")
    if name == "avg_pool_2":
        return _read_pool(r, "avg")
    if name in ("fc_2", "fc_3"):
        return _read_fc(r, name)
    if name == "add_prev_":
        return AddPrev()
    raise DlibFormatError(f"layer {name!r} at byte {start} is not supported by this reader")


def _read_input(r: Reader) -> InputRGB | InputRGBPyramid:
    start = r.pos
    name = r.string()
    if name in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        mean = (r.floating(), r.floating(), r.floating())
        if name.endswith("2"):
            return InputRGBPyramid(mean, r.integer(), r.integer())
        return InputRGBPyramid(mean, 10, 11)  # dlib's defaults before the paddings were stored
    if name not in ("input_rgb_image", "input_rgb_image_sized"):
        raise DlibFormatError(f"input layer {name!r} at byte {start} is not supported")
    mean = (r.floating(), r.floating(), r.floating())
    size = (r.integer(), r.integer()) if name.endswith("_sized") else None
    return InputRGB(mean, size)


def _read_overlap_tester(r: Reader) -> OverlapTester:
    return OverlapTester(r.floating(), r.floating())


def _read_mmod_options(r: Reader) -> LossMmod:
    """`mmod_options` versions 1-4 (1: one unlabelled window; 2+: a list of windows)."""
    start = r.pos
    version = r.integer()
    if version == 1:
        windows = [DetectorWindow(r.integer(), r.integer(), "")]
    elif version in (2, 3, 4):
        windows = []
        for _ in range(r.integer()):
            window_version = r.integer()
            width, height = r.integer(), r.integer()
            windows.append(DetectorWindow(width, height, r.string() if window_version >= 2 else ""))
    else:
        raise DlibFormatError(f"unknown mmod_options version {version} at byte {start}")
    r.floating()  # loss per false alarm, loss per missed target, truth-match IoU: training only
    r.floating()
    r.floating()
    overlaps_nms = _read_overlap_tester(r)
    _read_overlap_tester(r)  # overlaps_ignore: training only
    regression = False
    if version >= 3:
        r.take_byte()  # assume_image_pyramid: training only
    if version >= 4:
        regression = r.boolean()
        r.floating()  # bbr_lambda
    if not windows or min(min(w.width, w.height) for w in windows) < 1:
        raise DlibFormatError(f"mmod_options at byte {start} has no usable detector window")
    return LossMmod(tuple(windows), overlaps_nms, regression)


def _read_loss(r: Reader) -> LossMetric | LossMmod:
    start = r.pos
    name = r.string()
    if name == "loss_metric_":
        return LossMetric(r.floating(), 0.6)
    if name == "loss_metric_2":
        return LossMetric(r.floating(), r.floating())
    if name == "loss_mmod_":
        return _read_mmod_options(r)
    raise DlibFormatError(f"loss {name!r} at byte {start} is not supported")


def _skip_layer_state(r: Reader) -> None:
    """What `add_layer` writes after the details: three flags and three run-time tensors."""
    for _ in range(3):
        r.boolean()
    for _ in range(3):
        r.tensor()


def _input_follows(r: Reader) -> bool:
    """Whether the next bytes are an input layer's name.

    The `add_layer` just above the input writes version 2 in older dlib, the same number
    as every other `add_layer`, so only what follows tells them apart.
    """
    start = r.pos
    try:
        return r.string().startswith("input")
    except DlibFormatError:
        return False
    finally:
        r.pos = start


def read_network(data: bytes) -> Network:
    """Parse a whole `.dat` written by `serialize(net)` (metric or MMOD loss).

    Refuses (DlibFormatError) anything it does not fully understand, including trailing
    bytes, rather than returning a partial network.
    """
    r = Reader(data)
    if r.integer() != 1:
        raise DlibFormatError("not a dlib add_loss_layer (version 1 expected at byte 0)")
    loss = _read_loss(r)
    wrappers: list[str] = []  # output-to-input
    input_version = 0
    while not input_version:
        version = r.integer()
        if version == 1:
            wrappers.append("marker")
        elif version in (2, 3):
            wrappers.append("layer")
            if version == 3 or _input_follows(r):
                input_version = version
        else:
            raise DlibFormatError(f"unknown layer wrapper version {version} at byte {r.pos}")
    net_input = _read_input(r)
    layers: list[Layer] = []
    for kind in reversed(wrappers):
        if kind == "marker":
            layers.append(Marker())
            continue
        layers.append(_read_details(r))
        _skip_layer_state(r)
        if input_version == 3:
            r.integer()  # the bottom add_layer's sample_expansion_factor (always 1 here)
            input_version = -1
    if not r.at_end():
        raise DlibFormatError(f"{len(data) - r.pos} unexpected bytes after the network")
    return Network(net_input, layers, loss)
