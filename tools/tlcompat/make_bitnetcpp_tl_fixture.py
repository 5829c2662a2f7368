#!/usr/bin/env python3
"""Write the fixture that pins BitNetCppTLLayout to bitnet.cpp's own TL1/TL2 bytes.

bitnet.cpp (microsoft/BitNet) permutes TL1 / TL2 weights with tiling parameters
that its GGUF files do not record. This script runs bitnet.cpp's *own* packing
code (loaded at run time from a checkout you point it to; nothing of bitnet.cpp
is copied here) on deterministic ternary weights, and writes

    Tests/BitNetTests/Fixtures/bitnetcpp-tl/fixture.json

with
  * "small":     a few small shapes (all tiling constraints met, TL2 with and
                 without a two_k tail) and their complete packed bytes (base64);
  * "published": every shape bitnet.cpp's setup_env.py generates kernels for,
                 with the tiling setup_env.py passes to codegen (source
                 "setup_env"), plus the preset_kernels/*.ini tilings where they
                 differ (source "preset_ini"), each with the hash of the packed
                 bytes for the generator's weights;
  * "unconvertible": preset tilings bitnet.cpp's converter itself rejects, with
                 its error.

Run (numpy is the only dependency):

    mkdir -p /tmp/bitnetcpp-src
    git -C <bitnet.cpp git dir or clone> archive HEAD | tar -x -C /tmp/bitnetcpp-src
    python3 -m venv /tmp/tlvenv && /tmp/tlvenv/bin/pip install numpy
    /tmp/tlvenv/bin/python tools/tlcompat/make_bitnetcpp_tl_fixture.py \\
        --bitnet-cpp /tmp/bitnetcpp-src --source-label microsoft/BitNet@16da220

(from the repository root; --out overrides the output path; takes about 15 s
and 1.5 GB of memory, mostly for the Llama3-8B shapes). The output is
deterministic: rerunning on the same checkout reproduces the file byte for byte.

How bitnet.cpp's code is used: the five packing functions (process_tl1,
preprocess_weights_tl1, preprocess_two_weights_tl2,
preprocess_three_weights_tl2, preprocess_weights_tl2) are taken by name from
<bitnet-cpp>/utils/convert-hf-to-gguf-bitnet.py with `ast` and executed with
numpy only (the module itself imports torch and gguf at top level, which these
functions do not need). They read `include/kernel_config.ini` from the current
directory, so each call runs in a temporary directory holding one, written in
the format of utils/codegen_tl*.py (section Kernels_0, keys M, K, BM, BK, bmm).
The tilings come from parsing <bitnet-cpp>/setup_env.py (the codegen_tl*.py
invocations), ModelShapeDict in utils/codegen_tl*.py, and
preset_kernels/*/kernel_config_tl*.ini.

Weight generator (reproduced in Tests/BitNetTests/BitNetCppTLTests.swift):

    x = (r*7919 + c*104729 + seed*31) mod 2^32
    x = (x * 2654435761) mod 2^32
    w[r][c] = ((x >> 16) mod 3) - 1          # in {-1, 0, 1}

for row r < M, column c < K of the row-major (M, K) = Hugging Face [out, in]
matrix. The converter receives it as float32.

Hash ("fnv1a64w"): FNV-1a 64 over little-endian 64-bit words instead of bytes
(the packed bytes zero-padded to a multiple of 8): h = 0xcbf29ce484222325; for
each word: h ^= word; h = (h * 0x100000001b3) mod 2^64. Written as 16 lower-case
hex digits. The SHA-256 of the bytes is written too, for cross-checks by others.
"""

import argparse
import ast
import base64
import configparser
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import typing

import numpy as np

CONVERTER = "utils/convert-hf-to-gguf-bitnet.py"
PACKING_FUNCTIONS = ("process_tl1", "preprocess_weights_tl1", "preprocess_two_weights_tl2",
                     "preprocess_three_weights_tl2", "preprocess_weights_tl2")
MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1

# Small shapes: (kind, M, K, BM, BK, bm, seed). Each satisfies bitnet.cpp's
# constraints (docs/codegen.md). TL2 shapes keep K >= 256, where the converter's
# padding (Python floor division) equals ggml_nbytes' C formula.
SMALL = [
    ("tl1", 64, 128, 64, 64, 32, 1),      # two K blocks, two sub-tiles
    ("tl1", 128, 128, 64, 64, 64, 2),     # bm = 64 (by = 4), two M tiles
    ("tl1", 320, 128, 160, 128, 32, 3),   # BM = 160 (5 sub-tiles), as the 3B model
    ("tl2", 64, 256, 32, 96, 32, 4),      # two_k = 64, two M tiles
    ("tl2", 64, 320, 64, 96, 32, 5),      # two_k = 32
    ("tl2", 96, 288, 96, 96, 32, 6),      # two_k = 0, BM = 96
    ("tl2", 64, 448, 64, 192, 32, 7),     # BK = 192, two_k = 64
    ("tl2", 160, 416, 160, 96, 32, 8),    # BM = 160, two_k = 32
]
PUBLISHED_SEED = 1


def load_packing_functions(root):
    path = os.path.join(root, CONVERTER)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in PACKING_FUNCTIONS]
    missing = set(PACKING_FUNCTIONS) - {node.name for node in found}
    if missing:
        sys.exit(f"{path}: functions not found: {sorted(missing)}")
    namespace = {"np": np, "Tuple": typing.Tuple, "__name__": "bitnetcpp_tl_packing"}
    exec(compile(ast.Module(body=found, type_ignores=[]), path, "exec"), namespace)
    return namespace, hashlib.sha256(source.encode("utf-8")).hexdigest()


def literal_assignment(path, name):
    """The literal value assigned to `name` anywhere in the file (e.g. ModelShapeDict)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    sys.exit(f"{path}: no assignment to {name}")


def setup_env_tilings(root):
    """[(kind, codegen model, [(M, K, BM, BK, bm)], setup_env branch condition)] from setup_env.py."""
    path = os.path.join(root, "setup_env.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    shapes = {}
    for kind in ("tl1", "tl2"):
        shapes[kind] = literal_assignment(os.path.join(root, f"utils/codegen_{kind}.py"), "ModelShapeDict")
    runs = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        condition = ast.unparse(node.test)
        for statement in node.body:  # run_command([sys.executable, "utils/codegen_tlN.py", ...]) directly under it
            if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
                continue
            for command in statement.value.args:
                if not isinstance(command, ast.List):
                    continue
                items = [e.value if isinstance(e, ast.Constant) else None for e in command.elts]
                script = next((s for s in items if isinstance(s, str) and re.search(r"codegen_tl[12]\.py$", s)), None)
                if script is None:
                    continue
                kind = "tl1" if script.endswith("tl1.py") else "tl2"
                arg = {items[i]: items[i + 1] for i in range(len(items) - 1) if isinstance(items[i], str)
                       and items[i].startswith("--")}
                model = arg["--model"]
                lists = [[int(v) for v in arg[key].split(",")] for key in ("--BM", "--BK", "--bm")]
                table = shapes[kind][model]
                assert all(len(values) == len(table) for values in lists), (kind, model)
                entries = [(m, k, lists[0][i], lists[1][i], lists[2][i]) for i, (m, k) in enumerate(table)]
                runs.append((kind, model, entries, condition))
    return runs


def preset_tilings(root):
    """{(kind, M, K): ((BM, BK, bm), preset directory)} from preset_kernels/*/kernel_config_tl*.ini."""
    result = {}
    for path in sorted(glob.glob(os.path.join(root, "preset_kernels", "*", "kernel_config_tl*.ini"))):
        kind = "tl1" if path.endswith("tl1.ini") else "tl2"
        config = configparser.ConfigParser()
        config.read(path)
        for section in config.sections():
            key = (kind, int(config.get(section, "m")), int(config.get(section, "k")))
            value = tuple(int(config.get(section, k)) for k in ("bm", "bk", "bmm"))
            result[key] = (value, os.path.basename(os.path.dirname(path)))
    return result


def weights(rows, cols, seed):
    r = np.arange(rows, dtype=np.uint64)[:, None]
    c = np.arange(cols, dtype=np.uint64)[None, :]
    x = (r * np.uint64(7919) + c * np.uint64(104729) + np.uint64(seed * 31)) & np.uint64(MASK32)
    x = (x * np.uint64(2654435761)) & np.uint64(MASK32)
    return ((x >> np.uint64(16)) % np.uint64(3)).astype(np.int8) - np.int8(1)


def pack(functions, kind, rows, cols, tiling, w):
    """bitnet.cpp's packed bytes for w (int8 ternary), via its converter functions."""
    BM, BK, bm = tiling
    config = configparser.ConfigParser()
    config.add_section("Kernels_0")
    for key, value in (("M", rows), ("K", cols), ("BM", BM), ("BK", BK), ("bmm", bm)):
        config.set("Kernels_0", key, str(value))
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.makedirs(os.path.join(scratch, "include"))
        with open(os.path.join(scratch, "include", "kernel_config.ini"), "w") as f:
            config.write(f)
        os.chdir(scratch)
        try:
            packed = functions[f"preprocess_weights_{kind}"](w.astype(np.float32))
        finally:
            os.chdir(here)
    packed = np.ascontiguousarray(packed)
    assert packed.dtype == np.uint8, packed.dtype
    return packed.reshape(-1).tobytes()


def fnv1a64w(data):
    padded = data + bytes(-len(data) % 8)
    h = 0xcbf29ce484222325
    for word in np.frombuffer(padded, dtype="<u8").tolist():
        h = ((h ^ word) * 0x100000001b3) & MASK64
    return f"{h:016x}"


def source_label(root, given):
    if given:
        return given
    try:  # only when the checkout is itself a git work tree (not an export inside another repository)
        top = subprocess.run(["git", "-C", root, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if os.path.realpath(top) == os.path.realpath(root):
            return subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown (pass --source-label)"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "Tests", "BitNetTests", "Fixtures", "bitnetcpp-tl", "fixture.json")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bitnet-cpp", required=True, help="path to an extracted bitnet.cpp checkout")
    parser.add_argument("--out", default=os.path.normpath(default_out))
    parser.add_argument("--source-label", default=None, help="what the checkout is, e.g. microsoft/BitNet@16da220")
    args = parser.parse_args()
    root = os.path.abspath(args.bitnet_cpp)

    functions, converter_sha = load_packing_functions(root)
    fixture = {
        "about": "bitnet.cpp TL1/TL2 packed bytes made by tools/tlcompat/make_bitnetcpp_tl_fixture.py "
                 "with bitnet.cpp's own converter functions; see that script for the generator and hash.",
        "bitnet_cpp": source_label(root, args.source_label),
        "converter_sha256": converter_sha,
        "generator": "x=(r*7919+c*104729+seed*31) mod 2^32; x=x*2654435761 mod 2^32; w=((x>>16) mod 3)-1",
        "hash": "fnv1a64w: FNV-1a 64 over little-endian u64 words of the bytes zero-padded to a multiple of 8",
        "small": [],
        "published": [],
        "unconvertible": [],
    }

    for kind, rows, cols, BM, BK, bm, seed in SMALL:
        data = pack(functions, kind, rows, cols, (BM, BK, bm), weights(rows, cols, seed))
        fixture["small"].append({"kind": kind, "rows": rows, "cols": cols, "BM": BM, "BK": BK, "bm": bm,
                                 "seed": seed, "packed_bytes": len(data),
                                 "data_base64": base64.b64encode(data).decode("ascii")})
        print(f"small {kind} {rows}x{cols} BM={BM} BK={BK} bm={bm}: {len(data)} bytes", flush=True)

    presets = preset_tilings(root)
    seen = {}
    for kind, model, entries, condition in setup_env_tilings(root):
        for rows, cols, BM, BK, bm in entries:
            key = (kind, rows, cols)
            if key in seen:
                assert seen[key]["tiling"] == (BM, BK, bm), f"setup_env gives {key} two tilings"
                seen[key]["setup_env_branches"].append(condition)
                continue
            seen[key] = {"tiling": (BM, BK, bm), "model": model, "setup_env_branches": [condition]}

    jobs = []
    for (kind, rows, cols), info in seen.items():
        jobs.append(("setup_env", kind, rows, cols, info["tiling"], info["model"], info["setup_env_branches"]))
        preset = presets.get((kind, rows, cols))
        if preset is not None and preset[0] != info["tiling"]:
            jobs.append(("preset_ini", kind, rows, cols, preset[0], f"preset_kernels/{preset[1]}", []))

    for source, kind, rows, cols, tiling, model, branches in jobs:
        BM, BK, bm = tiling
        entry = {"source": source, "kind": kind, "rows": rows, "cols": cols, "BM": BM, "BK": BK, "bm": bm,
                 "model": model}
        if branches:
            entry["setup_env_branches"] = branches
        try:
            data = pack(functions, kind, rows, cols, tiling, weights(rows, cols, PUBLISHED_SEED))
        except Exception as error:  # bitnet.cpp's own code rejects this tiling
            entry["error"] = f"{type(error).__name__}: {error}"
            fixture["unconvertible"].append(entry)
            print(f"{source} {kind} {rows}x{cols} {tiling}: converter fails: {entry['error']}", flush=True)
            continue
        entry.update({"seed": PUBLISHED_SEED, "packed_bytes": len(data), "fnv1a64w": fnv1a64w(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
        fixture["published"].append(entry)
        print(f"{source} {kind} {rows}x{cols} {tiling}: {len(data)} bytes {entry['fnv1a64w']}", flush=True)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
