#!/usr/bin/env python3
"""Golden data for KBlockQuantizer.appendQ4_0 (Tests/BitNetTests/BlockHeadTests.swift): f32
rows quantized to Q4_0 by the reference numpy implementation in the PyPI `gguf` package
(gguf.quants.quantize, which follows ggml's quantize_row_q4_0_ref: d = the signed value of
largest magnitude / -8, q = min(15, trunc(x/d + 8.5))). gguf 0.19 has no Q4_K / Q6_K
quantizer, so those have no such fixture.

    python3 -m venv /tmp/gqvenv && /tmp/gqvenv/bin/pip install gguf numpy
    /tmp/gqvenv/bin/python tools/gguf/make_q4_0_quant_fixture.py

Rows: random values of several magnitudes, an all-zero block, a block whose largest
magnitude is negative, one whose values land on .5 ties after scaling, tiny values
(f16-subnormal scales) and large ones. Output: Tests/BitNetTests/Fixtures/dequant/quant_q4_0.json
  {"gguf_version", "numpy_version", "cases": [{"type": "Q4_0", "rows": r, "cols": c,
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
    q = quantize(x, GGMLQuantizationType.Q4_0)
    return {"type": "Q4_0", "rows": rows, "cols": x.shape[1],
            "f32": base64.b64encode(x.astype("<f4").tobytes()).decode(),
            "blocks": base64.b64encode(np.ascontiguousarray(q).tobytes()).decode()}


def main():
    rng = np.random.default_rng(20261204)
    cases = [
        case(rng.standard_normal(3 * 64) * 0.05, 3),
        case(rng.standard_normal(2 * 96) * 3.0, 2),
        case(np.zeros(32), 1),
        case(np.concatenate([[-8.0], np.arange(31) - 15 + 0.5]), 1),  # d = 1, ties
        case(np.concatenate([[9.0], -np.arange(31) / 4.0]), 1),       # positive max, d < 0
        case(rng.standard_normal(64) * 1e-6, 1),
        case(rng.standard_normal(64) * 3e4, 1),
    ]
    out = os.path.join(os.path.dirname(__file__), "../../Tests/BitNetTests/Fixtures/dequant/quant_q4_0.json")
    with open(out, "w") as f:
        json.dump({"gguf_version": version("gguf"), "numpy_version": version("numpy"), "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
