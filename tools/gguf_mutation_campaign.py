#!/usr/bin/env python3
"""GGUF mutation campaign (issue 13): corrupt the shipped model N ways, run the CLI on each.

    swift build -c release --product bitnet --scratch-path .build-hostile
    tools/gguf_mutation_campaign.py -n 4360 --seed 13
    tools/gguf_mutation_campaign.py --only 1234 --keep   # rebuild and rerun one variant

The generator parses the GGUF header (counts, every metadata key/type/value, every tensor
record) so mutations hit real fields: header counts and version, key lengths, value type
ids, string lengths, array element types and counts, integer/float values (edges of every
width, including token ids outside Int32), tensor n_dims, dims, ggml types and offsets;
structural edits that re-serialise the file (duplicate, dropped, renamed or retyped keys,
duplicate or dropped tensor records, alignment changes, overlapping/misaligned/past-the-end
offsets); truncations at field boundaries and anywhere; random bit flips and byte runs.
Variant i is a pure function of (seed, i), so any one can be rebuilt with --only.

Each variant goes through `bitnet inspect FILE` and
`bitnet generate -m FILE -p KING -n 4 --seed 1`, each under a timeout. Outcomes per run:
  clean    non-zero exit, stderr names the file
  unnamed  non-zero exit, stderr does not name the file (reported, not a failure)
  success  exit 0 (inspect: counted apart when it reports the model 'not runnable')
  signal   killed by a signal (negative status, or 128+n from a wrapper)
  hang     still running at the timeout (killed)
Exit status 1 if any run ended in a signal or hang; each such variant is kept with its
stdout/stderr and a description under the output directory (default build/gguf-campaign).
Standard library only.
"""
import argparse
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf")
DEFAULT_CLI = os.path.join(ROOT, ".build-hostile/release/bitnet")

# GGUF metadata value types: id -> struct format (None: string / array)
FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


# ---------------------------------------------------------------------------------------------
# Parsing: a structural model plus the byte positions of every field.

class KV:
    def __init__(self, key, vtype, raw, off, key_off, type_off, value_off):
        self.key, self.vtype, self.raw = key, vtype, raw  # raw: the value's encoded bytes
        self.off, self.key_off, self.type_off, self.value_off = off, key_off, type_off, value_off


class TensorRec:
    def __init__(self, name, dims, gtype, offset, off, ndims_off, dims_off, type_off, offset_off):
        self.name, self.dims, self.gtype, self.offset = name, list(dims), gtype, offset
        self.off, self.ndims_off, self.dims_off = off, ndims_off, dims_off
        self.type_off, self.offset_off = type_off, offset_off


class GGUF:
    def __init__(self, data):
        self.data = data
        magic, self.version, self.n_tensors, self.n_kv = struct.unpack_from("<4sIQQ", data, 0)
        if magic != b"GGUF":
            raise ValueError("not a GGUF file")
        o = 24
        self.kvs = []
        for _ in range(self.n_kv):
            start = o
            klen, = struct.unpack_from("<Q", data, o)
            key = data[o + 8:o + 8 + klen]
            o += 8 + klen
            vtype, = struct.unpack_from("<I", data, o)
            type_off = o
            o += 4
            vstart = o
            o = self._skip_value(vtype, o)
            self.kvs.append(KV(key, vtype, data[vstart:o], start, start, type_off, vstart))
        self.tensors = []
        for _ in range(self.n_tensors):
            start = o
            nlen, = struct.unpack_from("<Q", data, o)
            name = data[o + 8:o + 8 + nlen]
            o += 8 + nlen
            nd, = struct.unpack_from("<I", data, o)
            ndims_off = o
            o += 4
            dims = struct.unpack_from("<%dQ" % nd, data, o)
            dims_off = o
            o += 8 * nd
            gtype, offset = struct.unpack_from("<IQ", data, o)
            self.tensors.append(TensorRec(name, dims, gtype, offset, start, ndims_off, dims_off, o, o + 4))
            o += 12
        self.info_end = o
        self.alignment = 32
        for kv in self.kvs:
            if kv.key == b"general.alignment" and kv.vtype == 4:
                self.alignment, = struct.unpack("<I", kv.raw)
        self.data_start = (o + self.alignment - 1) // self.alignment * self.alignment
        self.tensor_data = data[self.data_start:]

    def _skip_value(self, vtype, o):
        if vtype in FIXED:
            return o + struct.calcsize("<" + FIXED[vtype])
        if vtype == STRING:
            n, = struct.unpack_from("<Q", self.data, o)
            return o + 8 + n
        if vtype == ARRAY:
            et, n = struct.unpack_from("<IQ", self.data, o)
            o += 12
            if et in FIXED:
                return o + n * struct.calcsize("<" + FIXED[et])
            for _ in range(n):
                o = self._skip_value(et, o)
            return o
        raise ValueError("unknown value type %d" % vtype)


def gstr(b):
    return struct.pack("<Q", len(b)) + b


def serialize(kvs, tensors, tensor_data, version=3, n_tensors=None, n_kv=None, alignment=32):
    """kvs: [(key, vtype, raw)], tensors: [(name, dims, gtype, offset)]."""
    out = bytearray(struct.pack("<4sIQQ", b"GGUF", version,
                                len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_kv is None else n_kv))
    for key, vtype, raw in kvs:
        out += gstr(key) + struct.pack("<I", vtype) + raw
    for name, dims, gtype, offset in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gtype, offset)
    a = alignment if alignment > 0 else 1
    out += b"\0" * ((-len(out)) % a)
    return bytes(out) + tensor_data


# ---------------------------------------------------------------------------------------------
# Mutations. Each takes (g, rng) and returns (bytes, description).

U32_EDGES = [0, 1, 2, 3, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
U64_EDGES = [0, 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40, 2**48, 2**62, 2**63 - 1, 2**63, 2**64 - 1]
F32_EDGES = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, 1e-45, 1e38, 3.4028235e38, -3.4e38]


def patch(data, off, fmt, value):
    b = bytearray(data)
    struct.pack_into("<" + fmt, b, off, value)
    return bytes(b)


def m_header_counts(g, rng):
    which = rng.choice(["n_tensors", "n_kv", "version"])
    if which == "version":
        v = rng.choice([0, 1, 2, 4, 0xFFFF, 0xFFFFFFFF, 0x03000000])
        return patch(g.data, 4, "I", v), "header version = %d" % v
    orig = g.n_tensors if which == "n_tensors" else g.n_kv
    v = rng.choice(U64_EDGES + [orig - 1, orig + 1, orig * 2, orig + 1000])
    off = 8 if which == "n_tensors" else 16
    return patch(g.data, off, "Q", v % 2**64), "header %s %d -> %d" % (which, orig, v)


def m_key_length(g, rng):
    kv = rng.choice(g.kvs)
    v = rng.choice(U64_EDGES + [len(kv.key) + 1, len(kv.key) - 1, len(g.data), len(g.data) - kv.key_off])
    return patch(g.data, kv.key_off, "Q", v % 2**64), "key %s: length %d -> %d" % (kv.key.decode(), len(kv.key), v)


def m_value_type(g, rng):
    kv = rng.choice(g.kvs)
    v = rng.choice(list(range(0, 16)) + [0xFF, 0x100, 0x7FFFFFFF, 0xFFFFFFFF])
    return patch(g.data, kv.type_off, "I", v), "key %s: type id %d -> %d" % (kv.key.decode(), kv.vtype, v)


def m_value_bytes(g, rng):
    """An in-place new value of the same type: integer edges, float specials, string lengths."""
    kv = rng.choice(g.kvs)
    name = kv.key.decode()
    if kv.vtype in (4, 5):
        v = rng.choice(U32_EDGES)
        return patch(g.data, kv.value_off, "I", v), "key %s: u32 value -> %d" % (name, v)
    if kv.vtype == 6:
        v = rng.choice(F32_EDGES)
        return patch(g.data, kv.value_off, "f", v), "key %s: f32 value -> %r" % (name, v)
    if kv.vtype == 7:
        v = rng.choice([2, 0xFF])
        return patch(g.data, kv.value_off, "B", v), "key %s: bool byte -> %d" % (name, v)
    if kv.vtype == STRING:
        n = len(kv.raw) - 8
        v = rng.choice(U64_EDGES + [n + 1, n - 1 if n else 0, len(g.data)])
        return patch(g.data, kv.value_off, "Q", v % 2**64), "key %s: string length %d -> %d" % (name, n, v)
    if kv.vtype == ARRAY:
        et, n = struct.unpack_from("<IQ", kv.raw, 0)
        if rng.random() < 0.5:
            v = rng.choice(U64_EDGES + [n + 1, n - 1, n * 2, 0])
            return patch(g.data, kv.value_off + 4, "Q", v % 2**64), "key %s: array count %d -> %d" % (name, n, v)
        v = rng.choice(list(range(0, 14)) + [0xFFFFFFFF])
        return patch(g.data, kv.value_off, "I", v), "key %s: array element type %d -> %d" % (name, et, v)
    return m_bitflip(g, rng)


def m_array_element(g, rng):
    """One element inside an array: a token id type, a string length inside tokens/merges."""
    arrays = [kv for kv in g.kvs if kv.vtype == ARRAY]
    kv = rng.choice(arrays)
    et, n = struct.unpack_from("<IQ", kv.raw, 0)
    base = kv.value_off + 12
    i = rng.randrange(n)
    if et in FIXED:
        size = struct.calcsize("<" + FIXED[et])
        off = base + i * size
        v = rng.choice(U32_EDGES) % (2 ** (8 * size))
        return patch(g.data, off, {1: "B", 2: "H", 4: "I", 8: "Q"}[size], v), \
            "key %s[%d]: -> %d" % (kv.key.decode(), i, v)
    # strings: walk to element i
    o = base
    for _ in range(i):
        ln, = struct.unpack_from("<Q", g.data, o)
        o += 8 + ln
    ln, = struct.unpack_from("<Q", g.data, o)
    choice = rng.random()
    if choice < 0.5:
        v = rng.choice(U64_EDGES + [ln + 1, max(ln - 1, 0), 0])
        return patch(g.data, o, "Q", v % 2**64), "key %s[%d]: string length %d -> %d" % (kv.key.decode(), i, ln, v)
    # invalid UTF-8 / NUL / separators inside the string
    b = bytearray(g.data)
    if ln:
        b[o + 8 + rng.randrange(ln)] = rng.choice([0x00, 0x20, 0x80, 0xC0, 0xFF, 0xED])
    return bytes(b), "key %s[%d]: one byte of the string replaced" % (kv.key.decode(), i)


def m_tensor_field(g, rng):
    t = rng.choice(g.tensors)
    name = t.name.decode()
    f = rng.choice(["ndims", "dim", "type", "offset", "offset", "namelen"])
    if f == "ndims":
        v = rng.choice([0, 1, 2, 3, 4, 5, 8, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF])
        return patch(g.data, t.ndims_off, "I", v), "tensor %s: n_dims %d -> %d" % (name, len(t.dims), v)
    if f == "dim":
        i = rng.randrange(len(t.dims))
        v = rng.choice(U64_EDGES + [t.dims[i] + 1, t.dims[i] - 1, t.dims[i] * 2, t.dims[i] // 2, 3, 31])
        return patch(g.data, t.dims_off + 8 * i, "Q", v % 2**64), "tensor %s: dim[%d] %d -> %d" % (name, i, t.dims[i], v)
    if f == "type":
        v = rng.choice(list(range(0, 42)) + [0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])
        return patch(g.data, t.type_off, "I", v), "tensor %s: ggml type %d -> %d" % (name, t.gtype, v)
    if f == "offset":
        size = len(g.tensor_data)
        v = rng.choice(U64_EDGES + [t.offset + 1, t.offset + 32, t.offset - 32 if t.offset >= 32 else 1,
                                    size, size - 32, size + 32, rng.randrange(size) // 32 * 32])
        return patch(g.data, t.offset_off, "Q", v % 2**64), "tensor %s: offset %d -> %d" % (name, t.offset, v)
    v = rng.choice(U64_EDGES + [len(t.name) + 1, len(t.name) - 1])
    return patch(g.data, t.off, "Q", v % 2**64), "tensor %s: name length %d -> %d" % (name, len(t.name), v)


def _kv_list(g):
    return [(kv.key, kv.vtype, kv.raw) for kv in g.kvs]


def _tensor_list(g):
    return [(t.name, list(t.dims), t.gtype, t.offset) for t in g.tensors]


def encode_value(rng):
    """A random well-formed value of a random type, favouring edges."""
    t = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 4, 10, 11])
    if t in (4, 5, 10, 11, 0, 1, 2, 3):
        fmt = FIXED[t]
        bits = struct.calcsize("<" + fmt) * 8
        signed = fmt.islower()
        edges = [0, 1, 2**(bits - 1) - 1, (2**bits) - 1, 2**(bits - 1)]
        v = rng.choice(edges)
        if signed and v >= 2**(bits - 1):
            v -= 2**bits
        return t, struct.pack("<" + fmt, v), "%s %d" % (fmt, v)
    if t == 6:
        v = rng.choice(F32_EDGES)
        return t, struct.pack("<f", v), "f32 %r" % v
    if t == 12:
        v = rng.choice([float("nan"), 1e300, -1e300, 0.0, 2.0**64])
        return t, struct.pack("<d", v), "f64 %r" % v
    if t == 7:
        return t, bytes([rng.choice([0, 1, 2])]), "bool"
    if t == STRING:
        s = rng.choice([b"", b"gpt2", b"llama", b"\xff\xfe", b"bitnet-b1.58", b"x" * 300])
        return t, gstr(s), "string %r" % s[:20]
    et = rng.choice([4, 5, 8, 6])
    n = rng.choice([0, 1, 3])
    if et == STRING:
        raw = b"".join(gstr(b"a") for _ in range(n))
    else:
        raw = b"".join(struct.pack("<" + FIXED[et], 1) for _ in range(n))
    return t, struct.pack("<IQ", et, n) + raw, "array of %d type %d" % (n, et)


TOKEN_ID_KEYS = [b"tokenizer.ggml.eos_token_id", b"tokenizer.ggml.bos_token_id",
                 b"tokenizer.ggml.padding_token_id", b"tokenizer.ggml.unknown_token_id",
                 b"tokenizer.ggml.eot_token_id"]


def m_structural(g, rng):
    kvs, tensors = _kv_list(g), _tensor_list(g)
    kind = rng.choice(["dup_kv", "dup_kv_other_value", "drop_kv", "rename_kv", "retype_kv", "token_id",
                       "dup_tensor", "drop_tensor", "rename_tensor", "tensor_dims", "tensor_type",
                       "tensor_overlap", "alignment", "shuffle_kvs", "arch"])
    alignment = g.alignment
    if kind == "dup_kv":
        i = rng.randrange(len(kvs))
        kvs.insert(rng.randrange(len(kvs) + 1), kvs[i])
        desc = "key %s duplicated" % kvs[i][0].decode()
    elif kind == "dup_kv_other_value":
        i = rng.randrange(len(kvs))
        t, raw, vd = encode_value(rng)
        kvs.insert(rng.randrange(len(kvs) + 1), (kvs[i][0], t, raw))
        desc = "key %s duplicated with %s" % (kvs[i][0].decode(), vd)
    elif kind == "drop_kv":
        i = rng.randrange(len(kvs))
        desc = "key %s dropped" % kvs[i][0].decode()
        del kvs[i]
    elif kind == "rename_kv":
        i, j = rng.randrange(len(kvs)), rng.randrange(len(kvs))
        desc = "key %s renamed to %s" % (kvs[i][0].decode(), kvs[j][0].decode())
        kvs[i] = (kvs[j][0], kvs[i][1], kvs[i][2])
    elif kind == "retype_kv":
        i = rng.randrange(len(kvs))
        t, raw, vd = encode_value(rng)
        desc = "key %s value replaced by %s" % (kvs[i][0].decode(), vd)
        kvs[i] = (kvs[i][0], t, raw)
    elif kind == "token_id":
        key = rng.choice(TOKEN_ID_KEYS)
        t, v = rng.choice([(4, 4096), (4, 4095), (4, 0xFFFFFFFF), (4, 0x80000000), (10, 2**40), (10, 2**64 - 1),
                           (11, -2**63), (11, -1), (5, -1), (5, -2**31), (5, 2**31 - 1), (0, 255), (11, 2**32)])
        raw = struct.pack("<" + FIXED[t], v)
        kvs = [kv for kv in kvs if kv[0] != key] + [(key, t, raw)]
        desc = "key %s = %s %d" % (key.decode(), FIXED[t], v)
    elif kind == "dup_tensor":
        i = rng.randrange(len(tensors))
        tensors.insert(rng.randrange(len(tensors) + 1), tensors[i])
        desc = "tensor %s duplicated" % tensors[i][0].decode()
    elif kind == "drop_tensor":
        i = rng.randrange(len(tensors))
        desc = "tensor %s dropped" % tensors[i][0].decode()
        del tensors[i]
    elif kind == "rename_tensor":
        i, j = rng.randrange(len(tensors)), rng.randrange(len(tensors))
        desc = "tensor %s renamed to %s" % (tensors[i][0].decode(), tensors[j][0].decode())
        tensors[i] = (tensors[j][0],) + tensors[i][1:]
    elif kind == "tensor_dims":
        i = rng.randrange(len(tensors))
        name, dims, gt, off = tensors[i]
        new = rng.choice([[], [0], dims[::-1], dims + [1], dims + [2], [d * 2 for d in dims], [d // 2 for d in dims],
                          [1] * 4, [2**32, 2**32], [2**63, 2], [dims[0] + 1] + dims[1:], [dims[0] - 1] + dims[1:]])
        tensors[i] = (name, new, gt, off)
        desc = "tensor %s dims %s -> %s" % (name.decode(), dims, new)
    elif kind == "tensor_type":
        i = rng.randrange(len(tensors))
        name, dims, gt, off = tensors[i]
        v = rng.choice([0, 1, 2, 8, 12, 14, 30, 34, 35, 36, 37, 38, 39, 40, 41, 99])
        tensors[i] = (name, dims, v, off)
        desc = "tensor %s ggml type %d -> %d" % (name.decode(), gt, v)
    elif kind == "tensor_overlap":
        i, j = rng.randrange(len(tensors)), rng.randrange(len(tensors))
        tensors[i] = tensors[i][:3] + (tensors[j][3],)
        desc = "tensor %s offset = tensor %s's" % (tensors[i][0].decode(), tensors[j][0].decode())
    elif kind == "alignment":
        v = rng.choice([0, 1, 3, 7, 16, 64, 4096, 2**31, 0xFFFFFFFF])
        kvs = [kv for kv in kvs if kv[0] != b"general.alignment"] + [(b"general.alignment", 4, struct.pack("<I", v))]
        # re-serialised with the real padding only where it is a sane power of two
        alignment = v if v in (1, 16, 64, 4096) else 32
        desc = "general.alignment = %d" % v
    elif kind == "shuffle_kvs":
        rng.shuffle(kvs)
        rng.shuffle(tensors)
        desc = "keys and tensor records shuffled"
    else:
        arch = rng.choice([b"llama", b"bitnet", b"bitnet-25", b"", b"BITNET-B1.58", b"bitnet-b1.58\x00"])
        kvs = [(k, t, gstr(arch) if k == b"general.architecture" else r) for k, t, r in kvs]
        desc = "general.architecture = %r" % arch
    data = g.tensor_data
    if alignment != g.alignment and kind == "alignment":
        # tensor offsets are relative to the aligned data start; only the padding changes
        pass
    return serialize(kvs, tensors, data, version=g.version, alignment=alignment), "structural: " + desc


def m_truncate(g, rng):
    r = rng.random()
    if r < 0.5:
        # at or around a field boundary of the header / tensor table
        bounds = [4, 8, 16, 24, g.info_end, g.data_start]
        for kv in g.kvs:
            bounds += [kv.key_off, kv.type_off, kv.value_off]
        for t in g.tensors:
            bounds += [t.off, t.ndims_off, t.dims_off, t.type_off, t.offset_off]
        n = max(0, rng.choice(bounds) + rng.choice([-1, 0, 0, 1, 3]))
    elif r < 0.8:
        n = rng.randrange(len(g.data))
    else:
        # inside the tensor data, or just short of the end
        n = rng.choice([len(g.data) - 1, len(g.data) - 32, g.data_start + rng.randrange(len(g.tensor_data))])
    return g.data[:n], "truncated to %d of %d bytes" % (n, len(g.data))


def m_extend(g, rng):
    extra = rng.choice([1, 31, 4096])
    return g.data + bytes(rng.randrange(256) for _ in range(extra)), "%d random bytes appended" % extra


def m_bitflip(g, rng):
    b = bytearray(g.data)
    n = rng.choice([1, 1, 2, 4, 16])
    header = rng.random() < 0.8
    offs = []
    for _ in range(n):
        o = rng.randrange(g.data_start if header else len(b))
        b[o] ^= 1 << rng.randrange(8)
        offs.append(o)
    return bytes(b), "%d bit flip(s) at %s" % (n, offs[:4])


def m_byterun(g, rng):
    b = bytearray(g.data)
    o = rng.randrange(g.data_start)
    n = rng.choice([1, 4, 8, 16, 64])
    fill = rng.choice([0x00, 0xFF, 0x7F, 0x80, None])
    for i in range(o, min(o + n, len(b))):
        b[i] = rng.randrange(256) if fill is None else fill
    return bytes(b), "%d bytes at %d set to %s" % (n, o, "random" if fill is None else hex(fill))


MUTATORS = [  # (weight, function)
    (6, m_header_counts), (6, m_key_length), (8, m_value_type), (14, m_value_bytes), (8, m_array_element),
    (16, m_tensor_field), (20, m_structural), (8, m_truncate), (1, m_extend), (10, m_bitflip), (5, m_byterun),
]


def make_variant(g, seed, index):
    rng = random.Random("%d:%d" % (seed, index))
    total = sum(w for w, _ in MUTATORS)
    # mostly one mutation; sometimes two or three stacked on the same parse
    count = rng.choice([1, 1, 1, 1, 2, 3])
    data, descs = g.data, []
    for k in range(count):
        cur = g if k == 0 else None
        if cur is None:
            try:
                cur = GGUF(data)
            except Exception:
                # no longer parseable: stack a raw mutation instead
                cur = None
        r = rng.uniform(0, total)
        for w, f in MUTATORS:
            r -= w
            if r <= 0:
                break
        if cur is None:
            f = rng.choice([m_bitflip, m_byterun])
            fake = GGUF.__new__(GGUF)
            fake.data, fake.data_start = data, min(len(data), g.data_start) or 1
            cur = fake
        try:
            data, d = f(cur, rng)
        except (IndexError, ValueError, struct.error):
            # a stacked mutation on a file whose earlier mutation left nothing of that kind
            fake = GGUF.__new__(GGUF)
            fake.data, fake.data_start = data, min(len(data), g.data_start) or 1
            data, d = m_bitflip(fake, rng)
        descs.append(d)
    return data, "; ".join(descs)


# ---------------------------------------------------------------------------------------------
# Running

def limit_memory(limit_bytes):
    def apply():
        os.setsid()
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return apply


def run_one(argv, path, timeout, out_dir, tag, mem_limit):
    """Returns (outcome, returncode, seconds, max_rss_kb, stderr_text)."""
    so = open(os.path.join(out_dir, tag + ".stdout"), "wb")
    se = open(os.path.join(out_dir, tag + ".stderr"), "wb")
    env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se, env=env,
                         preexec_fn=limit_memory(mem_limit))
    so.close()
    se.close()
    hung = False
    delay = 0.002
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > timeout:
            hung = True
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    p.returncode = 0  # reaped here, keep Popen from waiting again
    secs = time.monotonic() - t0
    err = open(os.path.join(out_dir, tag + ".stderr"), "rb").read().decode("utf-8", "replace")
    if hung:
        return "hang", None, secs, ru.ru_maxrss, err
    if os.WIFSIGNALED(status):
        return "signal", -os.WTERMSIG(status), secs, ru.ru_maxrss, err
    rc = os.WEXITSTATUS(status)
    if rc == 0:
        out = open(os.path.join(out_dir, tag + ".stdout"), "rb").read()
        # inspect describes a file it can read but the engine would refuse, and exits 0
        return ("flagged" if b"not runnable" in out else "success"), 0, secs, ru.ru_maxrss, err
    if rc >= 128:
        return "signal", rc, secs, ru.ru_maxrss, err
    return ("clean" if os.path.basename(path) in err else "unnamed"), rc, secs, ru.ru_maxrss, err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=4360, help="variants (default 4360)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--start", type=int, default=0, help="first variant index")
    ap.add_argument("--only", type=int, help="one variant index (implies --keep)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--cli", default=DEFAULT_CLI)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per run (default 5)")
    ap.add_argument("--mem-limit-mb", type=int, default=8192,
                    help="address-space limit per run (0: none); an allocation past it crashes the run")
    ap.add_argument("--out", default=os.path.join(ROOT, "build/gguf-campaign"))
    ap.add_argument("--keep", action="store_true", help="keep every variant, not only failing ones")
    ap.add_argument("--generate-only", action="store_true", help="write the variants, run nothing")
    args = ap.parse_args()

    g = GGUF(open(args.model, "rb").read())
    cli = os.path.abspath(args.cli)
    if not args.generate_only and not os.access(cli, os.X_OK):
        sys.exit("no CLI at %s: swift build -c release --product bitnet --scratch-path .build-hostile" % cli)
    os.makedirs(args.out, exist_ok=True)
    fail_dir = os.path.join(args.out, "failures")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = tempfile.mkdtemp(prefix="gguf-campaign-", dir=shm)
    indices = [args.only] if args.only is not None else range(args.start, args.start + args.n)
    keep = args.keep or args.only is not None
    mem = args.mem_limit_mb * 1024 * 1024
    commands = [
        ("inspect", lambda f: [cli, "inspect", f]),
        ("generate", lambda f: [cli, "generate", "-m", f, "-p", "KING", "-n", "4", "--seed", "1"]),
    ]
    counts = {c: {k: 0 for k in ("clean", "unnamed", "success", "flagged", "signal", "hang")} for c, _ in commands}
    variant_counts = {"all_refused": 0, "all_success": 0, "mixed": 0, "failing": 0}
    failures, unnamed_examples, identical = [], [], 0
    max_rss = (0, None)
    t_start = time.monotonic()
    log = open(os.path.join(args.out, "campaign.log"), "w")
    done = []
    interrupted = False
    try:
        for n_done, i in enumerate(indices, 1):
            data, desc = make_variant(g, args.seed, i)
            if data == g.data:
                identical += 1
            name = "variant-%05d.gguf" % i
            path = os.path.join(work, name)
            with open(path, "wb") as f:
                f.write(data)
            if args.generate_only:
                log.write("%d\t%s\n" % (i, desc))
                continue
            outcomes = []
            for cname, make in commands:
                outcome, rc, secs, rss, err = run_one(make(path), path, args.timeout, work, "%s.%s" % (name, cname), mem)
                counts[cname][outcome] += 1
                outcomes.append(outcome)
                if rss > max_rss[0]:
                    max_rss = (rss, "%d %s" % (i, cname))
                first = (err.strip().splitlines() or [""])[-1][:160]
                log.write("%d\t%s\t%s\trc=%s\t%.2fs\t%d KB\t%s\t%s\n" % (i, cname, outcome, rc, secs, rss, desc, first))
                if outcome == "unnamed" and len(unnamed_examples) < 10:
                    unnamed_examples.append("%d %s: %s (%s)" % (i, cname, first, desc))
            bad = [o for o in outcomes if o in ("signal", "hang")]
            if bad:
                variant_counts["failing"] += 1
            elif all(o in ("success", "flagged") for o in outcomes):
                variant_counts["all_success"] += 1
            elif all(o in ("clean", "unnamed") for o in outcomes):
                variant_counts["all_refused"] += 1
            else:
                variant_counts["mixed"] += 1
            if bad or keep:
                dest = os.path.join(fail_dir if bad else args.out, "variant-%05d" % i)
                os.makedirs(dest, exist_ok=True)
                shutil.copy(path, os.path.join(dest, name))
                for cname, _ in commands:
                    for ext in ("stdout", "stderr"):
                        src = os.path.join(work, "%s.%s.%s" % (name, cname, ext))
                        shutil.copy(src, os.path.join(dest, "%s.%s" % (cname, ext)))
                with open(os.path.join(dest, "README"), "w") as f:
                    f.write("seed %d variant %d: %s\noutcomes: %s\nrerun: tools/gguf_mutation_campaign.py --seed %d --only %d\n"
                            % (args.seed, i, desc, dict(zip([c for c, _ in commands], outcomes)), args.seed, i))
                if bad:
                    failures.append("variant %d: %s -- %s" % (i, dict(zip([c for c, _ in commands], outcomes)), desc))
            for fn in os.listdir(work):
                os.unlink(os.path.join(work, fn))
            done.append(i)
            if n_done % 200 == 0:
                print("  %d variants, %.0fs, failing %d" % (n_done, time.monotonic() - t_start, variant_counts["failing"]),
                      flush=True)
    except KeyboardInterrupt:
        # SIGINT: stop after the variant in progress and summarise what ran
        interrupted = True
    finally:
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    if not args.generate_only:
        indices = done or [args.start]
    n = len(done) if not args.generate_only else len(indices)
    print("GGUF mutation campaign: %d variants (seed %d, indices %d..%d) of %s, %.0f s%s"
          % (n, args.seed, indices[0], indices[-1], os.path.relpath(args.model, ROOT), elapsed,
             " (interrupted)" if interrupted else ""))
    if args.generate_only:
        return 0
    print("identical to the original (mutation was a no-op): %d" % identical)
    for cname, _ in commands:
        c = counts[cname]
        print("  %-9s clean error %5d  error not naming the file %4d  success %5d (of which 'not runnable' %d)"
              "  signal %3d  hang %3d" % (cname, c["clean"], c["unnamed"], c["success"] + c["flagged"], c["flagged"],
                                          c["signal"], c["hang"]))
    print("  variants: refused by both %d, accepted by both %d, mixed %d, signal/hang %d"
          % (variant_counts["all_refused"], variant_counts["all_success"], variant_counts["mixed"], variant_counts["failing"]))
    print("  peak RSS of one run: %.0f MB (variant %s); per-run address-space limit %s"
          % (max_rss[0] / 1024, max_rss[1], "%d MB" % args.mem_limit_mb if args.mem_limit_mb else "none"))
    if unnamed_examples:
        print("  errors whose message does not name the file (first %d):" % len(unnamed_examples))
        for e in unnamed_examples:
            print("    " + e)
    print("  log: %s" % os.path.relpath(os.path.join(args.out, "campaign.log"), ROOT))
    if failures:
        print("FAILED: %d variant(s) ended in a signal or hang (kept in %s):" % (len(failures), os.path.relpath(fail_dir, ROOT)))
        for f in failures[:50]:
            print("  " + f)
        return 1
    print("ok: 0 signals, 0 hangs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
