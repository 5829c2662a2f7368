/* AVX2 twin of bn_quantize_scalar (src/scalar/quantize_scalar.c): same result bit for bit. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "internal.h"

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))

static inline BN_AVX2 float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

// x: (n, ldx) f32 → q: (n, k_pad) int8, scale: (n,), sum: (n,)
BN_AVX2 void bn_quantize_avx2(const float *x, int32_t n, int32_t k, int32_t ldx,
                              int8_t *q, int32_t k_pad, float *scale, int32_t *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int32_t t = 0; t < n; t++) {
        const float *row = x + (size_t)t * (size_t)ldx;
        int8_t *qrow = q + (size_t)t * (size_t)k_pad;
        __m256 vmax = _mm256_setzero_ps();
        int32_t i = 0;
        for (; i + 8 <= k; i += 8) /* max(|v|, acc): a NaN operand yields acc, as in the scalar spec */
            vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(row + i)), vmax);
        float amax = hmax8(vmax);
        for (; i < k; i++) {
            const float a = fabsf(row[i]);
            amax = a > amax ? a : amax;
        }
        const float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
        const __m256 vs = _mm256_set1_ps(s);
        const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
        __m256i vsum = _mm256_setzero_si256();
        i = 0;
        for (; i + 32 <= k; i += 32) {
            __m256i r[4];
            for (int j = 0; j < 4; j++) {
                /* cvtps rounds half to even (default MXCSR) and maps NaN to INT_MIN → -128 */
                r[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i + 8 * j), vs));
                r[j] = _mm256_min_epi32(_mm256_max_epi32(r[j], lo), hi);
                vsum = _mm256_add_epi32(vsum, r[j]);
            }
            /* packs work per 128-bit lane; the permute restores element order */
            const __m256i p16a = _mm256_packs_epi32(r[0], r[1]), p16b = _mm256_packs_epi32(r[2], r[3]);
            const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
            const __m256i ordered = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(qrow + i), ordered);
        }
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(vsum), _mm256_extracti128_si256(vsum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        int32_t total = _mm_cvtsi128_si32(s4);
        for (; i < k; i++) {
            float v = rintf(row[i] * s);
            v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
            const int8_t qi = (v == v) ? (int8_t)v : (int8_t)-128;
            qrow[i] = qi;
            total += qi;
        }
        if (k_pad > k) memset(qrow + k, 0, (size_t)(k_pad - k));
        scale[t] = s;
        sum[t] = total;
    }
}
#endif
