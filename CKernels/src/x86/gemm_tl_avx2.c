/* AVX2 twins of the TL1 / TL2 scalar kernels (src/scalar/gemm_tl_scalar.c).
 * A 32-byte quarter of a group is 16 rows of two pairs (lane 0: pair 2h,
 * lane 1: pair 2h+1), two 4-bit indices per byte (low nibble: the pair's
 * first slot). A table is 16 int16 entries kept as two 16-byte planes (low
 * bytes, high bytes), stored so that one 32-byte load holds the tables the
 * two lanes need; pshufb looks up 32 entries, unpacking the planes gives the
 * int16 values. TL2 signs: the 32 sign bits of such a quarter (one per byte)
 * become byte masks; XOR with the mask turns both bytes of T into ~T = -T - 1
 * (the driver adds the per-row count of negative slots back). int16 sums
 * run over at most 64 slots (|~T| ≤ 385: ≤ 24,640) before widening. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BN_INLINE static inline __attribute__((always_inline))

enum { WIDEN_SLOTS = 64 };
/* The lookups cost more time per byte than I2_S's dot products, and the
 * hardware prefetcher alone left DRAM idle: fetch 8 KiB ahead (measured on
 * Zen 4: an out-of-cache TL2 GEMV went from ~7 to ~20 GB/s). */
#define BN_TL_PREFETCH 8192

/* The 16 table entries of one slot as int16 (lanes: entries 0-7 | 8-15),
 * then split into [low bytes of 0..15 | high bytes of 0..15]. Shared with
 * the AVX-512 kernels (bn_tl_x86_build). */
BN_INLINE BN_AVX2 __m256i slot_table(const int8_t *x, int32_t k_pad, int32_t s, int32_t type) {
    /* digit patterns of entries 0..15: d0, d1, d2 */
    const __m256i t2d0 = _mm256_setr_epi16(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
    const __m256i t2d1 = _mm256_setr_epi16(0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0);
    const __m256i t2d2 = _mm256_setr_epi16(0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0);
    const __m256i t1d0 = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i t1d1 = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    int32_t a0, a1, a2 = 0;
    if (type == 1) {
        const int32_t c = 2 * s;
        if (c + 1 < k_pad) { a0 = x[c]; a1 = x[c + 1]; }
        else { a0 = bn_tl_act(x, k_pad, c); a1 = bn_tl_act(x, k_pad, c + 1); }
    } else {
        const int32_t c = 3 * s;
        if (c + 2 < k_pad) { a0 = x[c]; a1 = x[c + 1]; a2 = x[c + 2]; }
        else { a0 = bn_tl_act(x, k_pad, c); a1 = bn_tl_act(x, k_pad, c + 1); a2 = bn_tl_act(x, k_pad, c + 2); }
    }
    __m256i t = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16((short)a0), type == 1 ? t1d0 : t2d0),
                                 _mm256_sign_epi16(_mm256_set1_epi16((short)a1), type == 1 ? t1d1 : t2d1));
    if (type == 2) t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16((short)a2), t2d2));
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    t = _mm256_shuffle_epi8(t, split); /* [lo 0-7, hi 0-7 | lo 8-15, hi 8-15] */
    return _mm256_permute4x64_epi64(t, 0xD8); /* [lo 0-15 | hi 0-15] */
}

/* x86 table format (AVX2 and AVX-512), per quad q of slots, 128 bytes:
 *   [lo(4q) lo(4q+2)] [hi(4q) hi(4q+2)] [lo(4q+1) lo(4q+3)] [hi(4q+1) hi(4q+3)]
 * (16-byte planes), the register shape of a 32-byte half-group: lane 0 is
 * pair 2h's 16 rows, lane 1 pair 2h+1's. */
BN_AVX2 void bn_tl_x86_build(uint8_t *lut, const int8_t *x, int32_t k_pad, int32_t s0, int32_t ns, int32_t type) {
    for (int32_t s = 0; s < ns; s++) {
        const __m256i t = slot_table(x, k_pad, s0 + s, type);
        uint8_t *base = lut + (size_t)(s / 4) * 128 + (size_t)(s & 1) * 64 + (size_t)((s >> 1) & 1) * 16;
        _mm_storeu_si128((__m128i *)base, _mm256_castsi256_si128(t));
        _mm_storeu_si128((__m128i *)(base + 32), _mm256_extracti128_si256(t, 1));
    }
}

/* 32 sign bits (bit b ↔ byte b of the index vector) → 32 byte masks */
BN_INLINE BN_AVX2 __m256i sign_mask(const uint8_t *p) {
    int32_t bits;
    memcpy(&bits, p, 4);
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(bits), sel), bit);
    return _mm256_cmpeq_epi8(b, bit);
}

BN_INLINE BN_AVX2 void lookup(__m256i idx, const uint8_t *t, __m256i m, __m256i *lo, __m256i *hi, const int tl2) {
    __m256i l = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)t), idx);
    __m256i h = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(t + 32)), idx);
    if (tl2) {
        l = _mm256_xor_si256(l, m);
        h = _mm256_xor_si256(h, m);
    }
    *lo = _mm256_add_epi16(*lo, _mm256_unpacklo_epi8(l, h)); /* rows 0-7 of each lane's 16 */
    *hi = _mm256_add_epi16(*hi, _mm256_unpackhi_epi8(l, h)); /* rows 8-15 */
}

BN_INLINE BN_AVX2 __m256i widen8(__m256i a) { /* the two lanes hold the same 8 rows */
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)));
}

BN_INLINE BN_AVX2 void tile_body(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc,
                                 const int tl2) {
    const int32_t gbytes = tl2 ? BN_TL2_GROUP_BYTES : BN_TL1_GROUP_BYTES;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i zero = _mm256_setzero_si256();
    for (int32_t b0 = 0; b0 < ns; b0 += WIDEN_SLOTS) {
        const int32_t b1 = bn_min_i32(ns, b0 + WIDEN_SLOTS);
        __m256i a[4] = {zero, zero, zero, zero}; /* rows 0-7, 8-15, 16-23, 24-31 (int16) */
        for (int32_t s = b0; s < b1; s += BN_TL_GROUP_SLOTS) {
            const uint8_t *g = tile + (size_t)((s0 + s) / BN_TL_GROUP_SLOTS) * (size_t)gbytes;
            const uint8_t *t = lut + (size_t)s * 32;
            _mm_prefetch((const char *)(g + BN_TL_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)(g + BN_TL_PREFETCH + 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(g + BN_TL_PREFETCH + 128), _MM_HINT_T0);
            for (int h = 0; h < 2; h++)
                for (int rh = 0; rh < 2; rh++) {
                    /* rows 16rh.. of pairs 2h (lane 0) and 2h+1 (lane 1) */
                    const __m256i v = _mm256_loadu_si256((const __m256i *)(g + 64 * h + 32 * rh));
                    const __m256i n0 = _mm256_and_si256(v, low4);
                    const __m256i n1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
                    const __m256i m0 = tl2 ? sign_mask(g + 128 + 16 * h + 4 * rh) : zero;
                    const __m256i m1 = tl2 ? sign_mask(g + 128 + 16 * h + 8 + 4 * rh) : zero;
                    lookup(n0, t + 128 * h, m0, &a[2 * rh], &a[2 * rh + 1], tl2);
                    lookup(n1, t + 128 * h + 64, m1, &a[2 * rh], &a[2 * rh + 1], tl2);
                }
        }
        for (int i = 0; i < 4; i++) {
            __m256i *p = (__m256i *)(acc + 8 * i);
            _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), widen8(a[i])));
        }
    }
}

static BN_AVX2 void tile_avx2(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc,
                              int32_t type) {
    if (type == 2) tile_body(tile, s0, ns, lut, acc, 1);
    else tile_body(tile, s0, ns, lut, acc, 0);
}

static const bn_tl_ops ops_avx2 = {32, 1, bn_tl_x86_build, tile_avx2};

void bn_tl1_gemm_avx2(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                      int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_avx2, w, x, x_scale, n, y, ldy, row_begin, row_end);
}

void bn_tl2_gemm_avx2(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                      int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_avx2, w, x, x_scale, n, y, ldy, row_begin, row_end);
}
#endif
