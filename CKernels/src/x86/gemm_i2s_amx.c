/* AMX twin of bn_i2s_gemm_scalar (src/scalar/gemm_i2s_scalar.c) for prompt
 * batches and batched decoding on CPUs with AMX-INT8 (Sapphire Rapids and
 * later). One TDPBSUD multiplies a 16×64 signed tile by a 64×16 unsigned tile:
 * 16,384 multiply-adds, where one vpdpbusd zmm does 64. Measured on a 2-core
 * Xeon host of this machine type: 2.2–5.8 T-op/s per core for TDPBSUD (it
 * moved between runs) against 0.66–0.78 for vpdpbusd (`bitnet bench kernels`
 * prints the peak of the level it runs).
 *
 * Operands, C[t][r] += Σ_k x[t][k] · code[r][k]:
 *   A (signed)   = activations, 16 tokens × 64 columns, loaded straight from
 *                  x with stride k_pad;
 *   B (unsigned) = ternary codes 0..2 in the "VNNI" tile layout, 16 rows of
 *                  4-column dwords: B[j][4r + i] = code[r][4j + i]. Plane s of
 *                  an I2_R16 chunk, unpacked to bytes, is exactly one such row
 *                  (16 matrix rows × 4 columns), so a B tile is the four
 *                  planes of four consecutive chunks, written to a 1 KiB
 *                  buffer and loaded with TILELOADD. No transpose.
 * The ternary offset is removed afterwards as in every twin: y = (C - Σx) · s.
 *
 * Register tiles: C0..C3 = 2 row groups (32 matrix rows) × 2 token tiles
 * (32 tokens); A0, A1; B0, B1 — all eight AMX tiles. Each B tile is unpacked
 * once per 32 tokens and feeds two TDPBSUDs right away, so the unpacking
 * (vector ALU and four stores per chunk, the kernel's bound) overlaps the
 * tile unit's work. Unpacking 16 blocks at once and reusing them for 128
 * tokens was measured slower at every N (8 to 512), likely because the
 * unpack and multiply phases then run in turn. Extracting the planes with
 * GF2P8AFFINEQB (one op instead of shift + AND) made no measurable
 * difference, so the vector ALU is not the limit (the stores likely are).
 * Unpacking one block ahead of the tile loads (below) was worth +30% at
 * N = 8 and 16 and +21% at N = 128: a TILELOADD right after the stores that
 * wrote its buffer waits for them. Measured against the VNNI twin (cache-
 * resident, one core, best of 15, M = K = 2560 unless noted): N = 8 about
 * 1.9× (1.2 T-op/s, also for 6912×2560), N = 16 3.3×, N = 128 4.1× (2.6 T-op/s).
 *
 * k_pad is a multiple of 32, not 64: a last half block of 32 columns is added
 * to the stored C tile with vpdpbusd, as the VNNI twin computes it.
 *
 * The tile configuration is per thread, so every call loads its own and
 * releases the tiles before returning (a thread left holding AMX state makes
 * every context switch save 8 KiB more). Using AMX on Linux needs the
 * process-wide permission bn_dispatch.c requests before it reports the level. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"
#include "amx_x86.h"
#include "i2r16_avx512.h"

#define BN_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,amx-tile,amx-int8")))
#define BN_INLINE static inline __attribute__((always_inline))

/* PREFETCH: weights are requested into L2 this far ahead. At 8 tokens the
 * kernel is as much unpacking as reading, and the hardware prefetcher alone
 * left the two overlapping poorly: out of DRAM (one core, N = 8) 32 KiB ahead
 * into L2 read 10.6 → 13.0 GB/s for 6912×2560 and 9.1 → 10.7 for 2560×2560,
 * against 4 KiB into L1 (the GEMV's old choice); 2 or 8 KiB into L1 and
 * 8 KiB into L2 stayed within ~10% of that, 16 KiB into L2 was better on one
 * shape and worse on the other. */
enum { TOKENS = 16, K_BLOCK = 64, CHUNKS_PER_BLOCK = K_BLOCK / BN_I2R16_CHUNK_COLS, PREFETCH = 32768 };

/* PREFETCH_L1: with at most 16 tokens (batched decoding) the weights are also
 * requested into L1 this far ahead. Harness out of DRAM (one core, 96
 * matrices cycled, old and new kernel interleaved, two runs): N = 8
 * 6912×2560 +5–6%, 2560×6912 +5–7%, N = 16 +6%; at N = 128 it was 2–3%
 * slower, so prompts do without it (4 KiB: N = 8 +4–9% but N = 128 worse). */
enum { PREFETCH_L1 = 2048, PREFETCH_L1_MAX_TOKENS = 16 };

/* Four I2_R16 chunks (64 columns of 16 rows) → one B tile: row 4c + s is
 * plane s of chunk c as bytes 0..3. l1: also request PREFETCH_L1 ahead into L1. */
BN_INLINE BN_AMX void unpack_block(const uint8_t *chunks, uint8_t *tile, int l1) {
    for (int c = 0; c < CHUNKS_PER_BLOCK; c++) {
        _mm_prefetch((const char *)(chunks + c * 64 + PREFETCH), _MM_HINT_T1);
        if (l1) _mm_prefetch((const char *)(chunks + c * 64 + PREFETCH_L1), _MM_HINT_T0);
        __m512i planes[4];
        bn_i2r16_planes(_mm512_loadu_si512(chunks + c * 64), planes);
        for (int s = 0; s < 4; s++) _mm512_store_si512(tile + (4 * c + s) * 64, planes[s]);
    }
}

/* acc (16 rows of one group) += the tail chunks [c0, c1) of token row x. */
BN_INLINE BN_AMX __m512i tail_dot(__m512i acc, const uint8_t *chunks, const int8_t *x, int32_t c0, int32_t c1) {
    for (int32_t c = c0; c < c1; c++) {
        __m512i planes[4];
        bn_i2r16_planes(_mm512_loadu_si512(chunks + (size_t)c * 64), planes);
        int32_t w4[4];
        memcpy(w4, x + c * BN_I2R16_CHUNK_COLS, sizeof w4);
        for (int s = 0; s < 4; s++) acc = _mm512_dpbusd_epi32(acc, planes[s], _mm512_set1_epi32(w4[s]));
    }
    return acc;
}

// w: (m_pad, k_pad) I2_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, row_end)
BN_AMX void bn_i2s_gemm_amx(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                            const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                            int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), k_pad = w->k_pad;
    const int32_t nchunks = k_pad / BN_I2R16_CHUNK_COLS, nblocks = k_pad / K_BLOCK;
    const int32_t tail_c0 = nblocks * CHUNKS_PER_BLOCK; /* 0 or 2 chunks after the full blocks */
    /* b: (2 buffers, 2 row groups, 16, 64) B tiles; c: (2 groups, 2 token tiles, 16 tokens, 16 rows) */
    _Alignas(64) uint8_t b[2][2][16 * 64];
    _Alignas(64) int32_t c[2][2][TOKENS * 16];
    int shape[2] = {-1, -1};
    const int l1 = n <= PREFETCH_L1_MAX_TOKENS;
    for (int32_t t0 = 0; t0 < n; t0 += 2 * TOKENS) {
        int rows[2];
        bn_amx_token_pair(n, t0, shape, rows);
        const int rows0 = rows[0], rows1 = rows[1];
        const int8_t *x0 = x + (size_t)t0 * (size_t)k_pad;
        const int8_t *x1 = x0 + (size_t)TOKENS * (size_t)k_pad;
        for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g += 2) {
            /* row_begin % 32 == 0 and m_pad % 32 == 0, so group g + 1 exists in memory */
            const uint8_t *p0 = w->data + bn_i2r16_chunk_offset(k_pad, g, 0);
            const uint8_t *p1 = w->data + bn_i2r16_chunk_offset(k_pad, g + 1, 0);
            _tile_zero(0);
            _tile_zero(2);
            if (rows1) {
                _tile_zero(1);
                _tile_zero(3);
            }
            /* software-pipelined by one block: block kb + 1 is unpacked before
             * block kb's tiles are loaded, so the tile loads never wait on
             * stores just issued (TILELOADD takes no store forwarding) */
            if (nblocks > 0) {
                unpack_block(p0, b[0][0], l1);
                unpack_block(p1, b[0][1], l1);
            }
            for (int32_t kb = 0; kb < nblocks; kb++) {
                if (kb + 1 < nblocks) {
                    unpack_block(p0 + (size_t)(kb + 1) * CHUNKS_PER_BLOCK * 64, b[(kb + 1) & 1][0], l1);
                    unpack_block(p1 + (size_t)(kb + 1) * CHUNKS_PER_BLOCK * 64, b[(kb + 1) & 1][1], l1);
                }
                _tile_loadd(6, b[kb & 1][0], 64);
                _tile_loadd(7, b[kb & 1][1], 64);
                _tile_loadd(4, x0 + (size_t)kb * K_BLOCK, k_pad);
                _tile_dpbsud(0, 4, 6);
                _tile_dpbsud(2, 4, 7);
                if (rows1) {
                    _tile_loadd(5, x1 + (size_t)kb * K_BLOCK, k_pad);
                    _tile_dpbsud(1, 5, 6);
                    _tile_dpbsud(3, 5, 7);
                }
            }
            _tile_stored(0, c[0][0], 64);
            _tile_stored(2, c[1][0], 64);
            if (rows1) {
                _tile_stored(1, c[0][1], 64);
                _tile_stored(3, c[1][1], 64);
            }
            for (int ti = 0; ti < 2; ti++) {
                const int rows = ti ? rows1 : rows0;
                for (int tl = 0; tl < rows; tl++) {
                    const int32_t t = t0 + ti * TOKENS + tl;
                    const int8_t *xt = x + (size_t)t * (size_t)k_pad;
                    const float factor = w->scale / x_scale[t];
                    for (int gi = 0; gi < 2; gi++) {
                        const int32_t row0 = (g + gi) * BN_I2R16_ROWS;
                        if (row0 >= end) continue;
                        const __m512i acc = tail_dot(_mm512_load_si512(c[gi][ti] + tl * 16), gi ? p1 : p0, xt,
                                                     tail_c0, nchunks);
                        bn_i2r16_store16(y + (size_t)t * (size_t)ldy, acc, x_sum[t], factor, row0, end);
                    }
                }
            }
        }
    }
    _tile_release();
}
#endif
