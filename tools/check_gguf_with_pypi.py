#!/usr/bin/env python3
"""Print a GGUF file's metadata and tensor tables as read by the PyPI `gguf`
package (llama.cpp's gguf-py), as an independent check of our writer.

    pip install gguf
    python3 tools/check_gguf_with_pypi.py model.gguf

Output, one record per line (tab-separated, stable for tests to grep):
    version <n>
    alignment <n>
    kv <key> <type> <value>          arrays: <elemtype>[<count>] and the first 8 elements
    tensor <name> <type> <shape ne0,ne1,..> <n_bytes> <data offset> <crc32 of n_bytes>

Exit status 0 when the reader accepted the file, 1 when it raised. Upstream
gguf-py does not know bitnet.cpp's I2_S (36) or TL1 (38), and reads 39 as
MXFP4, so files with those tensor types are expected to fail here.
"""
import sys
import zlib

try:
    from gguf import GGUFReader, GGUFValueType
except ImportError:
    print("error: the PyPI 'gguf' package is not installed (pip install gguf)", file=sys.stderr)
    sys.exit(2)


def show(value, limit=8):
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:60] + "...")
    if isinstance(value, list):
        head = ", ".join(show(v) for v in value[:limit])
        return "[" + head + (", ..." if len(value) > limit else "") + "]"
    return repr(value)


def main(path):
    try:
        reader = GGUFReader(path)
    except Exception as e:  # the reader raises plain ValueError/KeyError on bad files
        print(f"error: gguf.GGUFReader rejected {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"version\t{reader.fields['GGUF.version'].contents()}")
    print(f"alignment\t{reader.alignment}")
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        types = field.types
        if types and types[0] == GGUFValueType.ARRAY:
            elem = types[-1].name.lower() if len(types) > 1 else "?"
            try:
                items = field.contents()
                kind = f"{elem}[{len(items)}]"
                print(f"kv\t{name}\t{kind}\t{show(items)}")
            except Exception as e:
                print(f"kv\t{name}\tarray\t<unreadable: {e}>")
        else:
            kind = types[0].name.lower() if types else "?"
            print(f"kv\t{name}\t{kind}\t{show(field.contents())}")
    for t in reader.tensors:
        raw = t.data.tobytes()
        shape = ",".join(str(int(d)) for d in t.shape)
        print(f"tensor\t{t.name}\t{t.tensor_type.name}\t{shape}\t{t.n_bytes}\t{t.data_offset}\t{zlib.crc32(raw[:t.n_bytes]):08x}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
