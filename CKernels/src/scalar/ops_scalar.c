/* Float ops around the ternary matrices: the specification every SIMD twin
 * (ops_avx2.c, ops_avx512.c, ops_neon.c) is tested against.
 *
 * Numerics contract (Tests/c/test_ops.c checks it):
 *   - add, axpy, f16_to_f32, rope, gate_relu2 are elementwise with a fixed
 *     expression order, so every ISA is bit-identical to these loops.
 *   - rmsnorm, dot, f16_gemm, attention sum in f32; the SIMD twins use
 *     several partial accumulators and FMA, so they agree to rounding.
 *   - softmax and gate_silu use expf here and a ≤ ~2 ulp polynomial exp in
 *     the SIMD twins.
 *
 * No FP contraction in this file: with -ffp-contract=on (clang's default
 * for C) `y + a*x` may become one fused multiply-add where the target has
 * one (always on arm64, never on baseline x86-64), which would change the
 * bit-exact ops between architectures. Every product here is rounded
 * before it is added, and the SIMD twins do the same for the exact ops. */
#include <math.h>
#include <string.h>
#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* IEEE binary16 → binary32, exact for every input (NaNs come back quiet,
 * payload kept, as vcvtph2ps and fcvtl produce them). */
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        /* zero or subnormal: mant · 2^-24 is a normal float, exact */
        const float mag = (float)mant * 0x1p-24f;
        memcpy(&bits, &mag, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13); /* rebias 15 → 127 */
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// x, w, y: (n,) f32; y may alias x
void bn_rmsnorm_scalar(const float *x, const float *w, float eps, int32_t n, float *y) {
    float ss = 0.0f;
    for (int32_t i = 0; i < n; i++) ss += x[i] * x[i];
    const float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int32_t i = 0; i < n; i++) y[i] = (x[i] * inv) * w[i];
}

// w16: 16-row panels of (m, k) f16, x: (n, k) f32 → y: (n, ldy) f32, rows [row_begin, row_end).
// fmaf, not s += w·x: the spec is one fused multiply-add per weight (bn_f16_gemm_fn), which
// the SIMD twins compute with vfmadd / fmla.
void bn_f16_gemm_scalar(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end) {
    for (int32_t t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * (size_t)k;
        for (int32_t r = row_begin; r < row_end; r++) {
            const uint16_t *wr = w16 + (size_t)(r / 16) * (size_t)k * 16u + (size_t)(r % 16); // column c at wr[16c]
            float s = 0.0f;
            for (int32_t c = 0; c < k; c++) s = fmaf(half_to_float(wr[(size_t)c * 16u]), xt[c], s);
            y[(size_t)t * (size_t)ldy + (size_t)r] = s;
        }
    }
}

// src: (n,) f16 → dst: (n,) f32
void bn_f16_to_f32_scalar(const uint16_t *src, float *dst, int32_t n) {
    for (int32_t i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}

// a, b: (n,) f32
float bn_dot_scalar(const float *a, const float *b, int32_t n) {
    float s = 0.0f;
    for (int32_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// x, y: (n,) f32
void bn_axpy_scalar(float a, const float *x, float *y, int32_t n) {
    for (int32_t i = 0; i < n; i++) y[i] = y[i] + a * x[i];
}

// x, y: (n,) f32
void bn_add_scalar(const float *x, float *y, int32_t n) {
    for (int32_t i = 0; i < n; i++) y[i] = y[i] + x[i];
}

// x: (n,) f32, in place, n ≥ 1
void bn_softmax_scalar(float *x, int32_t n) {
    float max = x[0];
    for (int32_t i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    /* x - max ≤ 0, so nothing overflows; the max element contributes 1 and the sum is ≥ 1 */
    float sum = 0.0f;
    for (int32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (int32_t i = 0; i < n; i++) x[i] = x[i] * inv;
}

// g, u: (n,) f32; g in place
void bn_gate_relu2_scalar(float *g, const float *u, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        const float v = g[i] > 0.0f ? g[i] : 0.0f; /* -0 and NaN become +0, as SIMD max(v, 0) */
        g[i] = (v * v) * u[i];
    }
}

// g, u: (n,) f32; g in place
void bn_gate_silu_scalar(float *g, const float *u, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        const float v = g[i];
        /* v ≪ 0: expf(-v) = inf and v / inf = -0, the right limit */
        g[i] = (v / (1.0f + expf(-v))) * u[i];
    }
}

// x: (heads, head_dim) f32 in place; cos, sin: (head_dim/2,)
void bn_rope_scalar(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin, int32_t neox) {
    const int32_t half = head_dim / 2;
    for (int32_t h = 0; h < heads; h++) {
        float *xh = x + (size_t)h * (size_t)head_dim;
        for (int32_t i = 0; i < half; i++) {
            const int32_t ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
            const float a = xh[ia], b = xh[ib];
            xh[ia] = a * cos[i] - b * sin[i];
            xh[ib] = a * sin[i] + b * cos[i];
        }
    }
}

/* One cache value: f32, or IEEE half when `half` (the f16 KV cache), converted exactly. */
static inline float kv_get(const void *base, size_t i, const int half) {
    return half ? half_to_float(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

/* The spec of both cache precisions: the dot and axpy loops are bn_dot_scalar's
 * and bn_axpy_scalar's, so f16 values give exactly the f32 kernel's results on
 * the same numbers. q: (n_heads, hd), k, v: (T, kv_stride), scores: (T,) used of
 * the (BN_ATTN_GROUP, T) scratch → out: (n_heads, hd), heads [head_begin, head_end) */
static inline void attention_body(const float *q, const void *k, const void *v, int32_t kv_stride, int32_t T,
                                  int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                  float *out, int32_t head_begin, int32_t head_end, const int half) {
    const int32_t group = n_heads / n_kv_heads;
    for (int32_t h = head_begin; h < head_end; h++) {
        const float *qh = q + (size_t)h * (size_t)hd;
        const size_t off = (size_t)(h / group) * (size_t)hd;
        for (int32_t t = 0; t < T; t++) {
            const size_t row = (size_t)t * (size_t)kv_stride + off;
            float s = 0.0f;
            for (int32_t i = 0; i < hd; i++) s += qh[i] * kv_get(k, row + (size_t)i, half);
            scores[t] = scale * s;
        }
        bn_softmax_scalar(scores, T);
        float *oh = out + (size_t)h * (size_t)hd;
        for (int32_t d = 0; d < hd; d++) oh[d] = 0.0f;
        for (int32_t t = 0; t < T; t++) {
            const size_t row = (size_t)t * (size_t)kv_stride + off;
            for (int32_t i = 0; i < hd; i++) oh[i] = oh[i] + scores[t] * kv_get(v, row + (size_t)i, half);
        }
    }
}

void bn_attention_scalar(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                         int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                         float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    (void)flags; /* no requests ahead to skip */
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 0);
}

void bn_attention_f16_scalar(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                             int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                             float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    (void)flags; /* no requests ahead to skip */
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 1);
}
