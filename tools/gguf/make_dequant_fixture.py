#!/usr/bin/env python3
"""Golden data for BlockDequantizer (Tests/BitNetTests/BlockDequantizerTests.swift):
llama.cpp block types dequantized by the reference numpy implementation in the PyPI
`gguf` package (gguf-py, maintained in llama.cpp: gguf.quants.dequantize).

    python3 -m venv /tmp/gqvenv && /tmp/gqvenv/bin/pip install gguf numpy
    /tmp/gqvenv/bin/python tools/gguf/make_dequant_fixture.py

Written with gguf 0.19.0 and numpy 2.4.6 (both recorded in the fixture).

For every type, a 5-row tensor of one block per row, plus a 3-row × 2-block tensor
(32-element types) or a 1-row × 2-block one (256-element K / IQ4_XS types), of
deterministic pseudo-random bytes (a 64-bit LCG, below) with every f16 scale field
(d, dmin / m) overwritten by a finite value, so all results are finite:
  - block 0: all code bits 0 (qs, qh, hmask, scales bytes = 0x00);
  - block 1: all code bits 1 (0xFF);
  - block 2: bytes cycling 0x0F, 0xF0, 0xAA, 0x55 (mixed nibbles and high-bit masks);
  - blocks 3+: random bytes.
Scales are drawn from a small list including negative values, subnormal halves and
the largest finite half (65504), so the extremes are covered too.

Output: Tests/BitNetTests/Fixtures/dequant/dequant.json
  {"generator", "gguf_version", "numpy_version",
   "cases": [{"type": "Q4_0", "id": 2, "rows": r, "cols": c,
              "blocks": "<base64 of the raw block bytes, row-major>",
              "f32": "<base64 of the expected values as little-endian f32, row-major>"}]}
IEEE bits rather than decimals so the comparison is exact.
"""
import base64
import json
import os
import sys
import importlib.metadata as md

import numpy as np
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES
from gguf.quants import dequantize

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "BitNetTests", "Fixtures", "dequant",
                   "dequant.json")

# type -> byte offsets of f16 scale fields within one block (ggml-common.h block_* structs)
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0],
}

SCALES = [0.5, -0.25, 1.0 / 3.0, 0.0123, -7.75, 6.1e-5, 3.0e-7, 65504.0, -1.5e-3, 0.0, 2.0, -65504.0]


class LCG:
    def __init__(self, seed):
        self.s = seed & (2**64 - 1)

    def byte(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return (self.s >> 33) & 0xFF


def block(qtype, index, rng):
    _, type_size = GGML_QUANT_SIZES[qtype]
    if index == 0:
        b = bytearray(type_size)
    elif index == 1:
        b = bytearray([0xFF] * type_size)
    elif index == 2:
        b = bytearray((0x0F if i % 2 == 0 else 0xF0) if i % 4 < 2 else (0xAA if i % 2 == 0 else 0x55)
                      for i in range(type_size))
    else:
        b = bytearray(rng.byte() for _ in range(type_size))
    for k, off in enumerate(SCALE_OFFSETS[qtype]):
        v = SCALES[(index * 3 + k * 5 + int(qtype)) % len(SCALES)]
        if index >= 3:
            v = SCALES[rng.byte() % len(SCALES)]
        b[off:off + 2] = np.float16(v).tobytes()
    return bytes(b)


def case(qtype, rows, blocks_per_row, rng, first):
    block_size, _ = GGML_QUANT_SIZES[qtype]
    raw = b"".join(block(qtype, first + i, rng) for i in range(rows * blocks_per_row))
    data = np.frombuffer(raw, dtype=np.uint8).reshape(rows, -1)
    values = dequantize(data, qtype).astype(np.float32, copy=False)
    assert values.shape == (rows, blocks_per_row * block_size), values.shape
    assert np.all(np.isfinite(values)), qtype.name
    return {"type": qtype.name, "id": int(qtype), "rows": rows, "cols": blocks_per_row * block_size,
            "blocks": base64.b64encode(raw).decode(),
            "f32": base64.b64encode(values.astype("<f4").tobytes()).decode()}


def main():
    cases = []
    for qtype in SCALE_OFFSETS:
        rng = LCG(0x9E3779B97F4A7C15 ^ int(qtype))
        cases.append(case(qtype, 5, 1, rng, 0))   # the three patterns + 2 random blocks, one per row
        if GGML_QUANT_SIZES[qtype][0] == 32:
            cases.append(case(qtype, 3, 2, rng, 3))   # odd row count, two blocks per row, random
        else:
            cases.append(case(qtype, 1, 2, rng, 3))   # two blocks in a row, random (kept small)
    doc = {
        "generator": "tools/gguf/make_dequant_fixture.py",
        "gguf_version": md.version("gguf"),
        "numpy_version": md.version("numpy"),
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}: {len(cases)} cases, {os.path.getsize(OUT)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
