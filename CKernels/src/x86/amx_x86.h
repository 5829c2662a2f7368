/* The AMX tile configuration shared by the tile kernels (gemm_i2s_amx.c,
 * gemm_q8_amx.c) and the peak probe (bench_x86.c). Every AMX user here uses
 * the same eight tiles:
 *   0..3  C[gi][ti] = tile 2·gi + ti: int32 accumulators of 2 row groups ×
 *         2 token tiles, 16 rows (tokens) × 16 int32;
 *   4, 5  A[ti]: 16 tokens × 64 activation bytes;
 *   6, 7  B[gi]: 16 rows of 4-column dwords (64 columns of 16 matrix rows).
 * The configuration is per thread: a kernel loads it on entry and releases
 * the tiles (_tile_release) before it returns. */
#ifndef BN_AMX_X86_H
#define BN_AMX_X86_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The 64-byte LDTILECFG operand (palette 1). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} bn_amx_tile_config;

/* rows0 / rows1: tokens in token tile 0 / 1 (1..16; rows1 may be 0, leaving
 * tiles 1, 3 and 5 unconfigured). */
static inline __attribute__((always_inline, target("amx-tile"))) void bn_amx_configure(int rows0, int rows1) {
    bn_amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    const int rows[2] = {rows0, rows1};
    for (int ti = 0; ti < 2; ti++) {
        if (rows[ti] == 0) continue;
        cfg.rows[ti] = cfg.rows[2 + ti] = cfg.rows[4 + ti] = (uint8_t)rows[ti];
        cfg.colsb[ti] = cfg.colsb[2 + ti] = cfg.colsb[4 + ti] = 64;
    }
    for (int t = 6; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

/* The token tiles of the pair starting at token t0 of n: rows[0], rows[1]
 * (rows[1] = 0 past the end). The tiles are reconfigured only when these
 * differ from the last pair's, kept in shape (start with {-1, -1}). */
static inline __attribute__((always_inline, target("amx-tile"))) void bn_amx_token_pair(int32_t n, int32_t t0,
                                                                                     int shape[2], int rows[2]) {
    rows[0] = n - t0 < 16 ? n - t0 : 16;
    rows[1] = n - t0 - 16 <= 0 ? 0 : (n - t0 - 16 < 16 ? n - t0 - 16 : 16);
    if (rows[0] != shape[0] || rows[1] != shape[1]) {
        bn_amx_configure(rows[0], rows[1]);
        shape[0] = rows[0];
        shape[1] = rows[1];
    }
}

#endif
