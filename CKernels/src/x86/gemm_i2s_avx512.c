/* AVX-512 twins of bn_i2s_gemm_scalar (src/scalar/gemm_i2s_scalar.c) on the
 * I2_R16 layout: a 64-byte chunk is 16 rows × 16 columns; plane s of it
 * (bits 2s..2s+1 of every byte) is 16 rows × 4 columns, the operand shape
 * of vpdpbusd, so one broadcast activation word serves 16 rows and every
 * int32 lane ends as one row's dot product.
 *
 *   *_avx512vnni: vpdpbusd (AVX-512 VNNI).
 *   *_avx512:     pmaddubsw + pmaddwd for AVX-512BW CPUs without VNNI.
 */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"
#include "stream_x86.h"
#include "i2r16_avx512.h"

#define BN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define BN_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define BN_INLINE static inline __attribute__((always_inline))

/* GEMM register tile: 2 row groups (32 rows) × 8 activation rows = 16 zmm accumulators.
 * GEMV streams the weights once, with software prefetches where they help
 * (stream_x86.h; not on AMD): the L1 request 4 KiB ahead (measured on an
 * earlier host: 1 KiB slower, 8 KiB no better) lifted out-of-cache GEMV from
 * ~34 to ~37 GB/s on one core there. */
enum { TILE_T = 8, TOKEN_BLOCK = 64, GEMM_PREFETCH = 2048 };
/* pmaddubsw path: int16 lanes of one plane are ≤ 768 (codes ≤ 3, |q| ≤ 128), so
 * 8 chunks × 4 planes (≤ 24,576) are summed before pmaddwd widens them. */
enum { CHUNKS_PER_WIDEN = 8 };

/* Size of tile i when the rows left, n_left, go into tiles_left near-equal
 * tiles (9 rows: 5 + 4, not 8 + 1): a small tile decodes the planes for few rows. */
static inline int32_t tile_rows(int32_t n_left, int32_t tiles_left) {
    return n_left / tiles_left + (n_left % tiles_left != 0);
}

BN_INLINE BN_AVX512 __m512i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* ---- VNNI ------------------------------------------------------------------ */

// w: (m_pad, k_pad) I2_R16, x: (1, k_pad) int8 → y: (m,) f32 rows [row_begin, row_end)
BN_AVX512VNNI void bn_i2s_gemv_avx512vnni(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                                          const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                                          int32_t row_begin, int32_t row_end) {
    (void)n;
    (void)ldy;
    const int32_t end = bn_min_i32(row_end, w->m), nchunks = w->k_pad / BN_I2R16_CHUNK_COLS;
    const float factor = w->scale / x_scale[0];
    const int prefetch = bn_stream_prefetch();
    /* Masking instead of shifting leaves plane s at 4^s times its value;
     * vpdpbusd takes the scaled codes (≤ 192) as u8, and the exact shifts
     * below undo the scaling: one AND per plane instead of shift + AND. */
    const __m512i m0 = _mm512_set1_epi8(0x03), m1 = _mm512_set1_epi8(0x0c);
    const __m512i m2 = _mm512_set1_epi8(0x30), m3 = _mm512_set1_epi8((char)0xc0);
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        const uint8_t *p = w->data + bn_i2r16_chunk_offset(w->k_pad, g, 0);
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int32_t c = 0; c < nchunks; c += 2) { /* k_pad % 32 == 0: chunks come in pairs */
            const int8_t *xc = x + c * BN_I2R16_CHUNK_COLS;
            if (prefetch) bn_stream_prefetch128(p + (size_t)c * 64);
            const __m512i v = _mm512_loadu_si512(p + (size_t)c * 64);
            const __m512i u = _mm512_loadu_si512(p + (size_t)c * 64 + 64);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v, m0), bcast32(xc + 0));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(v, m1), bcast32(xc + 4));
            a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(v, m2), bcast32(xc + 8));
            a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(v, m3), bcast32(xc + 12));
            b0 = _mm512_dpbusd_epi32(b0, _mm512_and_si512(u, m0), bcast32(xc + 16));
            b1 = _mm512_dpbusd_epi32(b1, _mm512_and_si512(u, m1), bcast32(xc + 20));
            b2 = _mm512_dpbusd_epi32(b2, _mm512_and_si512(u, m2), bcast32(xc + 24));
            b3 = _mm512_dpbusd_epi32(b3, _mm512_and_si512(u, m3), bcast32(xc + 28));
        }
        __m512i acc = _mm512_add_epi32(a0, b0);
        acc = _mm512_add_epi32(acc, _mm512_srai_epi32(_mm512_add_epi32(a1, b1), 2));
        acc = _mm512_add_epi32(acc, _mm512_srai_epi32(_mm512_add_epi32(a2, b2), 4));
        acc = _mm512_add_epi32(acc, _mm512_srai_epi32(_mm512_add_epi32(a3, b3), 6));
        bn_i2r16_store16(y, acc, x_sum[0], factor, g * BN_I2R16_ROWS, end);
    }
}

/* Requests for chunk c of a tile's two weight streams, p0 (group g) and
 * p1 = p0 + group_bytes (group g + 1), GEMM_PREFETCH ahead. The tile is
 * vpdpbusd-bound and without requests its streams fall behind: 6912×2560 and
 * 2560×6912 out of DRAM on one core of the AVX-512 EPYC host, 2 KiB ahead:
 * 8 rows 380–409 → 407–439 G-op/s, 16 rows +3–5%, 128 rows +1%. Near the
 * tile's end p1's requests run on into the next tile's first group, and p0's,
 * instead of re-requesting p1's group, go to the next tile's second group, so
 * neither of the next tile's streams starts cold: at k = 2560 (a tile is
 * 2 × 10 KiB) 8 rows 407–424 → 439–449 G-op/s on one Zen 4 core, 778–845 →
 * 852–885 on two; 16 rows +4%, 128 rows unchanged (harness, interleaved, best
 * of 8). The pmaddubsw tile made none: at its level on the same core, 8 rows
 * 289–296 → 317–326 G-op/s, two cores 543 → 593, 4 rows 217 → 298. */
BN_INLINE void tile_requests(const uint8_t *p0, size_t group_bytes, int32_t c) {
    size_t ahead0 = (size_t)c * 64 + GEMM_PREFETCH;
    if (ahead0 >= group_bytes) ahead0 += 2 * group_bytes;
    _mm_prefetch((const char *)(p0 + ahead0), _MM_HINT_T0);
    _mm_prefetch((const char *)(p0 + group_bytes + (size_t)c * 64 + GEMM_PREFETCH), _MM_HINT_T0);
}

/* One register tile: row groups g, g+1 × activation rows t0 .. t0+T. */
BN_INLINE BN_AVX512VNNI void tile_vnni(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                                       const int32_t *x_sum, float *y, int32_t ldy, int32_t g, int32_t t0,
                                       const int T, int32_t end) {
    const int32_t k_pad = w->k_pad, nchunks = k_pad / BN_I2R16_CHUNK_COLS;
    const uint8_t *p0 = w->data + bn_i2r16_chunk_offset(k_pad, g, 0);
    const size_t group_bytes = (size_t)k_pad * 4;
    const uint8_t *p1 = p0 + group_bytes;
    const int8_t *xt = x + (size_t)t0 * (size_t)k_pad;
    __m512i acc0[TILE_T], acc1[TILE_T];
    for (int t = 0; t < T; t++) acc0[t] = acc1[t] = _mm512_setzero_si512();
    for (int32_t c = 0; c < nchunks; c++) {
        __m512i w0[4], w1[4];
        tile_requests(p0, group_bytes, c);
        bn_i2r16_planes(_mm512_loadu_si512(p0 + (size_t)c * 64), w0);
        bn_i2r16_planes(_mm512_loadu_si512(p1 + (size_t)c * 64), w1);
        const int8_t *xc = xt + c * BN_I2R16_CHUNK_COLS;
        /* fully unrolled so the accumulators live in registers, not on the stack */
#pragma clang loop unroll(full)
        for (int t = 0; t < T; t++)
#pragma clang loop unroll(full)
            for (int s = 0; s < 4; s++) {
                const __m512i b = bcast32(xc + (size_t)t * (size_t)k_pad + 4 * s);
                acc0[t] = _mm512_dpbusd_epi32(acc0[t], w0[s], b);
                acc1[t] = _mm512_dpbusd_epi32(acc1[t], w1[s], b);
            }
    }
    for (int t = 0; t < T; t++) {
        const float factor = w->scale / x_scale[t0 + t];
        float *yt = y + (size_t)(t0 + t) * (size_t)ldy;
        bn_i2r16_store16(yt, acc0[t], x_sum[t0 + t], factor, g * BN_I2R16_ROWS, end);
        bn_i2r16_store16(yt, acc1[t], x_sum[t0 + t], factor, (g + 1) * BN_I2R16_ROWS, end);
    }
}

// w: (m_pad, k_pad) I2_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, row_end)
BN_AVX512VNNI void bn_i2s_gemm_avx512vnni(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                                          const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                                          int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    /* Token blocks keep their activations in L2 while each 32-row weight
     * slice (≤ 2·k_pad·4 bytes) is reused from L1/L2 by every tile. */
    for (int32_t tb = 0; tb < n; tb += TOKEN_BLOCK) {
        const int32_t tb_end = bn_min_i32(n, tb + TOKEN_BLOCK);
        for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g += 2) {
            const int32_t ntiles = (tb_end - tb + TILE_T - 1) / TILE_T;
            for (int32_t i = 0, t0 = tb; i < ntiles; i++) {
                const int32_t T = tile_rows(tb_end - t0, ntiles - i);
                switch (T) {
                case 8: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 8, end); break;
                case 7: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 7, end); break;
                case 6: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 6, end); break;
                case 5: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 5, end); break;
                case 4: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 4, end); break;
                case 3: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 3, end); break;
                case 2: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 2, end); break;
                default: tile_vnni(w, x, x_scale, x_sum, y, ldy, g, t0, 1, end); break;
                }
                t0 += T;
            }
        }
    }
}

/* ---- AVX-512BW without VNNI ------------------------------------------------ */

/* pmaddubsw of codes ≤ 3 with int8 gives int16 pairs of magnitude ≤ 768;
 * four planes add to ≤ 3072, so int16 never saturates before pmaddwd widens. */
BN_INLINE BN_AVX512 __m512i dot4_bw(const __m512i wp[4], const int8_t *xc, __m512i ones) {
    __m512i s = _mm512_maddubs_epi16(wp[0], bcast32(xc + 0));
    s = _mm512_add_epi16(s, _mm512_maddubs_epi16(wp[1], bcast32(xc + 4)));
    s = _mm512_add_epi16(s, _mm512_maddubs_epi16(wp[2], bcast32(xc + 8)));
    s = _mm512_add_epi16(s, _mm512_maddubs_epi16(wp[3], bcast32(xc + 12)));
    return _mm512_madd_epi16(s, ones);
}

// w: (m_pad, k_pad) I2_R16, x: (1, k_pad) int8 → y: (m,) f32 rows [row_begin, row_end)
BN_AVX512 void bn_i2s_gemv_avx512(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                                  const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                                  int32_t row_begin, int32_t row_end) {
    (void)n;
    (void)ldy;
    const int32_t end = bn_min_i32(row_end, w->m), nchunks = w->k_pad / BN_I2R16_CHUNK_COLS;
    const float factor = w->scale / x_scale[0];
    const __m512i ones = _mm512_set1_epi16(1);
    const int prefetch = bn_stream_prefetch();
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        const uint8_t *p = w->data + bn_i2r16_chunk_offset(w->k_pad, g, 0);
        __m512i a = _mm512_setzero_si512(), b = a;
        for (int32_t c = 0; c < nchunks; c += 2) {
            if (prefetch) bn_stream_prefetch128(p + (size_t)c * 64);
            __m512i wv[4], wu[4];
            bn_i2r16_planes(_mm512_loadu_si512(p + (size_t)c * 64), wv);
            bn_i2r16_planes(_mm512_loadu_si512(p + (size_t)c * 64 + 64), wu);
            a = _mm512_add_epi32(a, dot4_bw(wv, x + c * BN_I2R16_CHUNK_COLS, ones));
            b = _mm512_add_epi32(b, dot4_bw(wu, x + c * BN_I2R16_CHUNK_COLS + 16, ones));
        }
        bn_i2r16_store16(y, _mm512_add_epi32(a, b), x_sum[0], factor, g * BN_I2R16_ROWS, end);
    }
}

BN_INLINE BN_AVX512 void tile_bw(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                                 const int32_t *x_sum, float *y, int32_t ldy, int32_t g, int32_t t0,
                                 const int T, int32_t end) {
    const int32_t k_pad = w->k_pad, nchunks = k_pad / BN_I2R16_CHUNK_COLS;
    const uint8_t *p0 = w->data + bn_i2r16_chunk_offset(k_pad, g, 0);
    const size_t group_bytes = (size_t)k_pad * 4;
    const uint8_t *p1 = p0 + group_bytes;
    const int8_t *xt = x + (size_t)t0 * (size_t)k_pad;
    const __m512i ones = _mm512_set1_epi16(1);
    /* int32 sums (updated every CHUNKS_PER_WIDEN chunks) and int16 sums of the current span */
    __m512i acc0[TILE_T], acc1[TILE_T];
    for (int t = 0; t < T; t++) acc0[t] = acc1[t] = _mm512_setzero_si512();
    for (int32_t c0 = 0; c0 < nchunks; c0 += CHUNKS_PER_WIDEN) {
        const int32_t c1 = bn_min_i32(nchunks, c0 + CHUNKS_PER_WIDEN);
        __m512i s0[TILE_T], s1[TILE_T];
        for (int t = 0; t < T; t++) s0[t] = s1[t] = _mm512_setzero_si512();
        for (int32_t c = c0; c < c1; c++) {
            __m512i w0[4], w1[4];
            tile_requests(p0, group_bytes, c);
            bn_i2r16_planes(_mm512_loadu_si512(p0 + (size_t)c * 64), w0);
            bn_i2r16_planes(_mm512_loadu_si512(p1 + (size_t)c * 64), w1);
            const int8_t *xc = xt + c * BN_I2R16_CHUNK_COLS;
#pragma clang loop unroll(full)
            for (int t = 0; t < T; t++)
#pragma clang loop unroll(full)
                for (int s = 0; s < 4; s++) {
                    const __m512i b = bcast32(xc + (size_t)t * (size_t)k_pad + 4 * s);
                    s0[t] = _mm512_add_epi16(s0[t], _mm512_maddubs_epi16(w0[s], b));
                    s1[t] = _mm512_add_epi16(s1[t], _mm512_maddubs_epi16(w1[s], b));
                }
        }
        for (int t = 0; t < T; t++) {
            acc0[t] = _mm512_add_epi32(acc0[t], _mm512_madd_epi16(s0[t], ones));
            acc1[t] = _mm512_add_epi32(acc1[t], _mm512_madd_epi16(s1[t], ones));
        }
    }
    for (int t = 0; t < T; t++) {
        const float factor = w->scale / x_scale[t0 + t];
        float *yt = y + (size_t)(t0 + t) * (size_t)ldy;
        bn_i2r16_store16(yt, acc0[t], x_sum[t0 + t], factor, g * BN_I2R16_ROWS, end);
        bn_i2r16_store16(yt, acc1[t], x_sum[t0 + t], factor, (g + 1) * BN_I2R16_ROWS, end);
    }
}

BN_AVX512 void bn_i2s_gemm_avx512(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                                  const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                                  int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    for (int32_t tb = 0; tb < n; tb += TOKEN_BLOCK) {
        const int32_t tb_end = bn_min_i32(n, tb + TOKEN_BLOCK);
        for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g += 2) {
            const int32_t ntiles = (tb_end - tb + TILE_T - 1) / TILE_T;
            for (int32_t i = 0, t0 = tb; i < ntiles; i++) {
                const int32_t T = tile_rows(tb_end - t0, ntiles - i);
                switch (T) {
                case 8: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 8, end); break;
                case 7: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 7, end); break;
                case 6: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 6, end); break;
                case 5: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 5, end); break;
                case 4: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 4, end); break;
                case 3: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 3, end); break;
                case 2: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 2, end); break;
                default: tile_bw(w, x, x_scale, x_sum, y, ldy, g, t0, 1, end); break;
                }
                t0 += T;
            }
        }
    }
}
#endif
