/* AMX twin of bn_q8_gemm_scalar (src/scalar/gemm_q8_scalar.c): the int8 head
 * for several activation rows (batched decoding, the last rows of prompts).
 *
 * Q8_R16 is already the B-tile layout: chunk c of a group is 16 rows × 4
 * columns as dwords, B[j][4r + i] = w[r][4j + i], so 16 consecutive chunks
 * (64 columns, 1 KiB) are one B tile, loaded straight from the weights with
 * stride 64. The activations are the A tile (16 tokens × 64 columns, stride
 * k_pad) and TDPBSSD multiplies signed by signed: no offset, no row sums.
 * The VNNI twin instead converts every token's activations to unsigned bytes
 * once per 16-row group; measured at 8 rows on the 2-core AMX host (2B4T head,
 * 128,256 × 2560, one thread) it ran at ~110 G-op/s and took 47% of a batched
 * decode step.
 *
 * Exactness: the spec clamps activations to [-127, 127]; TDPBSSD would take
 * -128 as is, so a call whose rows hold a -128 (bn_quantize never writes one)
 * goes to the VNNI twin, as does a k_pad that is not a multiple of 64 (a half
 * tile would need a second tile configuration). Both give the same bits.
 *
 * Tiles as in amx_x86.h: C 0..3 = 2 row groups × 2 token tiles, A 4, 5,
 * B 6, 7. The configuration is per thread: loaded and released by every call. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"
#include "amx_x86.h"

#define BN_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,amx-tile,amx-int8")))
#define BN_INLINE static inline __attribute__((always_inline))

enum { TOKENS = 16, K_BLOCK = 64, TILE_BYTES = 1024, PREFETCH = 4096 };

/* Whether any of the n rows (k_pad bytes each) holds -128. */
BN_INLINE BN_AMX int has_min(const int8_t *x, int32_t n, int32_t k_pad) {
    const __m512i min = _mm512_set1_epi8(-128);
    const size_t len = (size_t)n * (size_t)k_pad; /* a multiple of 64 here */
    __mmask64 any = 0;
    for (size_t i = 0; i < len; i += 64) any |= _mm512_cmpeq_epi8_mask(_mm512_loadu_si512(x + i), min);
    return any != 0;
}

/* The lines of the tile 4 KiB ahead into L1, the distance the VNNI GEMV used
 * (not tuned separately here; the head measured 87–88% of the read bandwidth
 * at 8 rows and 95% at one). */
BN_INLINE BN_AMX void prefetch_tile(const int8_t *p) {
    for (int i = 0; i < TILE_BYTES; i += 64) _mm_prefetch((const char *)(p + PREFETCH + i), _MM_HINT_T0);
}

// w: (m_pad, k_pad) Q8_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
BN_AMX void bn_q8_gemm_amx(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                           int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t k_pad = w->k_pad, end = bn_min_i32(row_end, w->m), nblocks = k_pad / K_BLOCK;
    if (k_pad % K_BLOCK != 0 || has_min(x, n, k_pad)) {
        bn_q8_gemm_avx512vnni(w, x, x_scale, n, y, ldy, row_begin, row_end);
        return;
    }
    const size_t group_bytes = (size_t)k_pad * 16;
    /* c: (2 groups, 2 token tiles, 16 tokens, 16 rows) int32 */
    _Alignas(64) int32_t c[2][2][TOKENS * 16];
    int shape[2] = {-1, -1};
    for (int32_t t0 = 0; t0 < n; t0 += 2 * TOKENS) {
        int rows[2];
        bn_amx_token_pair(n, t0, shape, rows);
        const int rows0 = rows[0], rows1 = rows[1];
        const int8_t *x0 = x + (size_t)t0 * (size_t)k_pad;
        const int8_t *x1 = x0 + (size_t)TOKENS * (size_t)k_pad;
        /* row_begin % 16 == 0; groups in pairs while both hold rows of the range */
        for (int32_t g = row_begin / 16; g * 16 < end; g += 2) {
            const int pair = (g + 1) * 16 < end;
            const int8_t *p0 = w->data + (size_t)g * group_bytes, *p1 = p0 + group_bytes;
            _tile_zero(0);
            if (rows1) _tile_zero(1);
            if (pair) {
                _tile_zero(2);
                if (rows1) _tile_zero(3);
            }
            for (int32_t kb = 0; kb < nblocks; kb++) {
                const size_t off = (size_t)kb * TILE_BYTES;
                prefetch_tile(p0 + off);
                _tile_loadd(6, p0 + off, 64);
                _tile_loadd(4, x0 + (size_t)kb * K_BLOCK, k_pad);
                _tile_dpbssd(0, 4, 6);
                if (rows1) {
                    _tile_loadd(5, x1 + (size_t)kb * K_BLOCK, k_pad);
                    _tile_dpbssd(1, 5, 6);
                }
                if (pair) {
                    prefetch_tile(p1 + off);
                    _tile_loadd(7, p1 + off, 64);
                    _tile_dpbssd(2, 4, 7);
                    if (rows1) _tile_dpbssd(3, 5, 7);
                }
            }
            _tile_stored(0, c[0][0], 64);
            if (rows1) _tile_stored(1, c[0][1], 64);
            if (pair) {
                _tile_stored(2, c[1][0], 64);
                if (rows1) _tile_stored(3, c[1][1], 64);
            }
            for (int gi = 0; gi < 1 + pair; gi++) {
                const int32_t row0 = (g + gi) * 16, valid = end - row0;
                const __mmask16 m = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
                const __m512 row_scale = _mm512_maskz_loadu_ps(m, w->row_scale + row0);
                for (int ti = 0; ti < 2; ti++)
                    for (int tl = 0; tl < (ti ? rows1 : rows0); tl++) {
                        const int32_t t = t0 + ti * TOKENS + tl;
                        const __m512 scale = _mm512_div_ps(row_scale, _mm512_set1_ps(x_scale[t]));
                        const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(c[gi][ti] + tl * 16));
                        _mm512_mask_storeu_ps(y + (size_t)t * (size_t)ldy + row0, m, _mm512_mul_ps(dot, scale));
                    }
            }
        }
    }
    _tile_release();
}
#endif
