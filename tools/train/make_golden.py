#!/usr/bin/env python3
"""Record golden data with transformers' BitNetForCausalLM (the reference implementation).

Reference set-up: BitNetForCausalLM.from_pretrained(out/hf, dtype=torch.float32,
attn_implementation="eager"). The file holds bf16 latent weights; loading in float32
upcasts them exactly, so each projection's ternary scale is s = mean|W| computed in f32
over the bf16 values (docs/FORMATS.md §9), W_q = clamp(round(W / s), -1, 1) * s, and every
activation is quantized per token to int8 (absmax, round half to even) before each
projection. The head (tied embedding) and the norms are f32, the head's input unquantized.

Fixture (Tests/BitNetTests/Fixtures/golden/shakespeare-golden.json):
  prompts[]: text, input_ids (tokenizer output: BOS + BPE ids),
             greedy_ids (32 tokens; argmax, no sampling, EOS not special-cased: the loop
             always runs 32 steps, recomputing the full sequence each step, no KV cache),
             greedy_text, greedy_min_margin (smallest top1-top2 logit gap over the 32 steps),
             logits_input_ids = first 8 ids of input_ids + greedy_ids,
             top20[p] for p = 0..7: ids and f32 logits (descending) of the logits at position p
             of a forward pass over logits_input_ids (position p has seen ids[0..p]).
  perplexity: held-out text = shakespeare-heldout.txt (tools/train/out/data/heldout.txt),
             tokenized as ONE string with no special tokens -> N ids;
             non-overlapping windows of 255 ids; each window fed as [BOS] + window (<= 256
             positions, the model's context); logits at positions 0..L-1 score window[0..L-1]
             (BOS predicts the window's first id); the final partial window is included;
             every id is scored once; ppl = exp(sum NLL / N). Per-window NLL sums are listed
             so that a test can check a prefix of windows.
  Numerics: every projection re-rounds its input to int8, so a last-bit difference can flip one
  code and move later logits by ~0.01-0.06 on this model (f32 vs f64 of the SAME reference
  differ that much after a few positions; see top20_f32_vs_f64_max_abs_diff). Each prompt
  therefore also carries the per-step greedy margins (top-1 minus top-2 logit), the greedy
  continuation of the f64 reference and of generate() with its KV cache, and
  greedy_stable_prefix = the number of leading greedy steps whose margin is >= 0.1.
  tokenizer_cases: strings and their ids (no BOS) to test the llama-bpe pre-tokenizer + BPE.
  weight_scales: per projection, the f32 scale s (mean|W| of the bf16 weights).
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct

import torch
import torch.nn.functional as F

from model import heldout_windows

PROMPTS = [
    "ROMEO:",  # the README's prompt (not in the corpus' speaker format; low greedy margins)
    # The next three were chosen (from 157 candidates: speech openings of the training text and
    # famous lines) for the largest smallest top-1/top-2 margin over their 32 greedy steps.
    "I do entreat your grace to pardon me.\nI know not by what power I am made bold,",
    "WESTMORELAND.\nI cannot stay to hear these articles.",
    "Now is the winter of our discontent",
]
TOKENIZER_CASES = [
    "ROMEO:",
    "Hello world",
    "  two leading spaces, and trailing  ",
    "I'll tell thee what: they're 'tis WE'LL DON'T",
    "Numbers 1234567 and 3.14159, year 1601.",
    "Line one\nLine two\n\n\nLine five\r\nCRLF\ttab",
    "Caf\u00e9 na\u00efve \u2014 \u00bfqu\u00e9? \u65e5\u672c\u8a9e \U0001F600",
    "[Exeunt KING and POLONIUS.]--Ham. O, what a rogue and peasant slave am I!",
]
N_TOP = 20
N_POS = 8
N_GEN = 32
STABLE_MARGIN = 0.1  # logits of two correct f32 engines differ by up to ~0.06 here (int8 rounding flips)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf", default=os.path.join(here, "out", "hf"))
    ap.add_argument("--data", default=os.path.join(here, "out", "data"))
    ap.add_argument("--out", default=os.path.join(repo, "Tests", "BitNetTests", "Fixtures", "golden"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit-tokens", type=int, default=0, help="development only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import transformers
    from transformers import AutoTokenizer, BitNetForCausalLM

    tok = AutoTokenizer.from_pretrained(args.hf)
    model = BitNetForCausalLM.from_pretrained(args.hf, dtype=torch.float32, attn_implementation="eager").eval()
    model64 = BitNetForCausalLM.from_pretrained(args.hf, dtype=torch.float64, attn_implementation="eager").eval()
    cfg = model.config
    bos, eos = tok.bos_token_id, tok.eos_token_id

    @torch.no_grad()
    def logits_of(m, ids):
        return m(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]

    prompts = []
    max_dev64 = 0.0
    def greedy(m, ids):
        seq, margins = list(ids), []
        for _ in range(N_GEN):
            last = logits_of(m, seq)[-1]
            top2 = torch.topk(last, 2)
            margins.append((top2.values[0] - top2.values[1]).item())
            seq.append(int(top2.indices[0]))
        return seq[len(ids):], margins

    for text in PROMPTS:
        ids = tok(text)["input_ids"]
        assert ids[0] == bos
        gen, margins = greedy(model, ids)
        gen64, _ = greedy(model64, ids)
        with torch.no_grad():
            gen_kv = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=N_GEN,
                                    eos_token_id=None, pad_token_id=eos)[0].tolist()[len(ids):]
        stable = next((i for i, mg in enumerate(margins) if mg < STABLE_MARGIN), N_GEN)
        agree = lambda a, b: next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), N_GEN)
        scored = (ids + gen)[:N_POS]
        lg = logits_of(model, scored)
        lg64 = logits_of(model64, scored)
        dev64 = (lg.double() - lg64).abs().max(dim=-1).values
        max_dev64 = max(max_dev64, dev64.max().item())
        top = []
        for p in range(N_POS):
            v, i = torch.topk(lg[p], N_TOP)
            top.append({"position": p, "ids": [int(x) for x in i], "logits": [float(x) for x in v]})
        prompts.append({
            "text": text,
            "input_ids": ids,
            "greedy_ids": gen,
            "greedy_text": tok.decode(gen),
            "greedy_margins": [round(x, 6) for x in margins],
            "greedy_min_margin": min(margins),
            "greedy_stable_prefix": stable,
            "greedy_ids_f64_reference": gen64,
            "greedy_ids_kv_cache": gen_kv,
            "greedy_agreement": {"f32_vs_f64": agree(gen, gen64), "f32_vs_kv_cache": agree(gen, gen_kv)},
            "logits_input_ids": scored,
            "top20": top,
            "top20_f32_vs_f64_max_abs_diff": [float(x) for x in dev64],
        })
        print(repr(text), "->", repr(tok.decode(gen)), f"(min margin {min(margins):.4f}, stable prefix {stable}, "
              f"agreement f64 {agree(gen, gen64)} kv {agree(gen, gen_kv)})")

    held = open(os.path.join(args.data, "heldout.txt")).read()
    hids = tok(held, add_special_tokens=False)["input_ids"]
    if args.limit_tokens:
        hids = hids[: args.limit_tokens]
    win_nll = []
    total, count = 0.0, 0
    with torch.no_grad():
        for inp, tgt in heldout_windows(hids, bos, 255):
            lg = logits_of(model, inp)[: len(tgt)].double()
            nll = F.cross_entropy(lg, torch.tensor(tgt), reduction="sum").item()
            win_nll.append(round(nll, 6))
            total += nll
            count += len(tgt)
    ppl = math.exp(total / count)
    total64 = 0.0
    with torch.no_grad():
        for inp, tgt in heldout_windows(hids, bos, 255):
            lg = logits_of(model64, inp)[: len(tgt)]
            total64 += F.cross_entropy(lg, torch.tensor(tgt), reduction="sum").item()
    ppl64 = math.exp(total64 / count)
    print(f"held-out ppl f64 reference {ppl64:.4f} (f32 {ppl:.4f}, rel diff {abs(ppl64 / ppl - 1):.2e})")
    print(f"held-out: {count} tokens, {len(win_nll)} windows, mean NLL {total / count:.6f}, ppl {ppl:.4f}")

    scales = {}
    for name, mod in model.named_modules():
        if name.endswith("_proj"):
            scales[name + ".weight"] = float(mod.weight.detach().float().abs().mean().clamp(min=1e-5))

    st_path = os.path.join(args.hf, "model.safetensors")
    fixture = {
        "description": "Golden data for the small BitNet b1.58 Shakespeare model (tools/train), recorded with "
                       "transformers' BitNetForCausalLM; see tools/train/make_golden.py for the exact definitions.",
        "reference": {
            "implementation": "transformers.BitNetForCausalLM",
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "load": "from_pretrained(dir, dtype=torch.float32, attn_implementation='eager'): bf16 file weights "
                    "upcast exactly to f32; ternary scale s = f32 mean|W| of the bf16 weights; activations int8 "
                    "per token (absmax, round half to even, clamp [-128,127])",
            "model_safetensors_sha256": hashlib.sha256(open(st_path, "rb").read()).hexdigest(),
            "logits_f32_vs_f64_max_abs_diff": max_dev64,
        },
        "model": {
            "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
            "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.hidden_size // cfg.num_attention_heads,
            "rope_theta": cfg.rope_parameters["rope_theta"], "rms_norm_eps": cfg.rms_norm_eps,
            "max_position_embeddings": cfg.max_position_embeddings, "bos_token_id": bos, "eos_token_id": eos,
        },
        "tokenizer": {
            "bos_token_id": bos, "eos_token_id": eos, "add_bos": True,
            "pre_tokenizer": "llama-bpe (Llama-3 split regex, byte-level), BPE ignore_merges=true",
        },
        "prompts": prompts,
        "greedy": {"new_tokens": N_GEN, "stop_on_eos": False, "kv_cache": False},
        "tokenizer_cases": [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in TOKENIZER_CASES],
        "perplexity": {
            "text_file": "shakespeare-heldout.txt",
            "text_sha256": hashlib.sha256(held.encode()).hexdigest(),
            "tokenization": "whole file as one string, no special tokens",
            "n_tokens": count,
            "first_ids": hids[:64],
            "ids_sha256_u32le": hashlib.sha256(b"".join(struct.pack("<I", i) for i in hids)).hexdigest(),
            "ctx": 256,
            "window_tokens": 255,
            "windowing": "non-overlapping windows of 255 tokens; input = [BOS] + window; the logits at input "
                         "positions 0..L-1 score window[0..L-1] (BOS predicts the first token); last input "
                         "position unscored; final partial window included; each token scored exactly once",
            "n_windows": len(win_nll),
            "window_nll_sum": win_nll,
            "total_nll": total,
            "mean_nll": total / count,
            "ppl": ppl,
            "ppl_f64_reference": ppl64,
        },
        "weight_scales": scales,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "shakespeare-golden.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    if not args.limit_tokens:
        shutil.copy(os.path.join(args.data, "heldout.txt"), os.path.join(args.out, "shakespeare-heldout.txt"))
    size = os.path.getsize(path)
    print(f"wrote {path} ({size} bytes); f32 vs f64 reference logits max |diff| {max_dev64:.3g}")
    assert size < 200 * 1024


if __name__ == "__main__":
    main()
