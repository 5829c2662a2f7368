"""A BitNet b1.58 decoder with the 2B4T architecture, trained quantization-aware.

Architecture (docs/FORMATS.md §2.2, same as transformers' BitNetForCausalLM):
  x = embed[token]
  per layer:
    h = RMSNorm(x) * input_layernorm
    q, k, v = BitLinear(h)                          (GQA: n_kv_heads < n_heads)
    q, k = RoPE(q), RoPE(k)                         (NeoX rotate-half, all head dims)
    a = softmax(q k^T / sqrt(head_dim), causal) v
    a = RMSNorm(a) * attn_sub_norm                  (before o_proj)
    x = x + BitLinear_o(a)
    h = RMSNorm(x) * post_attention_layernorm
    m = relu(BitLinear_gate(h))^2 * BitLinear_up(h)
    m = RMSNorm(m) * ffn_sub_norm                   (before down_proj)
    x = x + BitLinear_down(m)
  logits = (RMSNorm(x) * norm) @ embed^T            (tied head, full precision, input not quantized)

BitLinear forward (quantization-aware; identical formulas to transformers'
integrations/bitnet.py WeightQuant / ActQuant in "online" mode):
  weights, per tensor: s = 1 / max(mean|W|, 1e-5); W_q = clamp(round(W * s), -1, 1) / s
  activations, per token: s = 127 / max(max|x|, 1e-5); x_q = clamp(round(x * s), -128, 127) / s
  (torch.round = round half to even), y = x_q @ W_q^T.
Backward: straight-through estimator (identity) for both. Master weights are fp32.
Embeddings, the head and all norms are full precision.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BitNetConfig:
    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    max_position_embeddings: int = 256
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    bos_token_id: int = 4094
    eos_token_id: int = 4095
    initializer_range: float = 0.02

    def to_dict(self):
        return asdict(self)


class _WeightQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        dtype = w.dtype
        w = w.float()
        scale = 1.0 / w.abs().mean().clamp(min=1e-5)
        return ((w * scale).round().clamp(-1, 1) / scale).to(dtype)

    @staticmethod
    def backward(ctx, g):
        return g


class _ActQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        dtype = x.dtype
        x = x.float()
        scale = 127 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
        return ((x * scale).round().clamp(-128, 127) / scale).to(dtype)

    @staticmethod
    def backward(ctx, g):
        return g


def weight_quant(w):
    return _WeightQuant.apply(w)


def act_quant(x):
    return _ActQuant.apply(x)


def ternary_codes(w):
    """The ternary codes and the per-tensor scale an integer engine uses: W_q = t * s."""
    w = w.float()
    s = w.abs().mean().clamp(min=1e-5)
    t = (w * (1.0 / s)).round().clamp(-1, 1)
    return t, s


class BitLinear(nn.Linear):
    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x):
        return F.linear(act_quant(x), weight_quant(self.weight))


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Rotary(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float) / cfg.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions):  # positions: [T] int64
        freqs = positions[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()  # [T, head_dim]


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = BitLinear(cfg.hidden_size, cfg.num_attention_heads * hd)
        self.k_proj = BitLinear(cfg.hidden_size, cfg.num_key_value_heads * hd)
        self.v_proj = BitLinear(cfg.hidden_size, cfg.num_key_value_heads * hd)
        self.o_proj = BitLinear(cfg.num_attention_heads * hd, cfg.hidden_size)
        self.attn_sub_norm = RMSNorm(cfg.num_attention_heads * hd, cfg.rms_norm_eps)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        c = self.cfg
        q = self.q_proj(x).view(B, T, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.num_attention_heads // c.num_key_value_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=c.head_dim ** -0.5)
        a = a.transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(self.attn_sub_norm(a))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = BitLinear(cfg.hidden_size, cfg.intermediate_size)
        self.up_proj = BitLinear(cfg.hidden_size, cfg.intermediate_size)
        self.down_proj = BitLinear(cfg.intermediate_size, cfg.hidden_size)
        self.ffn_sub_norm = RMSNorm(cfg.intermediate_size, cfg.rms_norm_eps)

    def forward(self, x):
        return self.down_proj(self.ffn_sub_norm(torch.square(F.relu(self.gate_proj(x))) * self.up_proj(x)))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class BitNetLM(nn.Module):
    """Parameter names equal the HF names (model.embed_tokens.weight, model.layers.N....)."""

    def __init__(self, cfg: BitNetConfig):
        super().__init__()
        assert cfg.num_attention_heads * cfg.head_dim == cfg.hidden_size  # required by HF (§9)
        for d in (cfg.hidden_size, cfg.intermediate_size, cfg.num_key_value_heads * cfg.head_dim, cfg.vocab_size):
            assert d % 128 == 0, d
        self.cfg = cfg
        self.model = Inner(cfg)
        self.rotary = Rotary(cfg)
        self.reset_parameters()

    def reset_parameters(self):
        std = self.cfg.initializer_range
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, mean=0.0, std=std)
            else:
                nn.init.ones_(p)

    def forward(self, idx, targets=None, reduction="mean"):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        cos, sin = self.rotary(pos)
        x = self.model.embed_tokens(idx)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.model.norm(x)
        logits = F.linear(x, self.model.embed_tokens.weight)  # tied head
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=-100, reduction=reduction)
        return logits, loss

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


def heldout_windows(ids, bos_id, window=255):
    """The documented held-out windowing: non-overlapping windows of `window` (255) text tokens;
    each window is fed as [BOS] + window (<= 256 tokens); the logits at input positions
    0..L-1 score window[0..L-1] (BOS predicts the window's first token); the input's last
    position is not scored. Every held-out token is scored exactly once; the final partial
    window is included. Yields (input_ids list, target list)."""
    for s in range(0, len(ids), window):
        w = ids[s:s + window]
        yield [bos_id] + w, w


@torch.no_grad()
def heldout_nll(forward_logits, ids, bos_id, window=255, batch=16):
    """Sum of NLL (nats, float64 accumulation) and token count over the held-out windows.
    forward_logits(input_ids LongTensor [B, T]) -> logits [B, T, V]."""
    wins = list(heldout_windows(ids, bos_id, window))
    total, count = 0.0, 0
    full = [w for w in wins if len(w[1]) == window]
    rest = [w for w in wins if len(w[1]) != window]
    for i in range(0, len(full), batch):
        chunk = full[i:i + batch]
        x = torch.tensor([c[0] for c in chunk], dtype=torch.long)
        y = torch.tensor([c[1] for c in chunk], dtype=torch.long)
        logits = forward_logits(x)[:, :window, :].double()
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    for inp, tgt in rest:
        x = torch.tensor([inp], dtype=torch.long)
        y = torch.tensor([tgt], dtype=torch.long)
        logits = forward_logits(x)[:, :len(tgt), :].double()
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    return total, count
