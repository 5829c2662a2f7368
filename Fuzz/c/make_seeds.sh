#!/usr/bin/env bash
# Seeds of the C targets: Fuzz/c/make_seeds.sh CORPUS_DIR (run by `make fuzz-seeds`
# after the Swift targets wrote theirs). capi starts from the gguf_model seeds;
# kernels from one small input per entry point (byte 0: 0 repack, 1 TL, 2 quantize).
set -euo pipefail
corpus=$1
rm -rf "$corpus/capi" "$corpus/kernels"
mkdir -p "$corpus/capi" "$corpus/kernels"
for f in "$corpus"/gguf_model/bitnet-b1.58-i2_s.gguf "$corpus"/gguf_model/bitnet-b1.58-tl2.gguf "$corpus"/gguf_model/llama-i2_s.gguf; do
    cp "$f" "$corpus/capi/"
done
# repack: m=5, k=70, canonical codes 0,1,2 and the invalid 3
{ printf '\x00\x04\x45\x00'; for i in $(seq 1 16); do printf '\x1b\x6c\xe4\xff'; done; } > "$corpus/kernels/repack"
# TL1 and TL2: m=33, k=100, bytes of every value
{ printf '\x01\x00\x20\x63\x00'; for i in $(seq 0 255); do printf "\\x$(printf %02x $i)"; done; } > "$corpus/kernels/tl1"
{ printf '\x01\x01\x20\x63\x00'; for i in $(seq 255 -1 0); do printf "\\x$(printf %02x $i)"; done; } > "$corpus/kernels/tl2"
# quantize: n=2, k=40, floats including 0, ±1, NaN, ±Inf, a subnormal, 1e30
{ printf '\x02\x01\x27\x00\x00'
  for i in $(seq 1 8); do printf '\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x80\xbf\x00\x00\xc0\x7f\x00\x00\x80\x7f\x00\x00\x80\xff\x01\x00\x00\x00\xca\xf2\x49\x71\x00\x00\x00\x3f\x00\x00\x00\xbf'; done
} > "$corpus/kernels/quantize"
