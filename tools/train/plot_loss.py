#!/usr/bin/env python3
"""Plot out/train_log.csv (train and held-out loss) to docs/training-loss.png."""
import csv
import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rows = list(csv.DictReader(open(os.path.join(here, "out", "train_log.csv"))))
    res = json.load(open(os.path.join(here, "out", "train_result.json")))
    tr = [(int(r["tokens"]) / 1e6, float(r["train_loss"])) for r in rows if r["train_loss"]]
    he = [(int(r["tokens"]) / 1e6, float(r["heldout_loss"])) for r in rows if r["heldout_loss"]]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(*zip(*tr), label="train (mean over the last log interval)")
    ax.plot(*zip(*he), marker="o", ms=3, label="held-out (first 32 windows, 8,160 tokens)")
    final = res["heldout_loss_bf16_weights"]
    ax.axhline(final, color="gray", ls="--", lw=0.8,
               label=f"final held-out, all {res['heldout_tokens']} tokens: {final:.3f} (ppl {math.exp(final):.1f})")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    c = res["config"]
    ax.set_title(f"BitNet b1.58 QAT, {res['params'] / 1e6:.2f}M params "
                 f"({c['num_hidden_layers']}L, d={c['hidden_size']}, ffn={c['intermediate_size']}), Shakespeare")
    ax.set_ylim(min(v for _, v in tr + he) - 0.2, min(9.0, max(v for _, v in he) + 0.2))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(here, "..", "..", "docs", "training-loss.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out)
    print("wrote", os.path.abspath(out))


if __name__ == "__main__":
    main()
