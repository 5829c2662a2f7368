/* AVX2 + FMA + F16C twins of the float ops (src/scalar/ops_scalar.c).
 *
 * add, axpy, f16_to_f32, rope and gate_relu2 compute the scalar expression
 * lane by lane (products rounded before the add, no FMA), so they are
 * bit-identical to the scalar twins; tails run the scalar expression itself.
 * The reductions (dot, rmsnorm, f16_gemm, attention) use FMA and several
 * partial sums, and softmax / gate_silu use exp8 below, so those agree with
 * the scalar twins to the tolerances stated in Tests/c/test_ops.c. */
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

/* f16_gemm: one weight row at a time against a group of up to ROW_TOKENS
 * activation rows (4 accumulator chains per activation row: 12 of the 16 ymm).
 * Loop order: ROW_CHUNK weight rows (32 × 5 KB at k = 2560, in L2) meet one
 * group after the other, the group's activations (≤ 60 KB) staying in L1/L2
 * while the chunk's rows pass; the first group brings each row from memory,
 * the others find it in L2. (Rows innermost for one group at a time: with
 * all activation rows against each weight row instead, the whole batch was
 * re-read from L2 for every weight row, 2.6× slower at n = 16 on AVX2.) */
enum { ROW_TOKENS = 3, ROW_CHUNK = 32, ATTN_KEYS = 8, PREFETCH_BYTES = 1024 };

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

/* The last cnt < 8 halves of a row, zero padded, so the tail is one more full step. */
BN_INLINE BN_AVX2 __m256 load_ph_tail(const uint16_t *p, int32_t cnt) {
    uint16_t buf[8] = {0};
    memcpy(buf, p, (size_t)cnt * sizeof(uint16_t));
    return load_ph(buf);
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

/* The dot products of one weight row with T activation rows (k apart):
 * y[t*ldy] = Σ_c f32(wr[c])·x[t*k + c].
 *
 * Batch invariance: every (row, activation row) pair runs the same f32
 * operations whatever T is — four chains, chain i taking columns
 * [c + 8i, c + 8i + 8) of every 32-column step, then 8 at a time on chain 0,
 * the masked tail on chain 1, ((a0 + a1) + (a2 + a3)) and hsum8 — so
 * f16_gemm(n) equals n calls of f16_gemm(1) bit for bit (test_ops.c).
 *
 * One weight row at a time, also for n == 1: measured on Zen 5 (128256 ×
 * 2560, one core) one row streamed front to back reads at the core's read
 * bandwidth (~35 GB/s), while four interleaved rows sharing each x load
 * reached only ~20 GB/s: the hardware prefetcher follows one stream far
 * better than four, and x (10 KB) stays in L1 either way. For n > 1 each
 * converted weight vector serves T activation rows. The software prefetch
 * PREFETCH_BYTES ahead is a hint (it never faults; near the end of the range
 * it touches the next rows). Its distance matters on AVX2-only hosts: on a
 * Zen 3 EPYC (one core, 128256 × 2560 head read from the model's file
 * mapping, 7 interleaved runs) 1 KiB ahead streamed at 18.3 GB/s median,
 * no prefetch 15.8 and 4 KiB 13.3, against 19.8 GB/s for a plain read of the
 * same pages; 768 B–1 KiB was best at 1 and 2 threads. (The I2_S GEMV, with
 * fewer instructions per byte, is best at 4 KiB on the same host.) */
BN_INLINE BN_AVX2 void row_dots(const uint16_t *wr, int32_t k, const float *x, float *y, size_t ldy, const int T) {
    __m256 a[4][ROW_TOKENS];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < T; t++) a[i][t] = _mm256_setzero_ps();
    int32_t c = 0;
    for (; c + 32 <= k; c += 32) {
        _mm_prefetch((const char *)(wr + c) + PREFETCH_BYTES, _MM_HINT_T0);
        for (int i = 0; i < 4; i++) {
            const __m256 wv = load_ph(wr + c + 8 * i);
            for (int t = 0; t < T; t++)
                a[i][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (size_t)t * (size_t)k + c + 8 * i), a[i][t]);
        }
    }
    for (; c + 8 <= k; c += 8) {
        const __m256 wv = load_ph(wr + c);
        for (int t = 0; t < T; t++)
            a[0][t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (size_t)t * (size_t)k + c), a[0][t]);
    }
    if (c < k) {
        const __m256i m = tail_mask(k - c);
        const __m256 wv = load_ph_tail(wr + c, k - c);
        for (int t = 0; t < T; t++)
            a[1][t] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + (size_t)t * (size_t)k + c, m), a[1][t]);
    }
    for (int t = 0; t < T; t++)
        y[(size_t)t * ldy] = hsum8(_mm256_add_ps(_mm256_add_ps(a[0][t], a[1][t]), _mm256_add_ps(a[2][t], a[3][t])));
}

/* row_dots with T as a compile-time constant (the accumulators stay in registers). */
static BN_AVX2 void row_dots_n(const uint16_t *wr, int32_t k, const float *x, float *y, size_t ldy, int32_t T) {
    switch (T) {
    case 1: row_dots(wr, k, x, y, ldy, 1); break;
    case 2: row_dots(wr, k, x, y, ldy, 2); break;
    default: row_dots(wr, k, x, y, ldy, 3); break;
    }
}

// w: (m, k) f16, x: (n, k) f32 → y: (n, ldy) f32, rows [row_begin, row_end)
BN_AVX2 void bn_f16_gemm_avx2(const uint16_t *w, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end) {
    /* activation rows in groups of at most ROW_TOKENS, sizes within one of each other */
    const int32_t groups = (n + ROW_TOKENS - 1) / ROW_TOKENS;
    for (int32_t rc = row_begin; rc < row_end; rc += ROW_CHUNK) {
        const int32_t re = bn_min_i32(row_end, rc + ROW_CHUNK);
        for (int32_t g = 0; g < groups; g++) {
            const int32_t ta = n * g / groups, tb = n * (g + 1) / groups;
            for (int32_t r = rc; r < re; r++)
                row_dots_n(w + (size_t)r * (size_t)k, k, x + (size_t)ta * (size_t)k, y + (size_t)ta * (size_t)ldy + r,
                           (size_t)ldy, tb - ta);
        }
    }
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
                                      float *out, int32_t head_begin, int32_t head_end, const int half) {
    const int32_t group = n_heads / n_kv_heads, hv = hd & ~7;
    const __m256i dm = tail_mask(hd - hv);
    const __m256 vscale = _mm256_set1_ps(scale);
    const size_t stride = (size_t)kv_stride;
    for (int32_t h = head_begin; h < head_end; h++) {
        const float *qh = q + (size_t)h * (size_t)hd;
        const size_t off = (size_t)(h / group) * (size_t)hd;
        /* the first head of its kv head in this call streams the block in (bn_kv_request; its
         * value pass requests its own columns ahead too); the others find it in L2 (T·hd·8
         * bytes, 354 KB at 346 positions in 2B4T) */
        const int first = h == head_begin || h % group == 0;
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
                               float *out, int32_t head_begin, int32_t head_end) {
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 0);
}

BN_AVX2 void bn_attention_f16_avx2(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                                   int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                   float *out, int32_t head_begin, int32_t head_end) {
    attention_body(q, k, v, kv_stride, T, n_heads, n_kv_heads, hd, scale, scores, out, head_begin, head_end, 1);
}
#endif
