#!/usr/bin/env python3
"""Quantization-aware training of the small BitNet b1.58 model on the Shakespeare training split.

Data: tools/train/out/data/train_docs.jsonl (training segments only; the held-out split is
only ever evaluated). Each segment is tokenized without BOS and the segments are
concatenated, each followed by <|end_of_text|>, into one token stream. A training sample
is [BOS] + stream[o : o+255] with targets stream[o : o+256] (o uniform at random), so every
sample starts with BOS exactly as inference and the held-out windowing do.

Logs every --log-every steps to a CSV: step, tokens seen, lr, mean train loss over the
last interval, held-out loss on the first --eval-windows held-out windows (quick) and
wall time. At the end: the held-out loss over ALL windows (model.heldout_windows), for
the fp32 master weights and for the weights rounded to bf16 (what export_hf.py writes).
"""
import argparse
import csv
import json
import math
import os
import random
import time

import numpy as np
import torch

from model import BitNetConfig, BitNetLM, heldout_nll
from tokenizers import Tokenizer


def load_tokens(data_dir, tok_dir):
    tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    bos = tok.token_to_id("<|begin_of_text|>")
    eos = tok.token_to_id("<|end_of_text|>")
    segs = [json.loads(l) for l in open(os.path.join(data_dir, "train_docs.jsonl"))]
    stream = []
    for s in segs:
        stream.extend(tok.encode(s, add_special_tokens=False).ids)
        stream.append(eos)
    held = open(os.path.join(data_dir, "heldout.txt")).read()
    held_ids = tok.encode(held, add_special_tokens=False).ids
    return torch.tensor(stream, dtype=torch.long), held_ids, bos, eos


def lr_at(step, total, peak, warmup, final_frac):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def bf16_rounded(model):
    m = BitNetLM(model.cfg)
    m.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})
    return m.eval()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "out", "data"))
    ap.add_argument("--tokenizer", default=os.path.join(here, "out", "tokenizer"))
    ap.add_argument("--out", default=os.path.join(here, "out"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop early (and still save) after this wall time")
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps and exit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    stream, held_ids, bos, eos = load_tokens(args.data, args.tokenizer)
    cfg = BitNetConfig(num_hidden_layers=args.layers, max_position_embeddings=args.ctx, bos_token_id=bos, eos_token_id=eos)
    model = BitNetLM(cfg)
    print(f"params={model.num_params()} train_tokens={len(stream)} heldout_tokens={len(held_ids)} cfg={cfg.to_dict()}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    T = args.ctx - 1
    n_off = len(stream) - T

    def batch():
        o = torch.randint(0, n_off, (args.batch,), generator=gen)
        idx = o[:, None] + torch.arange(T)[None, :]
        y = stream[idx]
        x = torch.cat([torch.full((args.batch, 1), bos, dtype=torch.long), y[:, :-1]], dim=1)
        return x, y

    def eval_quick(m):
        m.eval()
        ids = held_ids[: args.eval_windows * T]
        tot, cnt = heldout_nll(lambda x: m(x), ids, bos, window=T)
        m.train()
        return tot / cnt

    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "train_log.csv")
    logf = None if args.bench else open(log_path, "w", newline="")
    writer = None if args.bench else csv.writer(logf)
    if writer:
        writer.writerow(["step", "tokens", "lr", "train_loss", "heldout_loss", "elapsed_s"])

    total_steps = args.bench or args.steps
    t0 = time.time()
    run_loss, run_n = 0.0, 0
    step = 0
    if writer:
        hl = eval_quick(model)
        writer.writerow([0, 0, 0.0, "", f"{hl:.5f}", f"{time.time() - t0:.1f}"])
        logf.flush()
    model.train()
    for step in range(1, total_steps + 1):
        lr = lr_at(step - 1, args.steps, args.lr, args.warmup, args.min_lr_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.item()
        run_n += 1
        if args.bench:
            if step == 2:
                tb = time.time()
            continue
        stop = args.max_minutes and (time.time() - t0) > args.max_minutes * 60
        if step % args.log_every == 0 or step == args.steps or stop:
            hl = eval_quick(model)
            el = time.time() - t0
            writer.writerow([step, step * args.batch * T, f"{lr:.6g}", f"{run_loss / run_n:.5f}", f"{hl:.5f}", f"{el:.1f}"])
            logf.flush()
            print(f"step {step} lr {lr:.3g} train {run_loss / run_n:.4f} heldout(quick) {hl:.4f} "
                  f"elapsed {el:.0f}s tok/s {step * args.batch * T / el:.0f}", flush=True)
            run_loss, run_n = 0.0, 0
        if stop:
            print(f"stopping early at step {step} (max-minutes)", flush=True)
            break
    if args.bench:
        dt = time.time() - tb
        print(f"bench: {(total_steps - 2) * args.batch * T / dt:.0f} tok/s, {dt / (total_steps - 2):.3f} s/step")
        return
    train_time = time.time() - t0

    model.eval()
    tot, cnt = heldout_nll(lambda x: model(x), held_ids, bos, window=T)
    mb = bf16_rounded(model)
    tot_b, cnt_b = heldout_nll(lambda x: mb(x), held_ids, bos, window=T)
    # Train loss of the final model, measured the same way on the first 98,000 training tokens.
    tr_ids = stream[:98000].tolist()
    tot_t, cnt_t = heldout_nll(lambda x: model(x), tr_ids, bos, window=T)
    res = {
        "steps": step, "batch": args.batch, "ctx": args.ctx, "tokens_seen": step * args.batch * T,
        "train_time_s": train_time, "params": model.num_params(), "config": cfg.to_dict(),
        "heldout_tokens": cnt,
        "heldout_loss_fp32_master": tot / cnt, "heldout_ppl_fp32_master": math.exp(tot / cnt),
        "heldout_loss_bf16_weights": tot_b / cnt_b, "heldout_ppl_bf16_weights": math.exp(tot_b / cnt_b),
        "train_loss_first98k_fp32_master": tot_t / cnt_t, "train_ppl_first98k_fp32_master": math.exp(tot_t / cnt_t),
        "windowing": "non-overlapping windows of 255 held-out tokens, each fed as [BOS]+window, BOS predicts the first token; every token scored once; last partial window included",
        "args": vars(args),
    }
    print(json.dumps(res, indent=1), flush=True)
    with open(os.path.join(args.out, "train_result.json"), "w") as f:
        json.dump(res, f, indent=1)
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "result": res},
               os.path.join(args.out, "ckpt.pt"))
    logf.close()


if __name__ == "__main__":
    main()
