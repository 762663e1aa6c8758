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
  nothing else, so their tag ids are not in the file (see `resolve_residual_graph`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_FLOAT_INF = 32000  # dlib float_details: exponent values that encode special numbers
_FLOAT_NINF = 32001
_FLOAT_NAN = 32002

CONV_MODE = 0  # dlib's layer_mode enum: affine/bn per channel (CONV) or per unit (FC)
FC_MODE = 1


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
# layers (plain data; arrays in dlib's own layouts, converted by the consumer)


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
class LossMetric:
    """`loss_metric_`: the network output is the descriptor itself (no normalisation)."""

    margin: float
    distance_threshold: float


@dataclass(frozen=True, slots=True)
class LossOther:
    """A loss layer we read no further than its name (its details are not needed)."""

    name: str


@dataclass(frozen=True, slots=True)
class Network:
    """A dlib network as stored: input layer, layers input-to-output, loss layer."""

    input: InputRGB
    layers: list[Layer]
    loss: LossMetric | LossOther


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


def _read_input(r: Reader) -> InputRGB:
    start = r.pos
    name = r.string()
    if name not in ("input_rgb_image", "input_rgb_image_sized"):
        raise DlibFormatError(f"input layer {name!r} at byte {start} is not supported")
    mean = (r.floating(), r.floating(), r.floating())
    size = (r.integer(), r.integer()) if name.endswith("_sized") else None
    return InputRGB(mean, size)


def _read_loss(r: Reader) -> LossMetric | LossOther:
    name = r.string()
    if name == "loss_metric_":
        return LossMetric(r.floating(), 0.6)
    if name == "loss_metric_2":
        return LossMetric(r.floating(), r.floating())
    return LossOther(name)


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
    """Parse a whole `.dat` written by `serialize(net)` for a net with a metric loss.

    Refuses (DlibFormatError) anything it does not fully understand, including trailing
    bytes, rather than returning a partial network.
    """
    r = Reader(data)
    if r.integer() != 1:
        raise DlibFormatError("not a dlib add_loss_layer (version 1 expected at byte 0)")
    loss = _read_loss(r)
    if isinstance(loss, LossOther):
        raise DlibFormatError(f"loss {loss.name!r} is not supported; only loss_metric_")
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


# ---------------------------------------------------------------------------------------
# graph: markers resolved, shapes inferred


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
    if net.input.size is None:
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
            k, nr, nc = shapes[node.inputs[0]]
            wr, wc = layer.window[0] or nr, layer.window[1] or nc
            f = out * wr * wc
        elif isinstance(layer, Affine):
            f = 2 * out
        else:
            f = out
        shapes[idx] = node.shape
        flops.append(f)
    return flops
