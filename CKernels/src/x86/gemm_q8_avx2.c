/* AVX2 twin of bn_q8_gemm_scalar (src/scalar/gemm_q8_scalar.c), also used by
 * AVX-512 CPUs without VNNI. pmaddubsw needs one unsigned operand: |w| with
 * w's sign moved onto q keeps every pair ≤ 2·127·127 = 32258 (no saturation,
 * which is why activations are clamped to [-127, 127]). */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BN_INLINE static inline __attribute__((always_inline))

BN_INLINE BN_AVX2 __m256i bcast_q(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_max_epi8(_mm256_set1_epi32(v), _mm256_set1_epi8(-127));
}

/* 8 rows × 4 columns of one half chunk against one activation word → int32 per row */
BN_INLINE BN_AVX2 __m256i dot8(__m256i wv, __m256i q) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(q, wv));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// w: (m_pad, k_pad) Q8_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
BN_AVX2 void bn_q8_gemm_avx2(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                             int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), chunks = w->k_pad / 4;
    for (int32_t g = row_begin / 16; g * 16 < end; g++) {
        const int8_t *p = w->data + (size_t)g * (size_t)w->k_pad * 16;
        for (int32_t t = 0; t < n; t++) {
            const int8_t *xt = x + (size_t)t * (size_t)w->k_pad;
            __m256i lo = _mm256_setzero_si256(), hi = lo;
            for (int32_t c = 0; c < chunks; c++) {
                const __m256i q = bcast_q(xt + 4 * c);
                lo = _mm256_add_epi32(lo, dot8(_mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64)), q));
                hi = _mm256_add_epi32(hi, dot8(_mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64 + 32)), q));
            }
            int32_t dots[16];
            _mm256_storeu_si256((__m256i *)dots, lo);
            _mm256_storeu_si256((__m256i *)(dots + 8), hi);
            for (int32_t i = 0; i < 16 && g * 16 + i < end; i++) {
                const int32_t r = g * 16 + i;
                y[(size_t)t * (size_t)ldy + (size_t)r] = (float)dots[i] * (w->row_scale[r] / x_scale[t]);
            }
        }
    }
}
#endif
