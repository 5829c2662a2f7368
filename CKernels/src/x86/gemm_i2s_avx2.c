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
enum { CHUNKS_PER_WIDEN = 8, TILE_T = 4, GEMV_PREFETCH = 4096 /* see gemm_i2s_avx512.c */, GEMM_PREFETCH = 2048 };

BN_INLINE BN_AVX2 __m256i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
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

/* The GEMV decodes planes in pairs: one shift by 4 serves planes 2 and 3, and
 * planes 1 and 3 are masked in place (0x0C), so they enter pmaddubsw as 4·code
 * and go to their own int16 sums, divided by 4 (exactly) after widening.
 * That is 5 shift/and per 32-byte half instead of 7: from cache a Zen 3 core
 * ran the GEMV at 23.5 GB/s instead of 22.8; out of cache the gain was inside
 * that host's noise. Bounds: a lane of the ×4 sums takes 2·(2·12·128) = 6144
 * per chunk, so CHUNKS_PER_WIDEN_GEMV = 5 chunks stay ≤ 30,720; the ×1 sums
 * take half that. */
enum { CHUNKS_PER_WIDEN_GEMV = 5 };

/* int16 pair sums of two planes masked by m: plane (v & m) against a, plane ((v >> 4) & m) against b */
BN_INLINE BN_AVX2 __m256i plane_pair(__m256i v, __m256i v4, __m256i m, __m256i a, __m256i b) {
    return _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(v, m), a),
                            _mm256_maddubs_epi16(_mm256_and_si256(v4, m), b));
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
    const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        const uint8_t *p = w->data + bn_i2r16_chunk_offset(w->k_pad, g, 0);
        __m256i lo = _mm256_setzero_si256(), hi = lo; /* rows 0-7, rows 8-15 (int32) */
        for (int32_t c0 = 0; c0 < nchunks; c0 += CHUNKS_PER_WIDEN_GEMV) {
            const int32_t c1 = bn_min_i32(nchunks, c0 + CHUNKS_PER_WIDEN_GEMV);
            /* int16 sums: planes 0 and 2 (×1), planes 1 and 3 (×4), per half */
            __m256i lo1 = _mm256_setzero_si256(), lo4 = lo1, hi1 = lo1, hi4 = lo1;
            for (int32_t c = c0; c < c1; c++) {
                _mm_prefetch((const char *)(p + (size_t)c * 64 + GEMV_PREFETCH), _MM_HINT_T0);
                const int8_t *xc = x + c * BN_I2R16_CHUNK_COLS;
                const __m256i b0 = bcast32(xc), b1 = bcast32(xc + 4), b2 = bcast32(xc + 8), b3 = bcast32(xc + 12);
                const __m256i vl = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64));
                const __m256i vh = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64 + 32));
                const __m256i tl = _mm256_srli_epi16(vl, 4), th = _mm256_srli_epi16(vh, 4);
                lo1 = _mm256_add_epi16(lo1, plane_pair(vl, tl, m3, b0, b2));
                lo4 = _mm256_add_epi16(lo4, plane_pair(vl, tl, m12, b1, b3));
                hi1 = _mm256_add_epi16(hi1, plane_pair(vh, th, m3, b0, b2));
                hi4 = _mm256_add_epi16(hi4, plane_pair(vh, th, m12, b1, b3));
            }
            /* the ×4 sums are multiples of 4: the arithmetic shift divides exactly */
            lo = _mm256_add_epi32(lo, _mm256_add_epi32(_mm256_madd_epi16(lo1, ones), _mm256_srai_epi32(_mm256_madd_epi16(lo4, ones), 2)));
            hi = _mm256_add_epi32(hi, _mm256_add_epi32(_mm256_madd_epi16(hi1, ones), _mm256_srai_epi32(_mm256_madd_epi16(hi4, ones), 2)));
        }
        store8(y, lo, x_sum[0], factor, g * BN_I2R16_ROWS, end);
        store8(y, hi, x_sum[0], factor, g * BN_I2R16_ROWS + 8, end);
    }
}

/* GEMM register tile: one 16-row group × T ≤ TILE_T activation rows.
 * Plane s of both 8-row halves is decoded once per chunk (shift + and) and
 * serves all T rows; one broadcast activation word serves both halves. The
 * int16 sums of each (half, row) take CHUNKS_PER_WIDEN chunks (the bound
 * above) before pmaddwd widens them into int32 partial sums on the stack.
 * Registers: 2 planes + mask + broadcast + 2·T int16 sums (T = 4: 12 of 16);
 * weights come from memory operands, so nothing spills in the inner loop. */
BN_INLINE BN_AVX2 void tile(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                            const int32_t *x_sum, float *y, int32_t ldy, int32_t g, int32_t t0,
                            const int T, int32_t end, const int request) {
    const int32_t k_pad = w->k_pad, nchunks = k_pad / BN_I2R16_CHUNK_COLS;
    const uint8_t *p = w->data + bn_i2r16_chunk_offset(k_pad, g, 0);
    const int8_t *xt = x + (size_t)t0 * (size_t)k_pad;
    const __m256i ones = _mm256_set1_epi16(1), m3 = _mm256_set1_epi8(3);
    __m256i lo32[TILE_T], hi32[TILE_T]; /* int32: rows 0-7, rows 8-15 */
    for (int t = 0; t < T; t++) lo32[t] = hi32[t] = _mm256_setzero_si256();
    for (int32_t c0 = 0; c0 < nchunks; c0 += CHUNKS_PER_WIDEN) {
        const int32_t c1 = bn_min_i32(nchunks, c0 + CHUNKS_PER_WIDEN);
        __m256i lo[TILE_T], hi[TILE_T]; /* int16 partial sums */
        for (int t = 0; t < T; t++) lo[t] = hi[t] = _mm256_setzero_si256();
        for (int32_t c = c0; c < c1; c++) {
            if (request) _mm_prefetch((const char *)(p + (size_t)c * 64 + GEMM_PREFETCH), _MM_HINT_T0);
            const __m256i vl = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64));
            const __m256i vh = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64 + 32));
            const int8_t *xc = xt + c * BN_I2R16_CHUNK_COLS;
#pragma clang loop unroll(full)
            for (int s = 0; s < 4; s++) {
                const __m256i pl = _mm256_and_si256(_mm256_srli_epi16(vl, 2 * s), m3);
                const __m256i ph = _mm256_and_si256(_mm256_srli_epi16(vh, 2 * s), m3);
#pragma clang loop unroll(full)
                for (int t = 0; t < T; t++) {
                    const __m256i b = bcast32(xc + (size_t)t * (size_t)k_pad + 4 * s);
                    lo[t] = _mm256_add_epi16(lo[t], _mm256_maddubs_epi16(pl, b));
                    hi[t] = _mm256_add_epi16(hi[t], _mm256_maddubs_epi16(ph, b));
                }
            }
        }
        for (int t = 0; t < T; t++) {
            lo32[t] = _mm256_add_epi32(lo32[t], _mm256_madd_epi16(lo[t], ones));
            hi32[t] = _mm256_add_epi32(hi32[t], _mm256_madd_epi16(hi[t], ones));
        }
    }
    for (int t = 0; t < T; t++) {
        const float factor = w->scale / x_scale[t0 + t];
        float *yt = y + (size_t)(t0 + t) * (size_t)ldy;
        store8(yt, lo32[t], x_sum[t0 + t], factor, g * BN_I2R16_ROWS, end);
        store8(yt, hi32[t], x_sum[t0 + t], factor, g * BN_I2R16_ROWS + 8, end);
    }
}

// w: (m_pad, k_pad) I2_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, row_end)
BN_AVX2 void bn_i2s_gemm_avx2(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                              const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    /* n rows in ceil(n / TILE_T) tiles of near-equal size (n = 5 is 3 + 2, not 4 + 1):
     * a small tile pays the plane decode and the broadcasts for fewer rows. */
    const int32_t ntiles = (n + TILE_T - 1) / TILE_T;
    /* Decode-sized batches: the group's first tile requests the weights GEMM_PREFETCH
     * ahead (running on into the next group), which the stream otherwise waits for:
     * Zen 4 core at this level, 2560×2560 from DRAM, 8 rows 256 → 280 G-op/s (two
     * cores 495 → 546), 4 rows +13%, 16 rows +2%. At 128 rows (32 tiles per group,
     * compute-bound) a variant with them measured 6–9% slower, part of which was the
     * run-time flag below, so they stay off there. */
    const int request = n <= 16;
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        /* the group (k_pad·4 bytes) stays in L1/L2 while every tile reads it */
        for (int32_t i = 0, t0 = 0; i < ntiles; i++) {
            const int32_t T = (n - t0) / (ntiles - i) + ((n - t0) % (ntiles - i) != 0);
            /* request a compile-time constant in each instantiation: a run-time test in the
             * inner loop cost the 128-row GEMM 6–8% even when false */
#define BN_TILES(r)                                                           \
    switch (T) {                                                              \
    case 4: tile(w, x, x_scale, x_sum, y, ldy, g, t0, 4, end, r); break;      \
    case 3: tile(w, x, x_scale, x_sum, y, ldy, g, t0, 3, end, r); break;      \
    case 2: tile(w, x, x_scale, x_sum, y, ldy, g, t0, 2, end, r); break;      \
    default: tile(w, x, x_scale, x_sum, y, ldy, g, t0, 1, end, r); break;     \
    }
            if (request && i == 0) BN_TILES(1) else BN_TILES(0)
#undef BN_TILES
            t0 += T;
        }
    }
}
#endif
