#!/usr/bin/env bash
# bitnet.cpp's own TL1 / TL2 files load to the same model as this engine's TL1
# layout: one-layer models of the published shapes (bitnet_b1_58-large and -3B;
# the 3B TL2 shapes have the two-weight tail, K mod BK = 32) are synthesized with
# the same seed in both layouts (the same ternary values and scales), and their
# logits must be identical. A corrupted code byte must be refused with a message
# naming the tensor. Uses the release CLI (debug Swift is too slow for 10^8
# weights). The byte layouts themselves are checked against bitnet.cpp's
# converter by BitNetCppTLTests (tools/tlcompat/make_bitnetcpp_tl_fixture.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/bitnet}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $*"; fi; }

same_logits() { # model reference
    local a b
    a=$("$bin" logits -m "$1" --tokens 1,7,100,3,42 --top 8 --all-positions --json -t 2)
    b=$("$bin" logits -m "$2" --tokens 1,7,100,3,42 --top 8 --all-positions --json -t 2)
    [ "$a" = "$b" ] && echo "  $(basename "$1"): logits identical to $(basename "$2")"
}

for shape in "large 1536 16 4096" "3b 3200 32 8640"; do
    set -- $shape
    for type in tl1 bitnetcpp-tl1 bitnetcpp-tl2; do
        "$bin" synth --arch bitnet-b1.58 --hidden "$2" --heads "$3" --ffn "$4" --layers 1 --vocab-size 512 \
            --seed 11 --type "$type" -o "$dir/$1-$type.gguf" >/dev/null 2>&1
    done
    check same_logits "$dir/$1-bitnetcpp-tl1.gguf" "$dir/$1-tl1.gguf"
    check same_logits "$dir/$1-bitnetcpp-tl2.gguf" "$dir/$1-tl1.gguf"
done

# a TL1 code nibble above 8 (0xFF) in the first projection's data
corrupt() {
    local file=$dir/corrupt.gguf offset out
    cp "$dir/large-bitnetcpp-tl1.gguf" "$file"
    offset=$(python3 - "$file" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
# GGUF v3: walk the header to blk.0.attn_q.weight's data offset
pos = 24
n_tensors, n_kv = struct.unpack_from("<QQ", d, 8)
def string(p):
    n, = struct.unpack_from("<Q", d, p); return d[p + 8:p + 8 + n].decode(), p + 8 + n
def skip(t, p):
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t == 8: return string(p)[1]
    if t == 9:
        et, n = struct.unpack_from("<IQ", d, p); p += 12
        for _ in range(n): p = skip(et, p)
        return p
    return p + sizes[t]
align = 32
for _ in range(n_kv):
    key, pos = string(pos)
    t, = struct.unpack_from("<I", d, pos); pos += 4
    if key == "general.alignment": align, = struct.unpack_from("<I", d, pos)
    pos = skip(t, pos)
offsets = {}
for _ in range(n_tensors):
    name, pos = string(pos)
    nd, = struct.unpack_from("<I", d, pos); pos += 4 + 8 * nd
    _, off = struct.unpack_from("<IQ", d, pos); pos += 12
    offsets[name] = off
start = (pos + align - 1) // align * align
print(start + offsets["blk.0.attn_q.weight"] + 1000)
PY
)
    printf '\xff' | dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
    if out=$("$bin" logits -m "$file" --tokens 1,2 2>&1); then return 1; fi
    echo "$out" | grep -q "blk.0.attn_q.weight" && echo "$out" | grep -q "0xff" &&
        echo "  corrupted TL1 byte refused: $(echo "$out" | tail -1 | cut -c1-160)"
}
check corrupt
echo "bitnet.cpp TL files: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
