#!/usr/bin/env python3
"""Golden data for KBlockQuantizer's Q4_K and Q6_K (Tests/BitNetTests/BlockQuantizerTests.swift):
f32 blocks quantized by ggml's reference quantizers, quantize_row_q4_K_ref and
quantize_row_q6_K_ref (ggml/src/ggml-quants.c), which are what llama-quantize writes for
these types when no importance matrix is given (quantize_q4_K / quantize_q6_K call them
when quant_weights is NULL).

Nothing of llama.cpp is built here beyond one file: the script compiles the given tree's
ggml-quants.c (in a temporary directory, never in this repository) together with a small
driver, links the rest (ggml_init, which fills the f16 table older trees use, and the
type-size helpers) from the given, already built ggml library, and runs it.

    python3 tools/gguf/make_k_quant_fixture.py \\
        --ggml-src /tmp/bitnetcpp/BitNet/3rdparty/llama.cpp/ggml \\
        --ggml-lib /tmp/bitnetcpp/BitNet/build/3rdparty/llama.cpp/ggml/src/libggml.so

--ggml-src is a ggml directory holding include/ggml.h and src/ggml-quants.c; --ggml-lib
the shared library built from that tree (libggml.so, or libggml-base.so in newer trees).
ggml-quants.c is compiled with -O2 -ffp-contract=off: every multiply and add rounded on
its own, as C's abstract machine does and as an x86-64 build of ggml-base (no -march, so
no FMA) runs it. A compiler allowed to fuse a*b+c into one FMA (clang's default
-ffp-contract=on with -march=native, or any aarch64 build) rounds some sums differently
and breaks near-ties of the scale search the other way: bitnet.cpp's libggml.so (clang,
-march=native) differs in 10 of this fixture's 104 blocks (13 of its 208 Q4_K and Q6_K
encodings). --as-built uses the library's own compiled quantizers instead, to measure that (the
output then says which it was).

Needs python3 with numpy and a C compiler (--cc, default cc). Output (--output, default
Tests/BitNetTests/Fixtures/dequant/quant_k.json):
  {"source", "compile", "numpy_version", "cases": [{"name", "rows", "cols",
    "f32": "<base64 of little-endian f32 input>", "q4_K": "<base64>", "q6_K": "<base64>"}]}
--random N adds N more random 256-value rows (a larger check outside the repository).
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version

import numpy as np

QK = 256
Q4_K_BYTES = 144
Q6_K_BYTES = 210

DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"

/* the reference quantizers, declared here with untyped blocks (ggml-quants.h needs the
   tree's private headers; the symbols are plain C) */
void quantize_row_q4_K_ref(const float * x, void * y, int64_t k);
void quantize_row_q6_K_ref(const float * x, void * y, int64_t k);

/* driver IN OUT_Q4_K OUT_Q6_K ROWS COLS: IN holds ROWS*COLS little-endian f32 */
int main(int argc, char ** argv) {
    if (argc != 6) { fprintf(stderr, "usage: driver in q4k q6k rows cols\n"); return 2; }
    const long rows = atol(argv[4]), cols = atol(argv[5]);
    struct ggml_init_params params = { 1 << 20, NULL, 0 };
    struct ggml_context * ctx = ggml_init(params);
    float * x = malloc(sizeof(float) * rows * cols);
    FILE * f = fopen(argv[1], "rb");
    if (!ctx || !x || !f || fread(x, sizeof(float), rows * cols, f) != (size_t)(rows * cols)) return 1;
    fclose(f);
    const long nb = cols / 256;
    unsigned char * q4 = malloc(144 * nb * rows), * q6 = malloc(210 * nb * rows);
    for (long r = 0; r < rows; r++) {
        quantize_row_q4_K_ref(x + r * cols, q4 + r * nb * 144, cols);
        quantize_row_q6_K_ref(x + r * cols, q6 + r * nb * 210, cols);
    }
    f = fopen(argv[2], "wb"); fwrite(q4, 144, nb * rows, f); fclose(f);
    f = fopen(argv[3], "wb"); fwrite(q6, 210, nb * rows, f); fclose(f);
    ggml_free(ctx);
    return 0;
}
"""


def cases(rng):
    """(name, rows, cols, values): every row a whole number of 256-value blocks."""
    out = []

    def add(name, values, rows=1):
        x = np.asarray(values, dtype=np.float32).reshape(-1)
        assert x.size % (QK * rows) == 0, name
        out.append((name, rows, x.size // rows, x))

    n = rng.standard_normal
    add("zeros", np.zeros(QK))
    add("negative zeros", -np.zeros(QK))
    add("constant 0.5", np.full(QK, 0.5))
    add("constant -0.25", np.full(QK, -0.25))
    add("constant 3e4", np.full(QK, 3e4))
    add("constant 1e-20", np.full(QK, 1e-20))
    for pos, v in [(0, 1.0), (17, -1.0), (255, 7.5), (100, -3e3), (31, 1e-3), (128, -1e-12)]:
        x = np.zeros(QK); x[pos] = v
        add(f"spike {v} at {pos} in zeros", x)
    for pos, v in [(3, 40.0), (200, -40.0), (64, 1e3)]:
        x = n(QK) * 0.02; x[pos] = v
        add(f"spike {v} at {pos} in noise", x)
    add("negative only", -np.abs(n(QK)) - 0.01)
    add("positive only", np.abs(n(QK)) + 0.01)
    add("positive only, narrow", 5.0 + rng.random(QK) * 0.01)
    add("negative only, narrow", -5.0 - rng.random(QK) * 0.01)
    add("negative constant sub-blocks", np.repeat(-(np.arange(16) + 1.0) / 8, 16))
    add("one large sub-block of 16, rest small", np.concatenate([n(16) * 100, n(240) * 0.01]))
    add("one large sub-block of 32, rest small", np.concatenate([n(224) * 0.01, n(32) * 300]))
    add("alternating large and zero sub-blocks", (np.repeat(np.arange(16) % 2, 16) * n(QK)))
    add("sub-block magnitudes over 12 decades", n(QK) * np.repeat(10.0 ** np.linspace(-9, 3, 16), 16))
    add("ternary {-a, 0, a}", rng.integers(-1, 2, QK) * 0.37)
    add("ternary, sparse", rng.choice([-1.0, 0.0, 0.0, 0.0, 0.0, 1.0], QK) * 2.5)
    add("integers -32..31", np.tile(np.arange(-32, 32), 4))
    add("integers -31..32", np.tile(np.arange(-31, 33), 4))
    add("integers 0..15", np.tile(np.arange(16), 16))
    add("half steps", (rng.integers(-64, 64, QK) + 0.5) / 4)
    add("two values", rng.choice([-1.0, 3.0], QK))
    add("ramp", np.linspace(-1, 1, QK))
    add("ramp, positive", np.linspace(0.1, 2, QK))
    add("uniform [-1, 1)", rng.random(QK) * 2 - 1)
    add("student-t 2 dof", rng.standard_t(2, QK))
    add("cauchy", rng.standard_cauchy(QK))
    add("bimodal", np.concatenate([n(128) * 0.1 + 2, n(128) * 0.1 - 2])[rng.permutation(QK)])
    add("tiny normals 1e-6", n(QK) * 1e-6)
    add("tiny normals 1e-9 (f16 scales underflow)", n(QK) * 1e-9)
    add("tiny normals 1e-14", n(QK) * 1e-14)
    add("just above group eps", np.concatenate([[2e-15], np.zeros(QK - 1)]))
    add("just below group eps", np.concatenate([[5e-16], np.zeros(QK - 1)]))
    add("f32 subnormals", n(QK) * 1e-40)
    add("large normals 1e4", n(QK) * 1e4)
    add("large normals 1e9", n(QK) * 1e9)
    add("f16 overflowing scale", n(QK) * 5e6)
    add("f16 boundary 65504", np.concatenate([[65504.0 * 32], n(QK - 1)]))
    add("mixed signs, -0.0 and 0.0", np.where(rng.random(QK) < 0.5, -0.0, 0.0) + (rng.random(QK) < 0.1) * n(QK))
    # typical embedding rows: several scales, several blocks per row
    for s in [0.02, 0.1, 1.0, 30.0]:
        add(f"normals x{s}, 4 rows of 512", n(4 * 512) * s, rows=4)
    add("normals with outliers, 2 rows of 1024",
        n(2048) * 0.05 * np.where(rng.random(2048) < 0.01, 50.0, 1.0), rows=2)
    add("random normals, 16 rows of 256", n(16 * QK) * np.repeat(10.0 ** rng.uniform(-3, 2, 16), QK), rows=16)
    return out


def run(args, workdir, x, rows, cols):
    inp = os.path.join(workdir, "in.f32")
    x.astype("<f4").tofile(inp)
    q4, q6 = os.path.join(workdir, "q4k.bin"), os.path.join(workdir, "q6k.bin")
    subprocess.run([args.driver_path, inp, q4, q6, str(rows), str(cols)], check=True)
    with open(q4, "rb") as f4, open(q6, "rb") as f6:
        a, b = f4.read(), f6.read()
    nb = rows * cols // QK
    assert len(a) == nb * Q4_K_BYTES and len(b) == nb * Q6_K_BYTES
    return a, b


def build(args, workdir):
    src = os.path.abspath(args.ggml_src)
    lib = os.path.abspath(args.ggml_lib)
    for p in [os.path.join(src, "include", "ggml.h"), os.path.join(src, "src", "ggml-quants.c"), lib]:
        if not os.path.exists(p):
            sys.exit(f"missing {p}")
    driver = os.path.join(workdir, "driver.c")
    with open(driver, "w") as f:
        f.write(DRIVER)
    exe = os.path.join(workdir, "driver")
    incs = ["-I", os.path.join(src, "include"), "-I", os.path.join(src, "src")]
    link = [lib, "-Wl,-rpath," + os.path.dirname(lib), "-lm"]
    if args.as_built:
        cmd = [args.cc, "-O2"] + incs + [driver, "-o", exe] + link
    else:
        cmd = [args.cc] + args.cflags.split() + ["-DNDEBUG"] + incs + \
              [os.path.join(src, "src", "ggml-quants.c"), driver, "-o", exe] + link
    subprocess.run(cmd, check=True)
    args.driver_path = exe
    return "as built" if args.as_built else args.cflags


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ggml-src", required=True, help="ggml directory with include/ggml.h and src/ggml-quants.c")
    p.add_argument("--ggml-lib", required=True, help="the shared ggml library built from that tree")
    p.add_argument("--cc", default="cc")
    p.add_argument("--cflags", default="-O2 -std=gnu11 -ffp-contract=off")
    p.add_argument("--as-built", action="store_true", help="use the library's own compiled quantizers")
    p.add_argument("--random", type=int, default=0, help="add this many random 256-value rows")
    p.add_argument("--seed", type=int, default=20260522)
    p.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "../../Tests/BitNetTests/Fixtures/dequant/quant_k.json"))
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    all_cases = cases(rng)
    if args.random:
        scales = 10.0 ** rng.uniform(-4, 3, args.random)
        kinds = rng.integers(0, 3, args.random)
        v = rng.standard_normal((args.random, QK))
        v = np.where(kinds[:, None] == 1, rng.standard_t(3, (args.random, QK)), v)
        v = np.where(kinds[:, None] == 2, rng.random((args.random, QK)) * 2 - 1, v)
        all_cases.append((f"{args.random} random rows", args.random, QK, (v * scales[:, None]).reshape(-1)))
    with tempfile.TemporaryDirectory() as workdir:
        compile_line = build(args, workdir)
        out = []
        for name, rows, cols, x in all_cases:
            q4, q6 = run(args, workdir, x, rows, cols)
            out.append({"name": name, "rows": rows, "cols": cols,
                        "f32": base64.b64encode(x.astype("<f4").tobytes()).decode(),
                        "q4_K": base64.b64encode(q4).decode(), "q6_K": base64.b64encode(q6).decode()})
    commit = subprocess.run(["git", "-C", args.ggml_src, "rev-parse", "HEAD"], capture_output=True, text=True)
    source = "ggml-quants.c " + ("as built in " + os.path.basename(args.ggml_lib) if args.as_built else "compiled here")
    if commit.returncode == 0:
        source += ", llama.cpp commit " + commit.stdout.strip()
    with open(args.output, "w") as f:
        json.dump({"source": source, "compile": compile_line, "numpy_version": version("numpy"), "cases": out},
                  f, indent=1)
        f.write("\n")
    blocks = sum(c["rows"] * c["cols"] // QK for c in out)
    print(f"{args.output}: {len(out)} cases, {blocks} blocks")


if __name__ == "__main__":
    main()
