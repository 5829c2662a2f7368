/* AVX-512 twin of bn_quantize_scalar (src/scalar/quantize_scalar.c): same result bit for bit. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// x: (n, ldx) f32 → q: (n, k_pad) int8, scale: (n,), sum: (n,)
BN_AVX512 void bn_quantize_avx512(const float *x, int32_t n, int32_t k, int32_t ldx,
                                  int8_t *q, int32_t k_pad, float *scale, int32_t *sum) {
    for (int32_t t = 0; t < n; t++) {
        const float *row = x + (size_t)t * (size_t)ldx;
        int8_t *qrow = q + (size_t)t * (size_t)k_pad;
        __m512 vmax = _mm512_setzero_ps();
        for (int32_t i = 0; i < k; i += 16) {
            const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - i)) - 1);
            /* max(|v|, acc): a NaN operand yields acc, as in the scalar spec */
            vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, row + i)), vmax);
        }
        const float amax = _mm512_reduce_max_ps(vmax);
        const float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
        const __m512 vs = _mm512_set1_ps(s);
        const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
        __m512i vsum = _mm512_setzero_si512();
        for (int32_t i = 0; i < k; i += 16) {
            const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - i)) - 1);
            /* cvtps rounds half to even (default MXCSR) and maps NaN to INT_MIN → -128 */
            __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + i), vs));
            r = _mm512_maskz_mov_epi32(m, _mm512_min_epi32(_mm512_max_epi32(r, lo), hi));
            vsum = _mm512_add_epi32(vsum, r);
            _mm512_mask_cvtsepi32_storeu_epi8(qrow + i, m, r);
        }
        if (k_pad > k) memset(qrow + k, 0, (size_t)(k_pad - k));
        scale[t] = s;
        sum[t] = _mm512_reduce_add_epi32(vsum);
    }
}
#endif
