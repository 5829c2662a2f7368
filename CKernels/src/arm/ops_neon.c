/* NEON twins of the float ops (src/scalar/ops_scalar.c), used by the neon
 * and dotprod tables (nothing here needs sdot).
 *
 * add, axpy, f16_to_f32, rope and gate_relu2 compute the scalar expression
 * lane by lane (vmul then vadd, never vfma) and are bit-identical to the
 * scalar twins; their tails run the scalar expression itself. f16_gemm is
 * bn_f16_gemm_fn's single fma chain, bit-identical too. The other
 * reductions use vfma and partial sums, and softmax / gate_silu use exp4
 * below (tolerances in Tests/c/test_ops.c). Tails that need exp4 or a half
 * conversion go through a zero-padded 4-lane stack buffer. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include "internal.h"

/* FMA is baseline on arm64: without this, clang's default -ffp-contract=on
 * would fuse the scalar tails' a*b + c and break bit-exactness. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* f16_gemm over 16-row panels (bn_f16_gemm_fn): up to PANEL_TOKENS activation
 * rows per pass, four accumulators each (the panel's 16 rows: 24 of the 32 q
 * registers). ATTN_KEYS: cached positions per score block. */
enum { PANEL_TOKENS = 6, ATTN_KEYS = 8 };

/* [Σa0, Σa1, Σa2, Σa3] */
static inline float32x4_t hsum4x4(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3) {
    return vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
}

/* 8 halves → two float32x4 (fcvtl / fcvtl2: exact) */
static inline void load_ph8(const uint16_t *p, float32x4_t *lo, float32x4_t *hi) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

static inline float32x4_t load_ph4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* cnt ≤ 4 halves, zero padded */
static inline float32x4_t load_ph_tail(const uint16_t *p, int32_t cnt) {
    uint16_t buf[4] = {0};
    memcpy(buf, p, (size_t)cnt * sizeof(uint16_t));
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(buf)));
}

/* cnt ≤ 4 floats, zero padded */
static inline float32x4_t load_tail(const float *p, int32_t cnt) {
    float buf[4] = {0};
    memcpy(buf, p, (size_t)cnt * sizeof(float));
    return vld1q_f32(buf);
}

static inline void store_tail(float *p, float32x4_t v, int32_t cnt) {
    float buf[4];
    vst1q_f32(buf, v);
    memcpy(p, buf, (size_t)cnt * sizeof(float));
}

/* exp(x), within ~2 ulp of expf (measured in test_ops.c); the reduction and
 * polynomial of exp8 in ops_avx2.c: n = round(x/ln2), r = x − n·ln2 in two
 * steps (the first exact), degree-7 Taylor polynomial for e^r, then ·2^n as
 * two power-of-two factors so subnormal results round once and x past
 * ln(FLT_MAX) overflows to inf. vmax/vmin propagate NaN. */
static inline float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(89.0f));
    const int32x4_t n = vcvtnq_s32_f32(vmulq_n_f32(x, 1.44269504088896341f));
    const float32x4_t nf = vcvtq_f32_s32(n);
    float32x4_t r = vfmsq_n_f32(x, nf, 0.693359375f);
    r = vfmsq_n_f32(r, nf, -2.12194440e-4f);
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t n1 = vshrq_n_s32(n, 1), n2 = vsubq_s32(n, n1);
    const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

// a, b: (n,) f32
float bn_dot_neon(const float *a, const float *b, int32_t n) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(a + i), vld1q_f32(b + i));
        a1 = vfmaq_f32(a1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(a + i), vld1q_f32(b + i));
    if (i < n) a1 = vfmaq_f32(a1, load_tail(a + i, n - i), load_tail(b + i, n - i));
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

// x, w, y: (n,) f32; y may alias x
void bn_rmsnorm_neon(const float *x, const float *w, float eps, int32_t n, float *y) {
    const float inv = 1.0f / sqrtf(bn_dot_neon(x, x, n) / (float)n + eps);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), inv), vld1q_f32(w + i)));
    for (; i < n; i++) y[i] = (x[i] * inv) * w[i];
}

// src: (n,) f16 → dst: (n,) f32
void bn_f16_to_f32_neon(const uint16_t *src, float *dst, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t lo, hi;
        load_ph8(src + i, &lo, &hi);
        vst1q_f32(dst + i, lo);
        vst1q_f32(dst + i + 4, hi);
    }
    for (; i < n; i += 4) {
        const int32_t cnt = n - i < 4 ? n - i : 4;
        store_tail(dst + i, load_ph_tail(src + i, cnt), cnt);
    }
}

// x, y: (n,) f32
void bn_axpy_neon(float a, const float *x, float *y, int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(vld1q_f32(x + i), a)));
    for (; i < n; i++) y[i] = y[i] + a * x[i];
}

// x, y: (n,) f32
void bn_add_neon(const float *x, float *y, int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++) y[i] = y[i] + x[i];
}

// x: (n,) f32, in place, n ≥ 1
void bn_softmax_neon(float *x, int32_t n) {
    int32_t i = 0;
    float32x4_t vmax = vdupq_n_f32(x[0]);
    for (; i + 4 <= n; i += 4) vmax = vmaxnmq_f32(vmax, vld1q_f32(x + i)); /* NaN never wins, as in the spec */
    float max = vmaxnmvq_f32(vmax);
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    const float32x4_t vm = vdupq_n_f32(max);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    for (i = 0; i + 8 <= n; i += 8) {
        const float32x4_t e0 = exp4(vsubq_f32(vld1q_f32(x + i), vm));
        const float32x4_t e1 = exp4(vsubq_f32(vld1q_f32(x + i + 4), vm));
        vst1q_f32(x + i, e0);
        vst1q_f32(x + i + 4, e1);
        s0 = vaddq_f32(s0, e0);
        s1 = vaddq_f32(s1, e1);
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i += 4) {
        const int32_t cnt = n - i < 4 ? n - i : 4;
        float e[4];
        vst1q_f32(e, exp4(vsubq_f32(load_tail(x + i, cnt), vm)));
        for (int32_t j = 0; j < cnt; j++) {
            x[i + j] = e[j];
            sum += e[j];
        }
    }
    const float inv = 1.0f / sum;
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++) x[i] = x[i] * inv;
}

// g, u: (n,) f32; g in place
void bn_gate_relu2_neon(float *g, const float *u, int32_t n) {
    const float32x4_t zero = vdupq_n_f32(0.0f);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vmaxnmq_f32(vld1q_f32(g + i), zero); /* -0 and NaN → +0, as the spec */
        vst1q_f32(g + i, vmulq_f32(vmulq_f32(v, v), vld1q_f32(u + i)));
    }
    for (; i < n; i++) {
        const float v = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = (v * v) * u[i];
    }
}

// g, u: (n,) f32; g in place
void bn_gate_silu_neon(float *g, const float *u, int32_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (int32_t i = 0; i < n; i += 4) {
        const int32_t cnt = n - i < 4 ? n - i : 4;
        const float32x4_t v = cnt == 4 ? vld1q_f32(g + i) : load_tail(g + i, cnt);
        const float32x4_t uv = cnt == 4 ? vld1q_f32(u + i) : load_tail(u + i, cnt);
        const float32x4_t r = vmulq_f32(vdivq_f32(v, vaddq_f32(one, exp4(vnegq_f32(v)))), uv);
        if (cnt == 4)
            vst1q_f32(g + i, r);
        else
            store_tail(g + i, r, cnt);
    }
}

// x: (heads, head_dim) f32 in place; cos, sin: (head_dim/2,)
void bn_rope_neon(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin, int32_t neox) {
    const int32_t half = head_dim / 2;
    for (int32_t h = 0; h < heads; h++) {
        float *xh = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        if (neox) {
            for (; i + 4 <= half; i += 4) {
                const float32x4_t a = vld1q_f32(xh + i), b = vld1q_f32(xh + half + i);
                const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
                vst1q_f32(xh + i, vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s)));
                vst1q_f32(xh + half + i, vaddq_f32(vmulq_f32(a, s), vmulq_f32(b, c)));
            }
        } else {
            for (; i + 4 <= half; i += 4) { /* ld2/st2 (de)interleave the pairs */
                const float32x4x2_t ab = vld2q_f32(xh + 2 * i);
                const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
                float32x4x2_t r;
                r.val[0] = vsubq_f32(vmulq_f32(ab.val[0], c), vmulq_f32(ab.val[1], s));
                r.val[1] = vaddq_f32(vmulq_f32(ab.val[0], s), vmulq_f32(ab.val[1], c));
                vst2q_f32(xh + 2 * i, r);
            }
        }
        for (; i < half; i++) {
            const int32_t ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
            const float a = xh[ia], b = xh[ib];
            xh[ia] = a * cos[i] - b * sin[i];
            xh[ib] = a * sin[i] + b * cos[i];
        }
    }
}

/* ---- F16 GEMM ---------------------------------------------------------------- */

/* P panels (16P rows from w16) against T activation rows over all k columns:
 * four accumulators per (panel, activation row), one fmla per weight in column
 * order — bn_f16_gemm_fn's chain exactly, whatever P and T are. Rows [r0, r1)
 * of the 16P are stored. */
static inline __attribute__((always_inline)) void f16_panels_n(const uint16_t *w16, int32_t k, const float *x, float *y,
                                                               size_t ldy, const int P, const int T, int32_t r0,
                                                               int32_t r1) {
    float32x4_t acc[2][PANEL_TOKENS][4];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++)
            for (int q = 0; q < 4; q++) acc[p][t][q] = vdupq_n_f32(0.0f);
    const size_t panel = (size_t)k * 16u; /* elements per panel */
    for (int32_t c = 0; c < k; c++) {
        float32x4_t w[2][4];
        for (int p = 0; p < P; p++) {
            const uint16_t *col = w16 + (size_t)p * panel + (size_t)c * 16u;
            load_ph8(col, &w[p][0], &w[p][1]);
            load_ph8(col + 8, &w[p][2], &w[p][3]);
        }
        for (int t = 0; t < T; t++) {
            const float xv = x[(size_t)t * (size_t)k + (size_t)c];
            for (int p = 0; p < P; p++)
                for (int q = 0; q < 4; q++) acc[p][t][q] = vfmaq_n_f32(acc[p][t][q], w[p][q], xv);
        }
    }
    for (int p = 0; p < P; p++) {
        const int32_t lo = bn_max_i32(0, r0 - 16 * p), hi = bn_min_i32(16, r1 - 16 * p);
        if (hi <= lo) continue;
        for (int t = 0; t < T; t++) {
            float row[16];
            for (int q = 0; q < 4; q++) vst1q_f32(row + 4 * q, acc[p][t][q]);
            memcpy(y + (size_t)t * ldy + 16 * p + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
        }
    }
}

/* f16_panels_n with P and T as compile-time constants: two panels per pass for
 * up to two activation rows (more chains in flight for a lone row), else one. */
static void f16_panels(const uint16_t *w16, int32_t k, const float *x, float *y, size_t ldy, int32_t P, int32_t T,
                       int32_t r0, int32_t r1, int request) {
    (void)request; /* no software requests */
    switch (T) {
    case 1: P == 2 ? f16_panels_n(w16, k, x, y, ldy, 2, 1, r0, r1) : f16_panels_n(w16, k, x, y, ldy, 1, 1, r0, r1); break;
    case 2: P == 2 ? f16_panels_n(w16, k, x, y, ldy, 2, 2, r0, r1) : f16_panels_n(w16, k, x, y, ldy, 1, 2, r0, r1); break;
    case 3: f16_panels_n(w16, k, x, y, ldy, 1, 3, r0, r1); break;
    case 4: f16_panels_n(w16, k, x, y, ldy, 1, 4, r0, r1); break;
    case 5: f16_panels_n(w16, k, x, y, ldy, 1, 5, r0, r1); break;
    default: f16_panels_n(w16, k, x, y, ldy, 1, PANEL_TOKENS, r0, r1); break;
    }
}

// w16: 16-row panels of (m, k) f16, x: (n, k) f32 → y: (n, ldy) f32, rows [row_begin, row_end)
void bn_f16_gemm_neon(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                      int32_t row_begin, int32_t row_end) {
    const int32_t panels = bn_f16_widest_group(n > 0 ? n : 1, PANEL_TOKENS) <= 2 ? 2 : 1;
    bn_f16_panel_walk(w16, k, x, n, y, ldy, row_begin, row_end, PANEL_TOKENS, panels, 1, f16_panels);
}

/* ---- attention ----------------------------------------------------------------- */

// q: (n_heads, hd), k, v: (T, kv_stride), scores: (T,) scratch → out: (n_heads, hd), heads [head_begin, head_end)
/* 4 cache values at element index i of base (f32, or IEEE half when `half`:
 * the f16 KV cache, converted exactly), and cnt < 4 of them zero padded. */
static inline __attribute__((always_inline)) float32x4_t kv_load4(const void *base, size_t i, const int half) {
    return half ? load_ph4((const uint16_t *)base + i) : vld1q_f32((const float *)base + i);
}

static inline __attribute__((always_inline)) float32x4_t kv_load_tail(const void *base, size_t i, int32_t cnt,
                                                                     const int half) {
    return half ? load_ph_tail((const uint16_t *)base + i, cnt) : load_tail((const float *)base + i, cnt);
}

/* bn_dot_neon(a, row) with the row in the cache's element type: the same sums. */
static inline __attribute__((always_inline)) float kv_dot(const float *a, const void *b, int32_t n, const int half) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(a + i), kv_load4(b, (size_t)i, half));
        a1 = vfmaq_f32(a1, vld1q_f32(a + i + 4), kv_load4(b, (size_t)i + 4, half));
        a2 = vfmaq_f32(a2, vld1q_f32(a + i + 8), kv_load4(b, (size_t)i + 8, half));
        a3 = vfmaq_f32(a3, vld1q_f32(a + i + 12), kv_load4(b, (size_t)i + 12, half));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(a + i), kv_load4(b, (size_t)i, half));
    if (i < n) a1 = vfmaq_f32(a1, load_tail(a + i, n - i), kv_load_tail(b, (size_t)i, n - i, half));
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

static inline __attribute__((always_inline)) void attention_body(
    const float *q, const void *k, const void *v, int32_t kv_stride, int32_t T, int32_t n_heads, int32_t n_kv_heads,
    int32_t hd, float scale, float *scores, float *out, int32_t head_begin, int32_t head_end, const int half) {
    const int32_t group = n_heads / n_kv_heads, hv = hd & ~3;
    const size_t stride = (size_t)kv_stride;
    for (int32_t h = head_begin; h < head_end; h++) {
        const float *qh = q + (size_t)h * (size_t)hd;
        const size_t off = (size_t)(h / group) * (size_t)hd;
        /* scores: ATTN_KEYS cached positions at a time, one q load per 8 FMAs,
         * then pairwise-add reductions of four at once */
        int32_t t = 0;
        for (; t + ATTN_KEYS <= T; t += ATTN_KEYS) {
            const size_t kt = (size_t)t * stride + off; /* element index of the block's first key */
            float32x4_t acc[ATTN_KEYS];
            for (int i = 0; i < ATTN_KEYS; i++) acc[i] = vdupq_n_f32(0.0f);
            int32_t d = 0;
            for (; d < hv; d += 4) {
                const float32x4_t qv = vld1q_f32(qh + d);
                for (int i = 0; i < ATTN_KEYS; i++)
                    acc[i] = vfmaq_f32(acc[i], qv, kv_load4(k, kt + (size_t)i * stride + (size_t)d, half));
            }
            if (d < hd) {
                const float32x4_t qv = load_tail(qh + d, hd - d);
                for (int i = 0; i < ATTN_KEYS; i++)
                    acc[i] = vfmaq_f32(acc[i], qv, kv_load_tail(k, kt + (size_t)i * stride + (size_t)d, hd - d, half));
            }
            vst1q_f32(scores + t, vmulq_n_f32(hsum4x4(acc[0], acc[1], acc[2], acc[3]), scale));
            vst1q_f32(scores + t + 4, vmulq_n_f32(hsum4x4(acc[4], acc[5], acc[6], acc[7]), scale));
        }
        for (; t < T; t++)
            scores[t] = scale * kv_dot(qh, half ? (const void *)((const uint16_t *)k + (size_t)t * stride + off)
                                                : (const void *)((const float *)k + (size_t)t * stride + off), hd, half);
        bn_softmax_neon(scores, T);
        /* out = Σ_t p_t·v_t, 16 columns at a time in registers; even and odd
         * positions go to separate accumulators to keep 8 FMA chains */
        float *oh = out + (size_t)h * (size_t)hd;
        const size_t vh = off; /* element index of this head's values in row 0 */
        int32_t d = 0;
        for (; d + 16 <= hd; d += 16) {
            float32x4_t a[8];
            for (int j = 0; j < 8; j++) a[j] = vdupq_n_f32(0.0f);
            int32_t t2 = 0;
            for (; t2 + 2 <= T; t2 += 2) {
                const float p0 = scores[t2], p1 = scores[t2 + 1];
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d, v1 = v0 + stride;
                for (int j = 0; j < 4; j++) {
                    a[j] = vfmaq_n_f32(a[j], kv_load4(v, v0 + 4 * (size_t)j, half), p0);
                    a[4 + j] = vfmaq_n_f32(a[4 + j], kv_load4(v, v1 + 4 * (size_t)j, half), p1);
                }
            }
            if (t2 < T) {
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d;
                for (int j = 0; j < 4; j++) a[j] = vfmaq_n_f32(a[j], kv_load4(v, v0 + 4 * (size_t)j, half), scores[t2]);
            }
            for (int j = 0; j < 4; j++) vst1q_f32(oh + d + 4 * j, vaddq_f32(a[j], a[4 + j]));
        }
        for (; d < hd; d += 4) {
            const int32_t cnt = hd - d < 4 ? hd - d : 4;
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
            int32_t t2 = 0;
            for (; t2 + 2 <= T; t2 += 2) {
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d, v1 = v0 + stride;
                a0 = vfmaq_n_f32(a0, cnt == 4 ? kv_load4(v, v0, half) : kv_load_tail(v, v0, cnt, half), scores[t2]);
                a1 = vfmaq_n_f32(a1, cnt == 4 ? kv_load4(v, v1, half) : kv_load_tail(v, v1, cnt, half), scores[t2 + 1]);
            }
            if (t2 < T) {
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d;
                a0 = vfmaq_n_f32(a0, cnt == 4 ? kv_load4(v, v0, half) : kv_load_tail(v, v0, cnt, half), scores[t2]);
            }
            if (cnt == 4)
                vst1q_f32(oh + d, vaddq_f32(a0, a1));
            else
                store_tail(oh + d, vaddq_f32(a0, a1), cnt);
        }
    }
}

void bn_attention_neon(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                       int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                       float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    (void)flags; /* no requests ahead to skip */
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 0);
}

void bn_attention_f16_neon(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                           int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                           float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    (void)flags; /* no requests ahead to skip */
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 1);
}
#endif
