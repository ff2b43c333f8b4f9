"""Whole models to tune: two small built-in networks and ONNX files.

Every model comes with random weights (nothing is downloaded) and a numpy forward pass written
independently of TVM, so a tuned build can be checked against it.

- ``cnn``: a ResNet-like block: conv-bn-relu, a residual block of two conv-bn, max-pool, dense.
- ``transformer``: one pre-norm transformer block: multi-head attention and a GELU MLP.
- an ONNX file (:func:`load_onnx`); :func:`write_onnx_cnn` writes a small one with ``onnx.helper``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Arrays = dict[str, np.ndarray]
BN_EPS = 1e-5
LN_EPS = 1e-5


@dataclass(frozen=True)
class Model:
    """A Relax model ready to tune.

    ``mod`` holds one Relax function ``main`` whose weights are already bound as constants;
    ``inputs`` are example inputs by parameter name; ``reference`` (if known) computes the
    output from ``inputs`` with numpy alone.
    """

    name: str
    mod: object  # tvm.IRModule; typed loosely so that importing this module stays cheap
    inputs: Arrays
    reference: Callable[[Arrays], np.ndarray] | None = None


# --- numpy reference operators (NCHW) -------------------------------------------------------


def np_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """Stride-1 NCHW convolution, ``w`` as (O, I, KH, KW)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, w.shape[2:], axis=(2, 3))  # N C H W KH KW
    out = np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)
    return out if b is None else out + b[None, :, None, None]


def np_batch_norm(x: np.ndarray, p: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    """Inference batch norm over channel axis 1."""
    c = (slice(None), None, None)
    scale = p[f"{prefix}.gamma"] / np.sqrt(p[f"{prefix}.var"] + BN_EPS)
    return (x - p[f"{prefix}.mean"][c]) * scale[c] + p[f"{prefix}.beta"][c]


def np_max_pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def np_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * gamma + beta


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


# --- weights ------------------------------------------------------------------------------------


def _random_weights(named_params: Sequence[tuple[str, object]], seed: int) -> Arrays:
    """Random weights scaled by fan-in so activations stay O(1); batch-norm variances positive."""
    rng = np.random.default_rng(seed)
    weights: Arrays = {}
    for name, param in named_params:
        shape = tuple(int(d) for d in param.shape)
        if name.endswith(".var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith((".gamma", ".weight")) and len(shape) == 1:
            value = rng.uniform(0.8, 1.2, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[1:])), shape)
        weights[name] = value.astype("float32")
    return weights


def _export(module, spec: dict, seed: int):
    """``nn.Module`` -> (IRModule with ``main`` and weights bound, numpy weights by name)."""
    import tvm
    from tvm import relax

    mod, named_params = module.export_tvm(spec={"main": spec})
    weights = _random_weights(named_params, seed)
    bound = relax.transform.BindParams("main", {k: tvm.runtime.tensor(v) for k, v in weights.items()})(mod)
    return bound, weights


# --- built-in networks --------------------------------------------------------------------------


def small_cnn(batch: int = 1, channels: int = 16, size: int = 32, classes: int = 10, seed: int = 0) -> Model:
    """A ResNet-like CNN on ``batch x 3 x size x size`` images (NCHW, float32)."""
    from tvm import relax
    from tvm.relax.frontend import nn
    from tvm.relax.frontend.nn.core import wrap_nested

    class BatchNorm(nn.Module):
        # Inference form: running statistics are weights. nn has no BatchNorm module.
        def __init__(self, c: int) -> None:
            self.gamma = nn.Parameter((c, 1, 1), "float32")
            self.beta = nn.Parameter((c, 1, 1), "float32")
            self.mean = nn.Parameter((c, 1, 1), "float32")
            self.var = nn.Parameter((c, 1, 1), "float32")

        def forward(self, x):
            scale = self.gamma / nn.op.sqrt(self.var + BN_EPS)
            return (x - self.mean) * scale + self.beta

    class ConvBN(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            self.conv = nn.Conv2D(cin, cout, 3, padding=1, bias=False)
            self.bn = BatchNorm(cout)

        def forward(self, x):
            return self.bn(self.conv(x))

    class CNN(nn.Module):
        def __init__(self) -> None:
            self.stem = ConvBN(3, channels)
            self.block1 = ConvBN(channels, channels)
            self.block2 = ConvBN(channels, channels)
            self.fc = nn.Linear(channels * (size // 2) ** 2, classes)

        def main(self, x):
            x = nn.op.relu(self.stem(x))
            y = nn.op.relu(self.block1(x))
            x = nn.op.relu(self.block2(y) + x)
            x = wrap_nested(relax.op.nn.max_pool2d(x._expr, pool_size=(2, 2), strides=(2, 2)), "max_pool2d")
            return self.fc(nn.op.reshape(x, (batch, -1)))

    shape = (batch, 3, size, size)
    mod, w = _export(CNN(), {"x": nn.spec.Tensor(shape, "float32")}, seed)
    # BatchNorm parameters are (C, 1, 1) in the model; the reference wants them flat.
    flat = {k: v.reshape(-1) if k.rsplit(".", 1)[-1] in ("gamma", "beta", "mean", "var") else v
            for k, v in w.items()}

    def reference(inputs: Arrays) -> np.ndarray:
        def conv_bn(x, name):
            return np_batch_norm(np_conv2d(x, flat[f"{name}.conv.weight"], None, 1), flat, f"{name}.bn")

        x = _relu(conv_bn(inputs["x"], "stem"))
        y = _relu(conv_bn(x, "block1"))
        x = _relu(conv_bn(y, "block2") + x)
        x = np_max_pool2(x).reshape(batch, -1)
        return x @ flat["fc.weight"].T + flat["fc.bias"]

    x = np.random.default_rng(seed + 1).standard_normal(shape).astype("float32")
    return Model("cnn", mod, {"x": x}, reference)


def transformer_block(seq: int = 16, dim: int = 32, heads: int = 2, hidden: int = 64, seed: int = 0) -> Model:
    """One pre-norm transformer block on a ``seq x dim`` float32 input (batch 1)."""
    from tvm.relax.frontend import nn

    if dim % heads:
        raise ValueError(f"transformer_block: dim {dim} is not a multiple of heads {heads}")
    head_dim = dim // heads

    class Block(nn.Module):
        def __init__(self) -> None:
            self.ln1 = nn.LayerNorm(dim, eps=LN_EPS)
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)
            self.out = nn.Linear(dim, dim)
            self.ln2 = nn.LayerNorm(dim, eps=LN_EPS)
            self.fc1 = nn.Linear(dim, hidden)
            self.fc2 = nn.Linear(hidden, dim)

        def _heads(self, t):  # (seq, dim) -> (heads, seq, head_dim)
            return nn.op.permute_dims(nn.op.reshape(t, (seq, heads, head_dim)), [1, 0, 2])

        def main(self, x):
            h = self.ln1(x)
            q, k, v = self._heads(self.q(h)), self._heads(self.k(h)), self._heads(self.v(h))
            scores = nn.op.matmul(q, nn.op.permute_dims(k, [0, 2, 1])) / float(np.sqrt(head_dim))
            attn = nn.op.matmul(nn.op.softmax(scores, axis=-1), v)
            x = x + self.out(nn.op.reshape(nn.op.permute_dims(attn, [1, 0, 2]), (seq, dim)))
            return x + self.fc2(nn.op.gelu(self.fc1(self.ln2(x))))

    mod, w = _export(Block(), {"x": nn.spec.Tensor((seq, dim), "float32")}, seed)

    def reference(inputs: Arrays) -> np.ndarray:
        def linear(t, name):
            return t @ w[f"{name}.weight"].T + w[f"{name}.bias"]

        def split(t):
            return t.reshape(seq, heads, head_dim).transpose(1, 0, 2)

        x = inputs["x"]
        h = np_layer_norm(x, w["ln1.weight"], w["ln1.bias"])
        q, k, v = split(linear(h, "q")), split(linear(h, "k")), split(linear(h, "v"))
        attn = np_softmax(q @ k.transpose(0, 2, 1) / np.sqrt(head_dim)) @ v
        x = x + linear(attn.transpose(1, 0, 2).reshape(seq, dim), "out")
        return x + linear(np_gelu(linear(np_layer_norm(x, w["ln2.weight"], w["ln2.bias"]), "fc1")), "fc2")

    x = np.random.default_rng(seed + 1).standard_normal((seq, dim)).astype("float32")
    return Model("transformer", mod, {"x": x}, reference)


BUILTIN_MODELS: dict[str, tuple[str, Callable[[], Model]]] = {
    "cnn": ("ResNet-like CNN, 1x3x32x32 input, 3 conv-bn + residual, max-pool, dense", small_cnn),
    "transformer": ("transformer block, 16 tokens x 32, 2 heads, GELU MLP 64", transformer_block),
}


# --- ONNX ---------------------------------------------------------------------------------------


def write_onnx_cnn(path: str | Path, channels: int = 8, size: int = 16, classes: int = 10, seed: int = 0) -> Arrays:
    """Write a small ONNX CNN (Conv-Relu-MaxPool-Conv-Relu-GlobalAveragePool-Flatten-Gemm).

    Returns its weights by initializer name, for :func:`onnx_cnn_reference`.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = {
        "conv1.w": rng.normal(0, 1 / np.sqrt(27), (channels, 3, 3, 3)),
        "conv1.b": rng.normal(0, 0.1, channels),
        "conv2.w": rng.normal(0, 1 / np.sqrt(9 * channels), (channels, channels, 3, 3)),
        "conv2.b": rng.normal(0, 0.1, channels),
        "fc.w": rng.normal(0, 1 / np.sqrt(channels), (classes, channels)),
        "fc.b": rng.normal(0, 0.1, classes),
    }
    w = {k: v.astype("float32") for k, v in w.items()}
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["output"], transB=1),
    ]
    _save_onnx(path, "ms_droplet_cnn", nodes, [numpy_helper.from_array(v, k) for k, v in w.items()],
               [1, 3, size, size], [1, classes])
    return w


def write_onnx_resnet18(path: str | Path, size: int = 112, width: int = 64, classes: int = 1000, seed: int = 0) -> None:
    """Write a ResNet-18-shaped ONNX network (batch norm folded into the convolutions' biases).

    A 7x7/2 stem and max-pool, four stages of two basic blocks (``width`` x 1, 2, 4, 8 channels,
    stride 2 and a 1x1 projection at the start of stages 2-4), global average pool and a dense
    layer: the structure and tasks of ResNet-18. ``size=224, width=64`` is ResNet-18 itself;
    the default input of 112 keeps its tuning within about an hour on 2 cores.
    """
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def conv(x: str, name: str, cin: int, cout: int, k: int, stride: int, relu: bool) -> str:
        w = rng.normal(0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype("float32")
        inits.extend([numpy_helper.from_array(w, f"{name}.w"),
                      numpy_helper.from_array(rng.normal(0, 0.05, cout).astype("float32"), f"{name}.b")])
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        if not relu:
            return name
        nodes.append(helper.make_node("Relu", [name], [f"{name}.relu"]))
        return f"{name}.relu"

    x = conv("input", "stem", 3, width, 7, 2, relu=True)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    x, cin = "pool", width
    for stage, mult in enumerate((1, 2, 4, 8), 1):
        cout = width * mult
        for block in (1, 2):
            name, stride = f"s{stage}b{block}", (2 if stage > 1 and block == 1 else 1)
            y = conv(x, f"{name}.conv1", cin, cout, 3, stride, relu=True)
            y = conv(y, f"{name}.conv2", cout, cout, 3, 1, relu=False)
            shortcut = conv(x, f"{name}.proj", cin, cout, 1, stride, relu=False) if stride != 1 else x
            nodes.append(helper.make_node("Add", [y, shortcut], [f"{name}.add"]))
            nodes.append(helper.make_node("Relu", [f"{name}.add"], [f"{name}.out"]))
            x, cin = f"{name}.out", cout
    fc_w = rng.normal(0, 1 / np.sqrt(cin), (classes, cin)).astype("float32")
    inits.extend([numpy_helper.from_array(fc_w, "fc.w"),
                  numpy_helper.from_array(np.zeros(classes, "float32"), "fc.b")])
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["output"], transB=1),
    ]
    _save_onnx(path, "ms_droplet_resnet18", nodes, inits, [1, 3, size, size], [1, classes])


def _save_onnx(path, name: str, nodes, initializers, input_shape, output_shape) -> None:
    """A float32 graph ``input -> output`` as a checked opset-13 ONNX file."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_cnn_reference(w: Arrays, x: np.ndarray) -> np.ndarray:
    """numpy forward pass of the network :func:`write_onnx_cnn` writes."""
    x = np_max_pool2(_relu(np_conv2d(x, w["conv1.w"], w["conv1.b"], 1)))
    x = _relu(np_conv2d(x, w["conv2.w"], w["conv2.b"], 1)).mean(axis=(2, 3))
    return x @ w["fc.w"].T + w["fc.b"]


def load_onnx(path: str | Path, shapes: Mapping[str, Sequence[int]] | None = None, seed: int = 0) -> Model:
    """Import an ONNX file with ``tvm.relax.frontend.onnx``; random inputs of the right shapes.

    ``shapes`` gives the shape of inputs whose dimensions the file leaves symbolic. Raises
    ``ValueError`` naming the file or the input when the model cannot be used.
    """
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # protobuf raises its own DecodeError and friends
        raise ValueError(f"{str(path)!r} is not a readable ONNX model: {err}") from None
    shapes = dict(shapes or {})
    weights = {t.name for t in proto.graph.initializer}
    graph_inputs = [i for i in proto.graph.input if i.name not in weights]
    unknown = set(shapes) - {i.name for i in graph_inputs}
    if unknown:
        raise ValueError(
            f"--input-shape names {sorted(unknown)}, but {path.name} has inputs "
            f"{[i.name for i in graph_inputs]}"
        )
    shape_dict, dtypes, rng = {}, {}, np.random.default_rng(seed)
    inputs: Arrays = {}
    for inp in graph_inputs:
        tensor_type = inp.type.tensor_type
        dims = shapes.get(inp.name) or [d.dim_value if d.HasField("dim_value") else 0 for d in tensor_type.shape.dim]
        if any(d <= 0 for d in dims):
            raise ValueError(
                f"input {inp.name!r} of {path.name} has a symbolic shape; give it, e.g. "
                f"--input-shape {inp.name}:1,3,224,224"
            )
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        shape_dict[inp.name], dtypes[inp.name] = list(dims), str(dtype)
        data = rng.standard_normal(dims) if dtype.kind == "f" else rng.integers(0, 2, dims)
        inputs[inp.name] = np.asarray(data, dtype=dtype)
    try:
        mod = from_onnx(proto, shape_dict=shape_dict, dtype_dict=dtypes)
    except Exception as err:  # the importer raises many kinds (missing operator, bad attribute)
        raise ValueError(f"TVM cannot import {str(path)!r}: {type(err).__name__}: {err}") from None
    return Model(path.stem, mod, inputs)


def get_model(spec: str, shapes: Mapping[str, Sequence[int]] | None = None, seed: int = 0) -> Model:
    """A built-in model name (``cnn``, ``transformer``) or the path of an ``.onnx`` file."""
    if spec in BUILTIN_MODELS:
        if shapes:
            raise ValueError(f"--input-shape applies to ONNX files, not to the built-in model {spec!r}")
        return BUILTIN_MODELS[spec][1]()
    if spec.endswith(".onnx") or Path(spec).exists():
        return load_onnx(spec, shapes, seed)
    raise ValueError(f"unknown model {spec!r}: give an .onnx file or a built-in ({', '.join(BUILTIN_MODELS)})")
