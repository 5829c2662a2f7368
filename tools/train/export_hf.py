#!/usr/bin/env python3
"""Export the trained checkpoint in the layout of microsoft/bitnet-b1.58-2B-4T-bf16 (docs/FORMATS.md §7a).

  out/hf/config.json             BitNetForCausalLM config with the online BitNet quantization_config (§9)
  out/hf/model.safetensors       bf16 master weights, tensor names of §7a, no lm_head (tied)
  out/hf/generation_config.json
  out/hf/tokenizer.json, tokenizer_config.json, special_tokens_map.json

The projection weights are the bf16-rounded fp32 master weights (latent, not ternarized):
transformers ternarizes them online, per tensor, with s = mean|W| of the bf16 values.
When loaded with dtype=float32 (what make_golden.py does), that scale is exact in f32; loaded
in bf16 the effective scale is bf16(s) (§9).
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

HF_TENSORS_PER_LAYER = [
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "self_attn.attn_sub_norm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "mlp.ffn_sub_norm.weight",
]


def hf_config(c):
    return {
        "architectures": ["BitNetForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": c["bos_token_id"],
        "eos_token_id": c["eos_token_id"],
        "hidden_act": "relu2",
        "hidden_size": c["hidden_size"],
        "initializer_range": c["initializer_range"],
        "intermediate_size": c["intermediate_size"],
        "max_position_embeddings": c["max_position_embeddings"],
        "model_type": "bitnet",
        "num_attention_heads": c["num_attention_heads"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_key_value_heads": c["num_key_value_heads"],
        "quantization_config": {
            "linear_class": "autobitlinear",
            "quant_method": "bitnet",
            "quantization_mode": "online",
        },
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": c["rope_theta"],
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": c["vocab_size"],
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(here, "out", "ckpt.pt"))
    ap.add_argument("--tokenizer", default=os.path.join(here, "out", "tokenizer"))
    ap.add_argument("--out", default=os.path.join(here, "out", "hf"))
    args = ap.parse_args()

    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    c, sd = ck["config"], ck["state_dict"]
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    for i in range(c["num_hidden_layers"]):
        names += [f"model.layers.{i}.{n}" for n in HF_TENSORS_PER_LAYER]
    extra = set(sd) - set(names)
    assert not extra, f"unexpected tensors {extra}"
    tensors = {n: sd[n].detach().to(torch.bfloat16).contiguous() for n in sorted(names)}

    os.makedirs(args.out, exist_ok=True)
    assert c["head_dim"] * c["num_attention_heads"] == c["hidden_size"]  # head_dim is implied, as in 2B4T
    save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    os.chmod(os.path.join(args.out, "model.safetensors"), 0o644)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(hf_config(c), f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": c["bos_token_id"], "eos_token_id": c["eos_token_id"]}, f, indent=2)
        f.write("\n")
    for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(args.tokenizer, fn), os.path.join(args.out, fn))
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.out}: {len(tensors)} tensors, {n} parameters, bf16, "
          f"{os.path.getsize(os.path.join(args.out, 'model.safetensors'))} bytes")


if __name__ == "__main__":
    main()
