/* AVX2 twins of bn_i2s_gemm_scalar (src/scalar/gemm_i2s_scalar.c). A 64-byte
 * I2_R16 chunk is handled as two 32-byte halves of 8 rows × 16 columns;
 * plane s of a half is 8 rows × 4 columns, one pmaddubsw operand against a
 * broadcast activation word. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BN_INLINE static inline __attribute__((always_inline))

/* pmaddubsw of codes ≤ 3 with int8: int16 lanes of magnitude ≤ 768. Up to
 * 8 chunks × 4 planes = 32 of them (≤ 24,576) are summed in int16 before
 * pmaddwd widens, so nothing saturates. */
enum { CHUNKS_PER_WIDEN = 8, TILE_T = 4, GEMV_PREFETCH = 4096 /* see gemm_i2s_avx512.c */ };

BN_INLINE BN_AVX2 __m256i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

BN_INLINE BN_AVX2 __m256i dot4(__m256i v, const int8_t *xc) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i s = _mm256_maddubs_epi16(_mm256_and_si256(v, m3), bcast32(xc));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 2), m3), bcast32(xc + 4)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m3), bcast32(xc + 8)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 6), m3), bcast32(xc + 12)));
    return s;
}

BN_INLINE BN_AVX2 void store8(float *y, __m256i acc, int32_t sum, float factor, int32_t row0, int32_t end) {
    const int32_t valid = end - row0;
    if (valid <= 0) return;
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, _mm256_set1_epi32(sum))),
                                   _mm256_set1_ps(factor));
    if (valid >= 8) {
        _mm256_storeu_ps(y + row0, v);
    } else {
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_maskstore_ps(y + row0, _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), idx), v);
    }
}

// w: (m_pad, k_pad) I2_R16, x: (1, k_pad) int8 → y: (m,) f32 rows [row_begin, row_end)
BN_AVX2 void bn_i2s_gemv_avx2(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                              const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end) {
    (void)n;
    (void)ldy;
    const int32_t end = bn_min_i32(row_end, w->m), nchunks = w->k_pad / BN_I2R16_CHUNK_COLS;
    const float factor = w->scale / x_scale[0];
    const __m256i ones = _mm256_set1_epi16(1);
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        const uint8_t *p = w->data + bn_i2r16_chunk_offset(w->k_pad, g, 0);
        __m256i lo = _mm256_setzero_si256(), hi = lo; /* rows 0-7, rows 8-15 (int32) */
        for (int32_t c0 = 0; c0 < nchunks; c0 += CHUNKS_PER_WIDEN) {
            const int32_t c1 = bn_min_i32(nchunks, c0 + CHUNKS_PER_WIDEN);
            __m256i slo = _mm256_setzero_si256(), shi = slo; /* int16 partial sums */
            for (int32_t c = c0; c < c1; c++) {
                _mm_prefetch((const char *)(p + (size_t)c * 64 + GEMV_PREFETCH), _MM_HINT_T0);
                const int8_t *xc = x + c * BN_I2R16_CHUNK_COLS;
                slo = _mm256_add_epi16(slo, dot4(_mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64)), xc));
                shi = _mm256_add_epi16(shi, dot4(_mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64 + 32)), xc));
            }
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(slo, ones));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(shi, ones));
        }
        store8(y, lo, x_sum[0], factor, g * BN_I2R16_ROWS, end);
        store8(y, hi, x_sum[0], factor, g * BN_I2R16_ROWS + 8, end);
    }
}

/* One register tile: 8 rows (half h of group g) × activation rows t0 .. t0+T. */
BN_INLINE BN_AVX2 void tile(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                            const int32_t *x_sum, float *y, int32_t ldy, int32_t g, int h, int32_t t0,
                            const int T, int32_t end) {
    const int32_t k_pad = w->k_pad, nchunks = k_pad / BN_I2R16_CHUNK_COLS;
    const uint8_t *p = w->data + bn_i2r16_chunk_offset(k_pad, g, 0) + 32 * h;
    const int8_t *xt = x + (size_t)t0 * (size_t)k_pad;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[TILE_T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_si256();
    for (int32_t c = 0; c < nchunks; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64));
        const int8_t *xc = xt + c * BN_I2R16_CHUNK_COLS;
#pragma clang loop unroll(full)
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(dot4(v, xc + (size_t)t * (size_t)k_pad), ones));
    }
    for (int t = 0; t < T; t++)
        store8(y + (size_t)(t0 + t) * (size_t)ldy, acc[t], x_sum[t0 + t], w->scale / x_scale[t0 + t],
               g * BN_I2R16_ROWS + 8 * h, end);
}

// w: (m_pad, k_pad) I2_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, row_end)
BN_AVX2 void bn_i2s_gemm_avx2(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                              const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++)
        for (int h = 0; h < 2; h++) {
            int32_t t0 = 0;
            for (; t0 + TILE_T <= n; t0 += TILE_T) tile(w, x, x_scale, x_sum, y, ldy, g, h, t0, TILE_T, end);
            for (; t0 < n; t0++) tile(w, x, x_scale, x_sum, y, ldy, g, h, t0, 1, end);
        }
}
#endif
