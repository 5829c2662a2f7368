/* AVX-512 (F/BW) twins of the TL1 / TL2 scalar kernels. One 64-byte load is
 * half a group: 32 rows × 4 slots, lanes = (pair 2h, pair 2h+1) × (rows
 * 0-15, rows 16-31); the low nibbles index slots 4h / 4h+2, the high
 * nibbles 4h+1 / 4h+3. The tables are the AVX2 format (bn_tl_x86_build):
 * one 32-byte broadcast load per plane gives every lane its slot's table;
 * a TL2 sign mask is one 64-bit load into a mask register (the sign bits
 * are ordered for it), applied with a masked byte subtract. Same ~T / int16 bounds as the AVX2 version. Needs
 * only AVX-512BW (vpshufb zmm), so it serves the avx512 and avx512vnni
 * tables; VBMI is not used. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define BN_INLINE static inline __attribute__((always_inline))

enum { WIDEN_SLOTS = 64 };
/* software prefetch 8 KiB ahead: see gemm_tl_avx2.c */
#define BN_TL_PREFETCH 8192

/* t: the 32-byte planes [A B] of two slots, broadcast to [A B A B];
 * bytes under mask m become ~b = 255 - b (per byte, no borrow): T → ~T */
BN_INLINE BN_AVX512 void lookup(__m512i idx, const uint8_t *t, __mmask64 m, __m512i *lo, __m512i *hi, const int tl2) {
    __m512i l = _mm512_shuffle_epi8(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)t)), idx);
    __m512i h = _mm512_shuffle_epi8(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(t + 32))), idx);
    if (tl2) {
        const __m512i ones = _mm512_set1_epi8(-1);
        l = _mm512_mask_sub_epi8(l, m, ones, l);
        h = _mm512_mask_sub_epi8(h, m, ones, h);
    }
    *lo = _mm512_add_epi16(*lo, _mm512_unpacklo_epi8(l, h));
    *hi = _mm512_add_epi16(*hi, _mm512_unpackhi_epi8(l, h));
}

BN_INLINE BN_AVX512 __mmask64 sign_mask(const uint8_t *p) {
    uint64_t bits;
    memcpy(&bits, p, 8);
    return _cvtu64_mask64(bits);
}

BN_INLINE BN_AVX512 __m256i widen8(__m256i a) { /* the two lanes hold the same 8 rows */
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)));
}

BN_INLINE BN_AVX512 void tile_body(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc,
                                   const int tl2) {
    const int32_t gbytes = tl2 ? BN_TL2_GROUP_BYTES : BN_TL1_GROUP_BYTES;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int32_t b0 = 0; b0 < ns; b0 += WIDEN_SLOTS) {
        const int32_t b1 = bn_min_i32(ns, b0 + WIDEN_SLOTS);
        __m512i lo = _mm512_setzero_si512(), hi = lo;
        for (int32_t s = b0; s < b1; s += BN_TL_GROUP_SLOTS) {
            const uint8_t *g = tile + (size_t)((s0 + s) / BN_TL_GROUP_SLOTS) * (size_t)gbytes;
            const uint8_t *t = lut + (size_t)s * 32;
            _mm_prefetch((const char *)(g + BN_TL_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)(g + BN_TL_PREFETCH + 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(g + BN_TL_PREFETCH + 128), _MM_HINT_T0);
            for (int h = 0; h < 2; h++) {
                /* lanes: pair 2h rows 0-15, pair 2h+1 rows 0-15, pair 2h rows 16-31, pair 2h+1 rows 16-31 */
                const __m512i v = _mm512_loadu_si512(g + 64 * h);
                const __m512i n0 = _mm512_and_si512(v, low4);
                const __m512i n1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
                const __mmask64 m0 = tl2 ? sign_mask(g + 128 + 16 * h) : 0;
                const __mmask64 m1 = tl2 ? sign_mask(g + 128 + 16 * h + 8) : 0;
                lookup(n0, t + 128 * h, m0, &lo, &hi, tl2);
                lookup(n1, t + 128 * h + 64, m1, &lo, &hi, tl2);
            }
        }
        /* lo: rows 0-7, 0-7, 16-23, 16-23; hi: rows 8-15, 8-15, 24-31, 24-31 */
        const __m256i r[4] = {widen8(_mm512_castsi512_si256(lo)), widen8(_mm512_castsi512_si256(hi)),
                              widen8(_mm512_extracti64x4_epi64(lo, 1)), widen8(_mm512_extracti64x4_epi64(hi, 1))};
        for (int i = 0; i < 4; i++) {
            __m256i *p = (__m256i *)(acc + 8 * i);
            _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), r[i]));
        }
    }
}

static BN_AVX512 void tile_avx512(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc,
                                  int32_t type) {
    if (type == 2) tile_body(tile, s0, ns, lut, acc, 1);
    else tile_body(tile, s0, ns, lut, acc, 0);
}

static const bn_tl_ops ops_avx512 = {32, 1, bn_tl_x86_build, tile_avx512};

void bn_tl1_gemm_avx512(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_avx512, w, x, x_scale, n, y, ldy, row_begin, row_end);
}

void bn_tl2_gemm_avx512(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_avx512, w, x, x_scale, n, y, ldy, row_begin, row_end);
}
#endif
