/* AVX-512 twins of the float ops (src/scalar/ops_scalar.c), used by the
 * avx512 and avx512vnni tables (nothing here needs VNNI).
 *
 * Tails are masked loads and stores: masked-off lanes are neither read nor
 * written, so no op touches memory past n. add, axpy, f16_to_f32, rope and
 * gate_relu2 compute the scalar expression lane by lane (products rounded
 * before the add, no FMA) and are bit-identical to the scalar twins; the
 * reductions use FMA and partial sums, and softmax / gate_silu use exp16
 * below (tolerances in Tests/c/test_ops.c). */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <math.h>
#include "internal.h"
#include "stream_x86.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define BN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define BN_INLINE static inline __attribute__((always_inline))

/* f16_gemm over 16-row panels (bn_f16_gemm_fn): up to PANEL_TOKENS activation
 * rows per pass, each converted weight vector (16 rows of one column) meeting
 * them by one broadcast FMA each. ATTN_KEYS: cached positions per score block. */
enum { PANEL_TOKENS = 8, ATTN_KEYS = 8 };

BN_INLINE BN_AVX512 __mmask16 mask16(int32_t cnt) {
    return cnt >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cnt) - 1);
}

BN_INLINE BN_AVX512 __m256 fold8(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}

/* [Σa0, ..., Σa7] */
BN_INLINE BN_AVX512 __m256 hsum8x16(const __m512 a[8]) {
    const __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(fold8(a[0]), fold8(a[1])), _mm256_hadd_ps(fold8(a[2]), fold8(a[3])));
    const __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(fold8(a[4]), fold8(a[5])), _mm256_hadd_ps(fold8(a[6]), fold8(a[7])));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}

BN_INLINE BN_AVX512 __m512 load_ph(__mmask16 m, const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

/* exp(x), within ~2 ulp of expf (measured in test_ops.c); the same
 * reduction and polynomial as exp8 in ops_avx2.c, with vscalefps doing the
 * ·2^n step (one rounding into the subnormal range, inf past ln(FLT_MAX)).
 * The clamp keeps r small; a NaN input stays NaN. */
BN_INLINE BN_AVX512 __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    const __m512 nf = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, nf);
}

// a, b: (n,) f32
BN_AVX512 float bn_dot_avx512(const float *a, const float *b, int32_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), a3);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// x, w, y: (n,) f32; y may alias x
BN_AVX512 void bn_rmsnorm_avx512(const float *x, const float *w, float eps, int32_t n, float *y) {
    const float inv = 1.0f / sqrtf(bn_dot_avx512(x, x, n) / (float)n + eps);
    const __m512 vinv = _mm512_set1_ps(inv);
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        const __m512 r = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv), _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

// src: (n,) f16 → dst: (n,) f32
BN_AVX512 void bn_f16_to_f32_avx512(const uint16_t *src, float *dst, int32_t n) {
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load_ph(m, src + i));
    }
}

// x, y: (n,) f32
BN_AVX512 void bn_axpy_avx512(float a, const float *x, float *y, int32_t n) {
    const __m512 va = _mm512_set1_ps(a);
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        const __m512 r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

// x, y: (n,) f32
BN_AVX512 void bn_add_avx512(const float *x, float *y, int32_t n) {
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

// x: (n,) f32, in place, n ≥ 1
BN_AVX512 void bn_softmax_avx512(float *x, int32_t n) {
    __m512 vmax = _mm512_set1_ps(x[0]);
    for (int32_t i = 0; i < n; i += 16) /* masked lanes reload x[0]; NaN never wins, as in the spec */
        vmax = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(x[0]), mask16(n - i), x + i), vmax);
    const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        const __m512 e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm));
        _mm512_storeu_ps(x + i, e0);
        _mm512_storeu_ps(x + i + 16, e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm)));
        _mm512_mask_storeu_ps(x + i, m, e);
        s0 = _mm512_add_ps(s0, e);
    }
    const __m512 vinv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
    for (i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv));
    }
}

// g, u: (n,) f32; g in place
BN_AVX512 void bn_gate_relu2_avx512(float *g, const float *u, int32_t n) {
    const __m512 zero = _mm512_setzero_ps();
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        const __m512 v = _mm512_max_ps(_mm512_maskz_loadu_ps(m, g + i), zero); /* -0 and NaN → +0, as the spec */
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_mul_ps(v, v), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

// g, u: (n,) f32; g in place
BN_AVX512 void bn_gate_silu_avx512(float *g, const float *u, int32_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = mask16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 s = _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

// x: (heads, head_dim) f32 in place; cos, sin: (head_dim/2,)
BN_AVX512 void bn_rope_avx512(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin,
                              int32_t neox) {
    const int32_t half = head_dim / 2;
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512 even_sign = _mm512_castsi512_ps(_mm512_set1_epi64(0x80000000ll)); /* -0.0f in even lanes */
    for (int32_t h = 0; h < heads; h++) {
        float *xh = x + (size_t)h * (size_t)head_dim;
        if (neox) {
            for (int32_t i = 0; i < half; i += 16) {
                const __mmask16 m = mask16(half - i);
                const __m512 a = _mm512_maskz_loadu_ps(m, xh + i), b = _mm512_maskz_loadu_ps(m, xh + half + i);
                const __m512 c = _mm512_maskz_loadu_ps(m, cos + i), s = _mm512_maskz_loadu_ps(m, sin + i);
                _mm512_mask_storeu_ps(xh + i, m, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
                _mm512_mask_storeu_ps(xh + half + i, m, _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c)));
            }
        } else {
            /* [a0 b0 a1 b1 ..]·[c0 c0 ..] + [b0 a0 b1 a1 ..]·[-s0 s0 ..]: the scalar twin's two rounded
             * products and one rounded sum per lane (x + -y == x - y) */
            for (int32_t i = 0; i < half; i += 8) {
                const int32_t pairs = half - i < 8 ? half - i : 8;
                const __mmask16 m = mask16(2 * pairs);
                const __mmask8 mc = (__mmask8)((1u << pairs) - 1);
                const __m512 v = _mm512_maskz_loadu_ps(m, xh + 2 * i);
                const __m512 c = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(mc, cos + i)));
                const __m512 s = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(mc, sin + i)));
                const __m512 swapped = _mm512_permute_ps(v, 0xB1);
                const __m512 r = _mm512_add_ps(_mm512_mul_ps(v, c), _mm512_xor_ps(_mm512_mul_ps(swapped, s), even_sign));
                _mm512_mask_storeu_ps(xh + 2 * i, m, r);
            }
        }
    }
}

/* ---- F16 GEMM ---------------------------------------------------------------- */

/* P panels (16P rows from w16) against T activation rows over all k columns:
 * one accumulator per (panel, activation row), one fma per weight in column
 * order — bn_f16_gemm_fn's chain exactly, so the result does not depend on P,
 * T or the row's place in the call. Rows [r0, r1) of the 16P are stored (masked).
 *
 * Costs on Zen 4 (the EPYC host): a vcvtph2ps costs about one FMA slot (a loop
 * of 16 FMAs and 2 conversions ran at 87% of the FMA-only rate), which is why
 * each conversion should feed as many activation rows as registers allow. The
 * 128256 × 2560 head at 8 rows: 48.5 ms on one core, 24.6 on two (P = 3, see
 * f16_panels), against 59–63 and 31–33 for the row-major kernel this replaced,
 * which summed 32 lanes horizontally and saved partial sums between column
 * blocks. request: each panel's stream is requested 1 KiB ahead into L1 (one
 * line per 64 bytes read); without it 8 rows took 64 ms and with an L2 hint 61
 * (P = 2, against 54). One row reads too little per cycle to need it there
 * (20.5–21.3 ms either way). */
BN_INLINE BN_AVX512 void f16_panels_n(const uint16_t *w16, int32_t k, const float *x, float *y, size_t ldy,
                                      const int P, const int T, int32_t r0, int32_t r1, int request) {
    __m512 acc[4][PANEL_TOKENS];
    for (int p = 0; p < P; p++)
        for (int t = 0; t < T; t++) acc[p][t] = _mm512_setzero_ps();
    const size_t panel = (size_t)k * 16u; /* elements per panel */
    for (int32_t c = 0; c < k; c++) {
        __m512 w[4];
        for (int p = 0; p < P; p++)
            w[p] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w16 + (size_t)p * panel + (size_t)c * 16u)));
        if (request && (c & 1) == 0)
            for (int p = 0; p < P; p++)
                _mm_prefetch((const char *)(w16 + (size_t)p * panel + (size_t)c * 16u) + 1024, _MM_HINT_T0);
        for (int t = 0; t < T; t++) {
            const __m512 xb = _mm512_set1_ps(x[(size_t)t * (size_t)k + (size_t)c]);
            for (int p = 0; p < P; p++) acc[p][t] = _mm512_fmadd_ps(w[p], xb, acc[p][t]);
        }
    }
    for (int p = 0; p < P; p++) {
        const int32_t lo = bn_max_i32(0, r0 - 16 * p), hi = bn_min_i32(16, r1 - 16 * p);
        if (hi <= lo) continue;
        const __mmask16 m = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
        for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + (size_t)t * ldy + 16 * p, m, acc[p][t]);
    }
}

/* f16_panels_n with P (the panels of this pass, 1–4) and T as compile-time
 * constants, so the accumulators stay in registers. The caller passes P = 4
 * only with T ≤ 4 (16 accumulators), and P = 3 (any T) at the end of such a
 * range; P = 3 serves 5–8 rows (24: three panels
 * share each broadcast; with two, 8 rows took 54–55 ms on one core and 27.5 on
 * two, with three 48.5 and 24.6 — 92% of the FMA peak). */
static BN_AVX512 void f16_panels(const uint16_t *w16, int32_t k, const float *x, float *y, size_t ldy, int32_t P,
                                 int32_t T, int32_t r0, int32_t r1, int request) {
    switch (T) {
#define BN_PANELS(n)                                                                                   \
    case n:                                                                                            \
        if (P == 4) f16_panels_n(w16, k, x, y, ldy, 4, (n) <= 4 ? (n) : 4, r0, r1, request);           \
        else if (P == 3) f16_panels_n(w16, k, x, y, ldy, 3, n, r0, r1, request);                       \
        else if (P == 2) f16_panels_n(w16, k, x, y, ldy, 2, n, r0, r1, request);                       \
        else f16_panels_n(w16, k, x, y, ldy, 1, n, r0, r1, request);                                   \
        break;
    BN_PANELS(1) BN_PANELS(2) BN_PANELS(3) BN_PANELS(4) BN_PANELS(5) BN_PANELS(6) BN_PANELS(7)
    default: BN_PANELS(PANEL_TOKENS)
#undef BN_PANELS
    }
}

// w16: 16-row panels of (m, k) f16, x: (n, k) f32 → y: (n, ldy) f32, rows [row_begin, row_end)
BN_AVX512 void bn_f16_gemm_avx512(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                                  int32_t row_begin, int32_t row_end) {
    const int32_t panels = bn_f16_widest_group(n > 0 ? n : 1, PANEL_TOKENS) <= 4 ? 4 : 3;
    bn_f16_panel_walk(w16, k, x, n, y, ldy, row_begin, row_end, PANEL_TOKENS, panels, n > 1 || bn_stream_prefetch(),
                      f16_panels);
}

/* ---- attention ----------------------------------------------------------------- */

/* 16 cache values at element index i of a row base (f32, or IEEE half when
 * `half`: the f16 KV cache; converted exactly, then the same arithmetic). */
BN_INLINE BN_AVX512 __m512 kv_load(const void *base, size_t i, __mmask16 m, const int half) {
    return half ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i))
                : _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

BN_INLINE BN_AVX512 const void *kv_at(const void *base, size_t i, const int half) {
    return half ? (const void *)((const uint16_t *)base + i) : (const void *)((const float *)base + i);
}

/* out[g] = Σ_t p_g[t]·v[t] for G heads sharing one kv head, S·16 columns per
 * pass: each value row chunk is loaded once for all G heads, and the 2·G·S
 * accumulators (even and odd positions apart, for independent FMA chains)
 * stay in registers because G and S are compile-time constants. Every output
 * element is the same two chains whatever G and S are, so grouping never
 * changes a result. p_g = scores + g·T; out[g] = out + g·hd. */
BN_INLINE BN_AVX512 void values_group(const int G, const int S, const int half, const int stream, const void *vh,
                                      size_t stride, int32_t T, int32_t hd, const float *scores, float *out) {
    for (int32_t d = 0; d < hd; d += 16 * S) {
        __mmask16 m[4];
        for (int s = 0; s < S; s++) m[s] = hd - d - 16 * s > 0 ? mask16(hd - d - 16 * s) : (__mmask16)0;
        __m512 even[BN_ATTN_GROUP][4], odd[BN_ATTN_GROUP][4];
        for (int g = 0; g < G; g++)
            for (int s = 0; s < S; s++) even[g][s] = odd[g][s] = _mm512_setzero_ps();
        int32_t t2 = 0;
        for (; t2 + 2 <= T; t2 += 2) {
            const size_t r0 = (size_t)t2 * stride + (size_t)d;
            __m512 a[4], b[4];
            for (int s = 0; s < S && stream; s++) { /* this pass's columns, BN_ATTN_AHEAD_ROWS rows ahead, into L2 */
                _mm_prefetch((const char *)kv_at(vh, r0 + (size_t)BN_ATTN_AHEAD_ROWS * stride + 16 * s, half), _MM_HINT_T1);
                _mm_prefetch((const char *)kv_at(vh, r0 + (size_t)(BN_ATTN_AHEAD_ROWS + 1) * stride + 16 * s, half), _MM_HINT_T1);
            }
            for (int s = 0; s < S; s++) {
                a[s] = kv_load(vh, r0 + 16 * (size_t)s, m[s], half);
                b[s] = kv_load(vh, r0 + stride + 16 * (size_t)s, m[s], half);
            }
            for (int g = 0; g < G; g++) {
                const float *p = scores + (size_t)g * (size_t)T + t2;
                const __m512 p0 = _mm512_set1_ps(p[0]), p1 = _mm512_set1_ps(p[1]);
                for (int s = 0; s < S; s++) {
                    even[g][s] = _mm512_fmadd_ps(p0, a[s], even[g][s]);
                    odd[g][s] = _mm512_fmadd_ps(p1, b[s], odd[g][s]);
                }
            }
        }
        if (t2 < T) {
            const size_t r0 = (size_t)t2 * stride + (size_t)d;
            for (int s = 0; s < S; s++) {
                const __m512 a = kv_load(vh, r0 + 16 * (size_t)s, m[s], half);
                for (int g = 0; g < G; g++)
                    even[g][s] = _mm512_fmadd_ps(_mm512_set1_ps(scores[(size_t)g * (size_t)T + t2]), a, even[g][s]);
            }
        }
        for (int g = 0; g < G; g++)
            for (int s = 0; s < S; s++)
                _mm512_mask_storeu_ps(out + (size_t)g * (size_t)hd + d + 16 * s, m[s],
                                      _mm512_add_ps(even[g][s], odd[g][s]));
    }
}

/* s_p[0..) = scale · (q_p · key_i) for P = 1 or 2 heads p (q_p = q + p·hd,
 * s_p = s + p·T) and ATTN_KEYS keys from element index kt, `stride` apart:
 * one FMA chain per (head, key) over hd in 16-column steps, then one
 * transposing reduction. Two heads share each key load (one key load per FMA
 * bounds a one-head block); a head's chains are the same either way, so its
 * scores are the same bits. A `tail` block (compiled apart: the clamp cost
 * the full blocks ~10%) repeats key `last` past it and stores lanes ≤ last. */
BN_INLINE BN_AVX512 void score_block(const int P, const int half, const int tail, const float *q, int32_t hd,
                                     const void *k, size_t kt, size_t stride, int32_t last, __m256 vscale, float *s,
                                     size_t T) {
    __m512 acc[2][ATTN_KEYS];
    for (int p = 0; p < P; p++)
        for (int i = 0; i < ATTN_KEYS; i++) acc[p][i] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d += 16) {
        const __mmask16 m = mask16(hd - d);
        __m512 qv[2];
        for (int p = 0; p < P; p++) qv[p] = _mm512_maskz_loadu_ps(m, q + (size_t)p * (size_t)hd + d);
        for (int i = 0; i < ATTN_KEYS; i++) {
            const size_t row = (size_t)(tail ? bn_min_i32(i, last) : i);
            const __m512 key = kv_load(k, kt + row * stride + (size_t)d, m, half);
            for (int p = 0; p < P; p++) acc[p][i] = _mm512_fmadd_ps(qv[p], key, acc[p][i]);
        }
    }
    for (int p = 0; p < P; p++) {
        const __m256 r = _mm256_mul_ps(vscale, hsum8x16(acc[p]));
        if (tail)
            _mm256_mask_storeu_ps(s + (size_t)p * T, (__mmask8)((2u << last) - 1), r);
        else
            _mm256_storeu_ps(s + (size_t)p * T, r);
    }
}

/* The query heads that share a kv head (GQA: 4 in 2B4T) are processed
 * together, up to BN_ATTN_GROUP at a time, so each cached key and value row is
 * read once per group rather than once per head (re-reading a head's 1.5 MB
 * of cache at 1,500 positions from L3 cost more than the arithmetic). Per head
 * the arithmetic is unchanged, so results do not depend on the grouping.
 * q: (n_heads, hd), k, v: (T, kv_stride), scores: (BN_ATTN_GROUP, T) scratch →
 * out: (n_heads, hd), heads [head_begin, head_end) */
BN_INLINE BN_AVX512 void attention_body(const float *q, const void *k, const void *v, int32_t kv_stride, int32_t T,
                                        int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                        float *out, int32_t head_begin, int32_t head_end, const int half,
                                        const int stream) {
    const int32_t group = n_heads / n_kv_heads;
    const __m256 vscale = _mm256_set1_ps(scale);
    const size_t stride = (size_t)kv_stride;
    for (int32_t h0 = head_begin; h0 < head_end;) {
        const int32_t kv = h0 / group;
        const int32_t h1 = bn_min_i32(bn_min_i32(head_end, (kv + 1) * group), h0 + BN_ATTN_GROUP);
        const int32_t G = h1 - h0;
        const size_t off = (size_t)kv * (size_t)hd;
        /* scores: ATTN_KEYS cached positions at a time (their keys stay in L1
         * for every head of the group), then one transposing reduction. The
         * last block repeats its last key past T and stores only the first
         * lanes, so every score comes from the same chain. Unless
         * BN_ATTN_RESIDENT, the keys and then the values are requested as one
         * stream, BN_ATTN_AHEAD_ROWS rows ahead (bn_kv_request). */
        if (stream)
            for (int32_t r = 0; r < bn_min_i32(T, BN_ATTN_AHEAD_ROWS); r++) bn_kv_request(k, v, off, stride, r, T, hd, half);
        int32_t t = 0;
        for (; t + ATTN_KEYS <= T; t += ATTN_KEYS) {
            if (stream)
                for (int i = 0; i < ATTN_KEYS; i++) bn_kv_request(k, v, off, stride, t + BN_ATTN_AHEAD_ROWS + i, T, hd, half);
            const size_t kt = (size_t)t * stride + off; /* element index of the block's first key */
            int32_t g = 0;
            for (; g + 2 <= G; g += 2)
                score_block(2, half, 0, q + (size_t)(h0 + g) * (size_t)hd, hd, k, kt, stride, ATTN_KEYS - 1, vscale,
                            scores + (size_t)g * (size_t)T + t, (size_t)T);
            if (g < G)
                score_block(1, half, 0, q + (size_t)(h0 + g) * (size_t)hd, hd, k, kt, stride, ATTN_KEYS - 1, vscale,
                            scores + (size_t)g * (size_t)T + t, (size_t)T);
        }
        if (t < T) {
            const size_t kt = (size_t)t * stride + off;
            int32_t g = 0;
            for (; g + 2 <= G; g += 2)
                score_block(2, half, 1, q + (size_t)(h0 + g) * (size_t)hd, hd, k, kt, stride, T - t - 1, vscale,
                            scores + (size_t)g * (size_t)T + t, (size_t)T);
            if (g < G)
                score_block(1, half, 1, q + (size_t)(h0 + g) * (size_t)hd, hd, k, kt, stride, T - t - 1, vscale,
                            scores + (size_t)g * (size_t)T + t, (size_t)T);
        }
        for (int32_t g = 0; g < G; g++) bn_softmax_avx512(scores + (size_t)g * (size_t)T, T);
        const void *vh = kv_at(v, off, half);
        float *oh = out + (size_t)h0 * (size_t)hd;
        switch (G) { /* S = 4, 2 or 1 column vectors per pass: at most 24 zmm live */
        case 1: values_group(1, 4, half, stream, vh, stride, T, hd, scores, oh); break;
        case 2: values_group(2, 4, half, stream, vh, stride, T, hd, scores, oh); break;
        case 3: values_group(3, 2, half, stream, vh, stride, T, hd, scores, oh); break;
        case 4: values_group(4, 2, half, stream, vh, stride, T, hd, scores, oh); break;
        case 5: values_group(5, 1, half, stream, vh, stride, T, hd, scores, oh); break;
        case 6: values_group(6, 1, half, stream, vh, stride, T, hd, scores, oh); break;
        case 7: values_group(7, 1, half, stream, vh, stride, T, hd, scores, oh); break;
        default: values_group(8, 1, half, stream, vh, stride, T, hd, scores, oh); break;
        }
        h0 = h1;
    }
}

BN_AVX512 void bn_attention_avx512(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                                   int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                   float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    if (flags & BN_ATTN_RESIDENT) /* two copies, each with its requests compiled in or out */
        attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 0, 0);
    else
        attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 0, 1);
}

BN_AVX512 void bn_attention_f16_avx512(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride,
                                       int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale,
                                       float *scores, float *out, int32_t head_begin, int32_t head_end, int32_t flags) {
    if (flags & BN_ATTN_RESIDENT) /* two copies, each with its requests compiled in or out */
        attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 1, 0);
    else
        attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 1, 1);
}
#endif
