/* AVX2 + FMA + F16C twins of the float ops (src/scalar/ops_scalar.c).
 *
 * add, axpy, f16_to_f32, rope and gate_relu2 compute the scalar expression
 * lane by lane (products rounded before the add, no FMA), so they are
 * bit-identical to the scalar twins; tails run the scalar expression itself.
 * f16_gemm is bn_f16_gemm_fn's single fma chain, bit-identical too. The
 * reductions (dot, rmsnorm, attention) use FMA and several partial sums, and
 * softmax / gate_silu use exp8 below, so those agree with the scalar twins to
 * the tolerances stated in Tests/c/test_ops.c. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "internal.h"
#include "stream_x86.h"

/* Mixed C expressions (the scalar tails) must round like the scalar twins. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BN_INLINE static inline __attribute__((always_inline))

/* f16_gemm over 16-row panels (bn_f16_gemm_fn): up to PANEL_TOKENS activation
 * rows per pass (2 accumulators each, for the panel's two halves: 12 of the 16
 * ymm). ATTN_KEYS: cached positions per score block. PREFETCH_BYTES: how far
 * ahead each panel stream is requested (below). */
enum { PANEL_TOKENS = 6, ATTN_KEYS = 8, PREFETCH_BYTES = 1024 };

BN_INLINE BN_AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

BN_INLINE BN_AVX2 float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* [Σa0, ..., Σa7] */
BN_INLINE BN_AVX2 __m256 hsum8x8(const __m256 a[8]) {
    const __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}

/* Lanes [0, cnt) set, for vmaskmov: masked-off lanes are neither read nor written. */
BN_INLINE BN_AVX2 __m256i tail_mask(int32_t cnt) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

BN_INLINE BN_AVX2 __m256 load_ph(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* exp(x), within ~2 ulp of expf over the whole float range (measured in
 * test_ops.c): n = round(x/ln2), r = x − n·ln2 in two steps (the first is
 * exact: C1 has 9 significant bits and |n| ≤ 150), e^r by its degree-7
 * Taylor polynomial (truncation < 6e-9 relative for |r| ≤ ln2/2), then
 * ·2^n as two power-of-two factors so results that end subnormal are
 * rounded once, and x > ln(FLT_MAX) still overflows to inf. The clamp
 * keeps n in [-150, 128]; a NaN input stays NaN (max/min return their
 * second operand when unordered). */
BN_INLINE BN_AVX2 __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    const __m256 nf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i n = _mm256_cvtps_epi32(nf);
    const __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// a, b: (n,) f32
BN_AVX2 float bn_dot_avx2(const float *a, const float *b, int32_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), a1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// x, w, y: (n,) f32; y may alias x
BN_AVX2 void bn_rmsnorm_avx2(const float *x, const float *w, float eps, int32_t n, float *y) {
    const float inv = 1.0f / sqrtf(bn_dot_avx2(x, x, n) / (float)n + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = (x[i] * inv) * w[i];
}

// src: (n,) f16 → dst: (n,) f32
BN_AVX2 void bn_f16_to_f32_avx2(const uint16_t *src, float *dst, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_ph(src + i));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

// x, y: (n,) f32
BN_AVX2 void bn_axpy_avx2(float a, const float *x, float *y, int32_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) y[i] = y[i] + a * x[i];
}

// x, y: (n,) f32
BN_AVX2 void bn_add_avx2(const float *x, float *y, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = y[i] + x[i];
}

// x: (n,) f32, in place, n ≥ 1
BN_AVX2 void bn_softmax_avx2(float *x, int32_t n) {
    int32_t i = 0;
    __m256 vmax = _mm256_set1_ps(x[0]);
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(_mm256_loadu_ps(x + i), vmax); /* NaN never wins, as in the spec */
    float max = hmax8(vmax);
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    const __m256 vm = _mm256_set1_ps(max);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (i = 0; i + 16 <= n; i += 16) {
        const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        _mm256_storeu_ps(x + i, e0);
        _mm256_storeu_ps(x + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; i < n; i += 8) {
        const int32_t cnt = n - i < 8 ? n - i : 8;
        const __m256i m = tail_mask(cnt);
        /* masked-off lanes load 0 and would add exp(-max): zero them */
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        s0 = _mm256_add_ps(s0, e);
    }
    const float inv = 1.0f / hsum8(_mm256_add_ps(s0, s1));
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < n; i++) x[i] = x[i] * inv;
}

// g, u: (n,) f32; g in place
BN_AVX2 void bn_gate_relu2_avx2(float *g, const float *u, int32_t n) {
    const __m256 zero = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_max_ps(_mm256_loadu_ps(g + i), zero); /* -0 and NaN → +0, as the spec */
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(v, v), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float v = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = (v * v) * u[i];
    }
}

// g, u: (n,) f32; g in place
BN_AVX2 void bn_gate_silu_avx2(float *g, const float *u, int32_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (int32_t i = 0; i < n; i += 8) {
        const int32_t cnt = n - i < 8 ? n - i : 8;
        const __m256i m = tail_mask(cnt);
        const __m256 v = cnt == 8 ? _mm256_loadu_ps(g + i) : _mm256_maskload_ps(g + i, m);
        const __m256 uv = cnt == 8 ? _mm256_loadu_ps(u + i) : _mm256_maskload_ps(u + i, m);
        const __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_xor_ps(v, sign))));
        const __m256 r = _mm256_mul_ps(s, uv);
        if (cnt == 8)
            _mm256_storeu_ps(g + i, r);
        else
            _mm256_maskstore_ps(g + i, m, r);
    }
}

// x: (heads, head_dim) f32 in place; cos, sin: (head_dim/2,)
BN_AVX2 void bn_rope_avx2(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin,
                          int32_t neox) {
    const int32_t half = head_dim / 2;
    /* flips the sign of b·sin in the even lanes of the interleaved layout */
    const __m256 even_sign = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f);
    for (int32_t h = 0; h < heads; h++) {
        float *xh = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        if (neox) {
            for (; i + 8 <= half; i += 8) {
                const __m256 a = _mm256_loadu_ps(xh + i), b = _mm256_loadu_ps(xh + half + i);
                const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
                _mm256_storeu_ps(xh + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
                _mm256_storeu_ps(xh + half + i, _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c)));
            }
        } else {
            /* [a0 b0 a1 b1 ..]·[c0 c0 c1 c1 ..] + [b0 a0 b1 a1 ..]·[-s0 s0 -s1 s1 ..]: the same two
             * rounded products and one rounded sum per lane as the scalar twin (x + -y == x - y) */
            for (; i + 4 <= half; i += 4) {
                const __m256 v = _mm256_loadu_ps(xh + 2 * i);
                const __m128 c4 = _mm_loadu_ps(cos + i), s4 = _mm_loadu_ps(sin + i);
                const __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
                const __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
                const __m256 swapped = _mm256_permute_ps(v, 0xB1);
                _mm256_storeu_ps(xh + 2 * i, _mm256_add_ps(_mm256_mul_ps(v, c),
                                                           _mm256_xor_ps(_mm256_mul_ps(swapped, s), even_sign)));
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
 * two accumulators per (panel, activation row) — the panel's rows 0–7 and
 * 8–15 — and one fma per weight in column order: bn_f16_gemm_fn's chain
 * exactly, whatever P and T are. Rows [r0, r1) of the 16P are stored.
 *
 * The software requests PREFETCH_BYTES ahead (one per 64 bytes of each panel
 * stream) are hints; their distance was measured with the row-major kernel
 * this replaced, on a Zen 3 EPYC (one core, the 128256 × 2560 head read from
 * the model's file mapping): 1 KiB ahead 18.3 GB/s median, none 15.8, 4 KiB
 * 13.3 (768 B–1 KiB best at 1 and 2 threads). */
BN_INLINE BN_AVX2 void f16_panels_n(const uint16_t *w16, int32_t k, const float *x, float *y, size_t ldy, const int P,
                                    const int T, int32_t r0, int32_t r1) {
    __m256 acc[2][PANEL_TOKENS][2];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++) acc[p][t][0] = acc[p][t][1] = _mm256_setzero_ps();
    const size_t panel = (size_t)k * 16u; /* elements per panel */
    for (int32_t c = 0; c < k; c++) {
        __m256 w[2][2];
        for (int p = 0; p < P; p++) {
            const uint16_t *col = w16 + (size_t)p * panel + (size_t)c * 16u;
            w[p][0] = load_ph(col);
            w[p][1] = load_ph(col + 8);
            if ((c & 1) == 0) _mm_prefetch((const char *)col + PREFETCH_BYTES, _MM_HINT_T0);
        }
        for (int t = 0; t < T; t++) {
            const __m256 xb = _mm256_broadcast_ss(x + (size_t)t * (size_t)k + (size_t)c);
            for (int p = 0; p < P; p++) {
                acc[p][t][0] = _mm256_fmadd_ps(w[p][0], xb, acc[p][t][0]);
                acc[p][t][1] = _mm256_fmadd_ps(w[p][1], xb, acc[p][t][1]);
            }
        }
    }
    for (int p = 0; p < P; p++) {
        const int32_t lo = bn_max_i32(0, r0 - 16 * p), hi = bn_min_i32(16, r1 - 16 * p);
        for (int t = 0; t < T; t++) {
            float *yt = y + (size_t)t * ldy + 16 * p;
            if (lo == 0 && hi == 16) {
                _mm256_storeu_ps(yt, acc[p][t][0]);
                _mm256_storeu_ps(yt + 8, acc[p][t][1]);
            } else if (hi > lo) { /* a partial panel: through a buffer */
                float row[16];
                _mm256_storeu_ps(row, acc[p][t][0]);
                _mm256_storeu_ps(row + 8, acc[p][t][1]);
                memcpy(yt + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
            }
        }
    }
}

/* f16_panels_n with P and T as compile-time constants: two panels per pass for
 * up to two activation rows (so a lone row has four chains in flight), else one. */
static BN_AVX2 void f16_panels(const uint16_t *w16, int32_t k, const float *x, float *y, size_t ldy, int32_t P, int32_t T,
                               int32_t r0, int32_t r1, int request) {
    (void)request; /* requests are always made (AVX2) */
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
BN_AVX2 void bn_f16_gemm_avx2(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end) {
    const int32_t panels = bn_f16_widest_group(n > 0 ? n : 1, PANEL_TOKENS) <= 2 ? 2 : 1;
    bn_f16_panel_walk(w16, k, x, n, y, ldy, row_begin, row_end, PANEL_TOKENS, panels, 1, f16_panels);
}

/* ---- attention ----------------------------------------------------------------- */

/* The address of element i of a cache row base (f32, or IEEE half when `half`). */
BN_INLINE BN_AVX2 const void *kv_at(const void *base, size_t i, const int half) {
    return half ? (const void *)((const uint16_t *)base + i) : (const void *)((const float *)base + i);
}

/* 8 cache values at element index i of base (f32, or IEEE half when `half`:
 * the f16 KV cache, converted exactly), and the same for cnt < 8 values with
 * zeros after them (vmaskmov for f32; a zero-padded copy for halves). */
BN_INLINE BN_AVX2 __m256 kv_load8(const void *base, size_t i, const int half) {
    return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)))
                : _mm256_loadu_ps((const float *)base + i);
}

BN_INLINE BN_AVX2 __m256 kv_load_tail(const void *base, size_t i, int32_t cnt, __m256i m, const int half) {
    if (!half) return _mm256_maskload_ps((const float *)base + i, m);
    uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(tmp, (const uint16_t *)base + i, sizeof(uint16_t) * (size_t)cnt);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
}

/* bn_dot_avx2(a, row) with the row in the cache's element type: the same sums. */
BN_INLINE BN_AVX2 float kv_dot(const float *a, const void *b, int32_t n, const int half) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), kv_load8(b, (size_t)i, half), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), kv_load8(b, (size_t)i + 8, half), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), kv_load8(b, (size_t)i + 16, half), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), kv_load8(b, (size_t)i + 24, half), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), kv_load8(b, (size_t)i, half), a0);
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), kv_load_tail(b, (size_t)i, n - i, m, half), a1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// q: (n_heads, hd), k, v: (T, kv_stride), scores: (T,) scratch → out: (n_heads, hd), heads [head_begin, head_end)
BN_INLINE BN_AVX2 void attention_body(const float *q, const void *k, const void *v, int32_t kv_stride, int32_t T,
                                      int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                      float *out, int32_t head_begin, int32_t head_end, const int half,
                                      const int stream) {
    const int32_t group = n_heads / n_kv_heads, hv = hd & ~7;
    const __m256i dm = tail_mask(hd - hv);
    const __m256 vscale = _mm256_set1_ps(scale);
    const size_t stride = (size_t)kv_stride;
    for (int32_t h = head_begin; h < head_end; h++) {
        const float *qh = q + (size_t)h * (size_t)hd;
        const size_t off = (size_t)(h / group) * (size_t)hd;
        /* the first head of its kv head in this call streams the block in (bn_kv_request; its
         * value pass requests its own columns ahead too); the others find it in L2 (T·hd·8
         * bytes, 354 KB at 346 positions in 2B4T); nobody does for BN_ATTN_RESIDENT */
        const int first = stream && (h == head_begin || h % group == 0);
        /* scores: ATTN_KEYS cached positions at a time, one q load per 8 FMAs,
         * then one transposing reduction for all of them */
        if (first)
            for (int32_t r = 0; r < bn_min_i32(T, BN_ATTN_AHEAD_ROWS); r++) bn_kv_request(k, v, off, stride, r, T, hd, half);
        int32_t t = 0;
        for (; t + ATTN_KEYS <= T; t += ATTN_KEYS) {
            const size_t kt = (size_t)t * stride + off; /* element index of the block's first key */
            if (first)
                for (int i = 0; i < ATTN_KEYS; i++) bn_kv_request(k, v, off, stride, t + BN_ATTN_AHEAD_ROWS + i, T, hd, half);
            __m256 acc[ATTN_KEYS];
            for (int i = 0; i < ATTN_KEYS; i++) acc[i] = _mm256_setzero_ps();
            int32_t d = 0;
            for (; d < hv; d += 8) {
                const __m256 qv = _mm256_loadu_ps(qh + d);
                for (int i = 0; i < ATTN_KEYS; i++)
                    acc[i] = _mm256_fmadd_ps(qv, kv_load8(k, kt + (size_t)i * stride + (size_t)d, half), acc[i]);
            }
            if (d < hd) {
                const __m256 qv = _mm256_maskload_ps(qh + d, dm);
                for (int i = 0; i < ATTN_KEYS; i++)
                    acc[i] = _mm256_fmadd_ps(qv, kv_load_tail(k, kt + (size_t)i * stride + (size_t)d, hd - hv, dm, half), acc[i]);
            }
            _mm256_storeu_ps(scores + t, _mm256_mul_ps(vscale, hsum8x8(acc)));
        }
        for (; t < T; t++) scores[t] = scale * kv_dot(qh, kv_at(k, (size_t)t * stride + off, half), hd, half);
        bn_softmax_avx2(scores, T);
        /* out = Σ_t p_t·v_t, 32 columns at a time in registers; even and odd
         * positions go to separate accumulators to keep 8 FMA chains */
        float *oh = out + (size_t)h * (size_t)hd;
        const size_t vh = off; /* element index of this head's values in row 0 */
        int32_t d = 0;
        for (; d + 32 <= hd; d += 32) {
            __m256 a[8];
            for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
            int32_t t2 = 0;
            for (; t2 + 2 <= T; t2 += 2) {
                const __m256 p0 = _mm256_broadcast_ss(scores + t2), p1 = _mm256_broadcast_ss(scores + t2 + 1);
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d, v1 = v0 + stride;
                if (first) /* this pass's 32 columns of the values BN_ATTN_AHEAD_ROWS rows ahead, into L2 */
                    for (int r = 0; r < 2; r++)
                        for (int c = 0; c < (half ? 1 : 2); c++) /* 64-byte lines: one of halves, two of floats */
                            _mm_prefetch((const char *)kv_at(v, v0 + (size_t)(BN_ATTN_AHEAD_ROWS + r) * stride + 16 * (size_t)c, half),
                                         _MM_HINT_T1);
                for (int j = 0; j < 4; j++) {
                    a[j] = _mm256_fmadd_ps(p0, kv_load8(v, v0 + 8 * (size_t)j, half), a[j]);
                    a[4 + j] = _mm256_fmadd_ps(p1, kv_load8(v, v1 + 8 * (size_t)j, half), a[4 + j]);
                }
            }
            if (t2 < T) {
                const __m256 p0 = _mm256_broadcast_ss(scores + t2);
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d;
                for (int j = 0; j < 4; j++) a[j] = _mm256_fmadd_ps(p0, kv_load8(v, v0 + 8 * (size_t)j, half), a[j]);
            }
            for (int j = 0; j < 4; j++) _mm256_storeu_ps(oh + d + 8 * j, _mm256_add_ps(a[j], a[4 + j]));
        }
        for (; d < hd; d += 8) {
            const int32_t cnt = hd - d < 8 ? hd - d : 8;
            const __m256i m = tail_mask(cnt);
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            int32_t t2 = 0;
            for (; t2 + 2 <= T; t2 += 2) {
                const size_t v0 = vh + (size_t)t2 * stride + (size_t)d, v1 = v0 + stride;
                a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + t2), kv_load_tail(v, v0, cnt, m, half), a0);
                a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + t2 + 1), kv_load_tail(v, v1, cnt, m, half), a1);
            }
            if (t2 < T)
                a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + t2), kv_load_tail(v, vh + (size_t)t2 * stride + (size_t)d, cnt, m, half), a0);
            _mm256_maskstore_ps(oh + d, m, _mm256_add_ps(a0, a1));
        }
    }
}

BN_AVX2 void bn_attention_avx2(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                               int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                               float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 0,
                   !(flags & BN_ATTN_RESIDENT));
}

BN_AVX2 void bn_attention_f16_avx2(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                                   int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                   float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 1,
                   !(flags & BN_ATTN_RESIDENT));
}
#endif
