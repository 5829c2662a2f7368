#!/usr/bin/env python3
"""Writes an English-prose corpus for the tokenizer encode-speed check, from text
every machine here already has (no network): the Python reference-manual topics
shipped with the interpreter (pydoc_data) and the licence texts in
/usr/share/common-licenses. Usage: make_bench_corpus.py OUT.txt"""
import glob
import os
import sys

import pydoc_data.topics

parts = [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)]
for path in sorted(glob.glob("/usr/share/common-licenses/*")):
    if os.path.isfile(path) and not os.path.islink(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            parts.append(f.read())
text = "\n\n".join(parts)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write(text)
print(f"{sys.argv[1]}: {len(text.encode())} bytes")
