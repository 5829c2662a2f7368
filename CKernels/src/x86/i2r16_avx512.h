/* I2_R16 helpers shared by the AVX-512 ternary kernels (gemm_i2s_avx512.c)
 * and the AMX one (gemm_i2s_amx.c), so both decode the planes and write
 * outputs with the same instructions: the epilogue must be one expression in
 * every twin for the outputs to match the scalar spec bit for bit. */
#ifndef BN_I2R16_AVX512_H
#define BN_I2R16_AVX512_H
#include <immintrin.h>
#include <stdint.h>

#define BN_I2R16_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512bw")))

/* y[row0 .. row0+16) ∩ [.., end) = (acc - sum) · factor, as in the scalar spec */
BN_I2R16_AVX512_INLINE void bn_i2r16_store16(float *y, __m512i acc, int32_t sum, float factor, int32_t row0,
                                             int32_t end) {
    const int32_t valid = end - row0;
    if (valid <= 0) return;
    const __mmask16 m = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
    const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_set1_epi32(sum))),
                                   _mm512_set1_ps(factor));
    _mm512_mask_storeu_ps(y + row0, m, v);
}

/* The four planes of a 64-byte chunk as unsigned codes 0..3 in bytes:
 * plane s is 16 rows × 4 columns, the operand of vpdpbusd and one AMX B-tile row. */
BN_I2R16_AVX512_INLINE void bn_i2r16_planes(__m512i v, __m512i out[4]) {
    const __m512i m3 = _mm512_set1_epi8(3);
    out[0] = _mm512_and_si512(v, m3);
    out[1] = _mm512_and_si512(_mm512_srli_epi16(v, 2), m3);
    out[2] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m3);
    out[3] = _mm512_and_si512(_mm512_srli_epi16(v, 6), m3);
}

#endif
