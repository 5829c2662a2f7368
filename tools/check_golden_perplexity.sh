#!/usr/bin/env bash
# Whole held-out perplexity of the shipped model with the release CLI, against the
# reference's (Tests/BitNetTests/Fixtures/golden/shakespeare-golden.json): within 0.5%.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/bitnet}
golden=Tests/BitNetTests/Fixtures/golden/shakespeare-golden.json
ours=$("$bin" perplexity -f Tests/BitNetTests/Fixtures/golden/shakespeare-heldout.txt --window 256 --json)
python3 - "$golden" "$ours" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))["perplexity"]
ours = json.loads(sys.argv[2])
rel = abs(ours["perplexity"] - ref["ppl"]) / ref["ppl"]
ok = rel <= 0.005 and ours["scored"] == ref["n_tokens"]
print(f"held-out perplexity: ours {ours['perplexity']:.4f} over {ours['scored']} tokens, "
      f"reference {ref['ppl']:.4f} over {ref['n_tokens']}: {rel * 100:.4f}% apart")
print(f"golden perplexity: {1 if ok else 0} passed, {0 if ok else 1} failed")
sys.exit(0 if ok else 1)
PY
