#!/usr/bin/env python3
"""Golden data for BlockQuantizer (Tests/BitNetTests/BlockQuantizerTests.swift): f32
rows quantized to Q8_0 by the reference numpy implementation in the PyPI `gguf`
package (gguf.quants.quantize, documented there as bit-exact with ggml-quants.c).

    python3 -m venv /tmp/gqvenv && /tmp/gqvenv/bin/pip install gguf numpy
    /tmp/gqvenv/bin/python tools/gguf/make_quant_fixture.py

Rows (each a whole number of 32-element blocks): random values of several
magnitudes, an all-zero block, values that land exactly on .5 after scaling (round
half away from zero), a block whose max is negative, tiny values (f16-subnormal
scales), and large ones. Output: Tests/BitNetTests/Fixtures/dequant/quant.json
  {"gguf_version", "numpy_version", "cases": [{"type": "Q8_0", "rows": r, "cols": c,
    "f32": "<base64 of little-endian f32 input>", "blocks": "<base64 of the expected bytes>"}]}
"""
import base64
import json
import os
from importlib.metadata import version

import numpy as np
from gguf.quants import quantize
from gguf.constants import GGMLQuantizationType


def case(values, rows):
    x = np.asarray(values, dtype=np.float32).reshape(rows, -1)
    q = quantize(x, GGMLQuantizationType.Q8_0)
    return {"type": "Q8_0", "rows": rows, "cols": x.shape[1],
            "f32": base64.b64encode(x.astype("<f4").tobytes()).decode(),
            "blocks": base64.b64encode(np.ascontiguousarray(q).tobytes()).decode()}


def main():
    rng = np.random.default_rng(20261126)
    cases = [
        case(rng.standard_normal(3 * 64) * 0.05, 3),            # embedding-like magnitudes
        case(rng.standard_normal(2 * 96) * 3.0, 2),
        case(np.zeros(32), 1),                                  # d = 0
        case(np.concatenate([[127.0], np.arange(31) - 15 + 0.5]), 1),  # d = 1: every other value a .5 tie
        case(np.concatenate([np.full(31, 0.25), [-1.0]]), 1),   # max |x| is negative
        case(rng.standard_normal(32) * 1e-7, 1),                # f16-subnormal scale
        case(rng.standard_normal(64) * 3000.0, 2),              # large
    ]
    out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "BitNetTests", "Fixtures", "dequant",
                       "quant.json")
    with open(out, "w") as f:
        json.dump({"gguf_version": version("gguf"),
                   "numpy_version": np.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
