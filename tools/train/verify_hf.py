#!/usr/bin/env python3
"""Prove the export: transformers' BitNetForCausalLM (the reference implementation) loads
out/hf and reaches the same held-out loss as the training script.

Checks:
  1. AutoTokenizer.from_pretrained(out/hf) tokenizes the held-out text to the same ids as the
     `tokenizers` object used in training, and prepends BOS by default.
  2. BitNetForCausalLM.from_pretrained(out/hf, dtype=float32): every projection is an
     AutoBitLinear in online mode, lm_head is tied to embed_tokens.
  3. Held-out loss (windowing of model.heldout_windows) with transformers vs. with this
     project's model.py on the same bf16 weights: must agree within --tol nats/token, and
     both are compared with train_result.json (the training script's numbers).
Also reported: transformers loaded in bf16 (its default for this config), informational only.
"""
import argparse
import json
import math
import os
import sys

import torch

from model import BitNetConfig, BitNetLM, heldout_nll


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf", default=os.path.join(here, "out", "hf"))
    ap.add_argument("--data", default=os.path.join(here, "out", "data"))
    ap.add_argument("--train-result", default=os.path.join(here, "out", "train_result.json"))
    ap.add_argument("--limit-tokens", type=int, default=0, help="development only: score fewer tokens")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-bf16", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, BitNetForCausalLM
    from transformers.integrations.bitnet import AutoBitLinear

    held = open(os.path.join(args.data, "heldout.txt")).read()
    hf_tok = AutoTokenizer.from_pretrained(args.hf)
    raw_tok = Tokenizer.from_file(os.path.join(args.hf, "tokenizer.json"))
    ids = hf_tok(held, add_special_tokens=False)["input_ids"]
    ids_raw = raw_tok.encode(held, add_special_tokens=False).ids
    assert ids == ids_raw, "AutoTokenizer and tokenizers disagree"
    bos = hf_tok.bos_token_id
    with_bos = hf_tok("ROMEO:")["input_ids"]
    assert with_bos[0] == bos and with_bos[1:] == hf_tok("ROMEO:", add_special_tokens=False)["input_ids"]
    print(f"tokenizer ok: {len(ids)} held-out tokens, bos={bos} eos={hf_tok.eos_token_id}, BOS prepended by default")
    if args.limit_tokens:
        ids = ids[: args.limit_tokens]

    model = BitNetForCausalLM.from_pretrained(args.hf, dtype=torch.float32).eval()
    cfg = model.config
    n_auto = 0
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name != "lm_head":
            assert isinstance(mod, AutoBitLinear) and mod.online_quant, f"{name} is not an online AutoBitLinear"
            n_auto += 1
    assert n_auto == 7 * cfg.num_hidden_layers
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    assert model.model.embed_tokens.weight.dtype == torch.float32
    print(f"transformers {transformers.__version__}: {n_auto} AutoBitLinear(online) projections, tied head, f32")

    def hf_logits(m):
        return lambda x: m(input_ids=x).logits

    tot_hf, cnt = heldout_nll(hf_logits(model), ids, bos)
    loss_hf = tot_hf / cnt

    # this project's model.py on exactly the exported (bf16) weights
    from safetensors.torch import load_file
    sd = {k: v.float() for k, v in load_file(os.path.join(args.hf, "model.safetensors")).items()}
    ours = BitNetLM(BitNetConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.hidden_size // cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings, rope_theta=cfg.rope_parameters["rope_theta"],
        rms_norm_eps=cfg.rms_norm_eps, bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id))
    ours.load_state_dict(sd)
    ours.eval()
    tot_ours, cnt2 = heldout_nll(lambda x: ours(x), ids, bos)
    loss_ours = tot_ours / cnt2
    assert cnt2 == cnt

    print(f"held-out tokens scored: {cnt}")
    print(f"held-out loss, transformers BitNetForCausalLM (f32):   {loss_hf:.6f}  ppl {math.exp(loss_hf):.4f}")
    print(f"held-out loss, training model.py on exported weights:  {loss_ours:.6f}  ppl {math.exp(loss_ours):.4f}")
    ok = abs(loss_hf - loss_ours) <= args.tol
    res = {"transformers_version": transformers.__version__, "torch_version": torch.__version__,
           "heldout_tokens": cnt, "loss_transformers_f32": loss_hf, "ppl_transformers_f32": math.exp(loss_hf),
           "loss_train_model_bf16_weights": loss_ours, "abs_diff": abs(loss_hf - loss_ours), "tol": args.tol}
    if os.path.exists(args.train_result) and not args.limit_tokens:
        tr = json.load(open(args.train_result))
        print(f"training script (train_result.json): bf16 weights {tr['heldout_loss_bf16_weights']:.6f}, "
              f"fp32 master {tr['heldout_loss_fp32_master']:.6f}")
        res["train_result_bf16_weights"] = tr["heldout_loss_bf16_weights"]
        res["train_result_fp32_master"] = tr["heldout_loss_fp32_master"]
        ok = ok and abs(loss_hf - tr["heldout_loss_bf16_weights"]) <= args.tol

    if not args.skip_bf16:
        mb = BitNetForCausalLM.from_pretrained(args.hf).eval()  # dtype from config: bfloat16
        tot_b, _ = heldout_nll(hf_logits(mb), ids, bos)
        print(f"(info) transformers loaded in {mb.dtype}: loss {tot_b / cnt:.6f}  ppl {math.exp(tot_b / cnt):.4f}")
        res["loss_transformers_bf16"] = tot_b / cnt

    if not args.limit_tokens:
        with open(os.path.join(os.path.dirname(args.hf.rstrip("/")), "verify_result.json"), "w") as f:
            json.dump(res, f, indent=1)
    print("VERIFY", "PASS" if ok else "FAIL", f"(|diff| = {abs(loss_hf - loss_ours):.2e}, tol {args.tol})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
