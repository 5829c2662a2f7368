/* I2_S file layout ↔ internal I2_R16 layout (both described in bitnet_kernels.h). */
#include <string.h>
#include "internal.h"

size_t bn_i2s_max_k(void) { return BN_I2S_MAX_K; }
int32_t bn_pad_rows(int32_t m) { return (m + BN_ROW_ALIGN - 1) / BN_ROW_ALIGN * BN_ROW_ALIGN; }
int32_t bn_pad_cols(int32_t k) { return (k + BN_COL_ALIGN - 1) / BN_COL_ALIGN * BN_COL_ALIGN; }

size_t bn_i2r16_bytes(int32_t m, int32_t k) {
    return (size_t)bn_pad_rows(m) * (size_t)bn_pad_cols(k) / 4;
}

size_t bn_i2s_canonical_bytes(int32_t m, int32_t k) {
    const size_t n = (size_t)m * (size_t)k;
    return (n + BN_I2S_BLOCK - 1) / BN_I2S_BLOCK * BN_I2S_BLOCK_BYTES;
}

size_t bn_f16_panels_bytes(int32_t m, int32_t k) {
    return (size_t)((m + 15) / 16) * 16u * (size_t)k * 2u;
}

// w: (m, k) f16 row-major → dst panels [panel_begin, panel_end): (16 rows × k) each, column-major
void bn_f16_panels(const uint16_t *w, int32_t m, int32_t k, int32_t panel_begin, int32_t panel_end, uint16_t *dst) {
    for (int32_t p = panel_begin; p < panel_end; p++) {
        uint16_t *panel = dst + (size_t)p * (size_t)k * 16u;
        for (int32_t i = 0; i < 16; i++) {
            const int32_t r = p * 16 + i;
            if (r >= m) {
                for (int32_t c = 0; c < k; c++) panel[(size_t)c * 16u + (size_t)i] = 0;
                continue;
            }
            const uint16_t *row = w + (size_t)r * (size_t)k;
            for (int32_t c = 0; c < k; c++) panel[(size_t)c * 16u + (size_t)i] = row[c];
        }
    }
}

// panels: (ceil(m/16), k, 16) f16 → row: (k,) f16, row r's values
void bn_f16_panels_row(const uint16_t *panels, int32_t k, int32_t r, uint16_t *row) {
    const uint16_t *p = panels + (size_t)(r / 16) * (size_t)k * 16u + (size_t)(r % 16);
    for (int32_t c = 0; c < k; c++) row[c] = p[(size_t)c * 16u];
}

/* Canonical: flattened element e = r*k + c lives in block e/128 at byte
 * (e%128)%32, shift 6 - 2*((e%128)/32) (docs/FORMATS.md §3.2). */
int bn_i2s_canonical_code(const uint8_t *src, int32_t k, int32_t r, int32_t c) {
    const size_t e = (size_t)r * (size_t)k + (size_t)c;
    const size_t j = e % BN_I2S_BLOCK;
    const uint8_t b = src[e / BN_I2S_BLOCK * BN_I2S_BLOCK_BYTES + j % 32];
    return (b >> (6 - 2 * (int)(j / 32))) & 3;
}

static void i2r16_fill_zero_weights(uint8_t *dst, int32_t m, int32_t k) {
    /* 0x55 = four code-1 fields: weight 0 everywhere, including padding */
    memset(dst, 0x55, bn_i2r16_bytes(m, k));
}

/* One row's 16 columns of a chunk (its 4 bytes at row·4): byte i holds the
 * codes of columns i, 4+i, 8+i, 12+i in bit planes 0..3. */
static inline void i2r16_put_chunk(uint8_t *out, const uint8_t codes[BN_I2R16_CHUNK_COLS]) {
    for (int32_t i = 0; i < 4; i++)
        out[i] = (uint8_t)(codes[i] | codes[4 + i] << 2 | codes[8 + i] << 4 | codes[12 + i] << 6);
}

/* Fast path for k % 128 == 0 (every official file): each row is whole
 * canonical blocks, and every output byte is written once from 4 codes. */
static void repack_aligned_rows(const uint8_t *src, int32_t m, int32_t k, uint8_t *dst) {
    const int32_t k_pad = bn_pad_cols(k);
    uint8_t codes[BN_I2S_BLOCK];
    for (int32_t r = 0; r < m; r++) {
        const uint8_t *row = src + (size_t)r * (size_t)(k / 4);
        for (int32_t b = 0; b < k / BN_I2S_BLOCK; b++) {
            const uint8_t *blk = row + (size_t)b * BN_I2S_BLOCK_BYTES;
            for (int p = 0; p < 32; p++) {
                codes[p] = (uint8_t)(blk[p] >> 6);
                codes[p + 32] = (uint8_t)((blk[p] >> 4) & 3);
                codes[p + 64] = (uint8_t)((blk[p] >> 2) & 3);
                codes[p + 96] = (uint8_t)(blk[p] & 3);
            }
            for (int ch = 0; ch < BN_I2S_BLOCK / BN_I2R16_CHUNK_COLS; ch++) {
                const int32_t col0 = b * BN_I2S_BLOCK + ch * BN_I2R16_CHUNK_COLS;
                uint8_t *out = dst + bn_i2r16_chunk_offset(k_pad, r / BN_I2R16_ROWS, col0 / BN_I2R16_CHUNK_COLS) +
                               (size_t)(r % BN_I2R16_ROWS) * 4;
                const uint8_t *cc = codes + ch * BN_I2R16_CHUNK_COLS;
                for (int i = 0; i < 4; i++)
                    out[i] = (uint8_t)(cc[i] | cc[4 + i] << 2 | cc[8 + i] << 4 | cc[12 + i] << 6);
            }
        }
    }
}

void bn_i2s_repack_canonical(const uint8_t *src, int32_t m, int32_t k, uint8_t *dst) {
    const int32_t k_pad = bn_pad_cols(k);
    i2r16_fill_zero_weights(dst, m, k);
    if (k % BN_I2S_BLOCK == 0) {
        repack_aligned_rows(src, m, k, dst);
        return;
    }
    /* blocks straddle rows (e.g. K = 8640): 16 columns at a time, walking the
     * flattened index e = r·k + c incrementally */
    for (int32_t r = 0; r < m; r++) {
        uint8_t *grp = dst + bn_i2r16_chunk_offset(k_pad, r / BN_I2R16_ROWS, 0) + (size_t)(r % BN_I2R16_ROWS) * 4;
        size_t e = (size_t)r * (size_t)k;
        for (int32_t c0 = 0; c0 < k; c0 += BN_I2R16_CHUNK_COLS) {
            const int32_t n = bn_min_i32(BN_I2R16_CHUNK_COLS, k - c0);
            uint8_t codes[BN_I2R16_CHUNK_COLS];
            for (int32_t i = 0; i < n; i++, e++) {
                const size_t j = e % BN_I2S_BLOCK;
                codes[i] = (uint8_t)((src[e / BN_I2S_BLOCK * BN_I2S_BLOCK_BYTES + j % 32] >> (6 - 2 * (j / 32))) & 3);
            }
            for (int32_t i = n; i < BN_I2R16_CHUNK_COLS; i++) codes[i] = 1;
            i2r16_put_chunk(grp + (size_t)(c0 / BN_I2R16_CHUNK_COLS) * BN_I2R16_CHUNK_BYTES, codes);
        }
    }
}

/* Code 3 has no ternary meaning; no packer writes it. A malformed file's code 3 would be
 * computed as +2 by the I2_S kernels but read as +1 by the TL conversion, so loading
 * refuses it instead: every byte holds four 2-bit codes, and a code is 3 exactly when
 * both of its bits are set. */
int64_t bn_i2r16_count_code3(const uint8_t *data, size_t bytes) {
    int64_t count = 0;
    for (size_t i = 0; i < bytes; i++) count += __builtin_popcount((unsigned)(data[i] & (data[i] >> 1) & 0x55u));
    return count;
}

/* Each row's 16 columns of a chunk are written at once as 4 bytes (one per
 * column mod 4, the four bit planes), from codes computed without branches. */
void bn_i2r16_pack(const int8_t *w, int32_t m, int32_t k, uint8_t *dst) {
    const int32_t k_pad = bn_pad_cols(k);
    i2r16_fill_zero_weights(dst, m, k);
    for (int32_t r = 0; r < m; r++) {
        const int8_t *row = w + (size_t)r * (size_t)k;
        uint8_t *grp = dst + bn_i2r16_chunk_offset(k_pad, r / BN_I2R16_ROWS, 0) + (size_t)(r % BN_I2R16_ROWS) * 4;
        for (int32_t c0 = 0; c0 < k; c0 += BN_I2R16_CHUNK_COLS) {
            const int32_t n = bn_min_i32(BN_I2R16_CHUNK_COLS, k - c0);
            uint8_t codes[BN_I2R16_CHUNK_COLS];
            for (int32_t i = 0; i < n; i++) codes[i] = (uint8_t)(1 + (row[c0 + i] > 0) - (row[c0 + i] < 0));
            for (int32_t i = n; i < BN_I2R16_CHUNK_COLS; i++) codes[i] = 1;
            i2r16_put_chunk(grp + (size_t)(c0 / BN_I2R16_CHUNK_COLS) * BN_I2R16_CHUNK_BYTES, codes);
        }
    }
}

void bn_i2r16_unpack(const uint8_t *i2r16, int32_t m, int32_t k, int8_t *w) {
    const int32_t k_pad = bn_pad_cols(k);
    for (int32_t r = 0; r < m; r++) {
        const uint8_t *grp = i2r16 + bn_i2r16_chunk_offset(k_pad, r / BN_I2R16_ROWS, 0) + (size_t)(r % BN_I2R16_ROWS) * 4;
        int8_t *row = w + (size_t)r * (size_t)k;
        for (int32_t c0 = 0; c0 < k; c0 += BN_I2R16_CHUNK_COLS) {
            const uint8_t *b = grp + (size_t)(c0 / BN_I2R16_CHUNK_COLS) * BN_I2R16_CHUNK_BYTES;
            const int32_t n = bn_min_i32(BN_I2R16_CHUNK_COLS, k - c0);
            for (int32_t i = 0; i < n; i++) {
                const int code = (b[i & 3] >> (2 * (i >> 2))) & 3;
                row[c0 + i] = (int8_t)(code == 3 ? 1 : code - 1);
            }
        }
    }
}

void bn_i2s_canonical_pack(const int8_t *w, int32_t m, int32_t k, uint8_t *dst) {
    const size_t n = (size_t)m * (size_t)k;
    memset(dst, 0x55, bn_i2s_canonical_bytes(m, k));
    for (size_t e = 0; e < n; e++) {
        const int8_t v = w[e];
        const int code = v > 0 ? 2 : (v < 0 ? 0 : 1);
        const size_t j = e % BN_I2S_BLOCK;
        uint8_t *b = &dst[e / BN_I2S_BLOCK * BN_I2S_BLOCK_BYTES + j % 32];
        const int shift = 6 - 2 * (int)(j / 32);
        *b = (uint8_t)((*b & ~(3 << shift)) | (code << shift));
    }
}

// src: canonical I2_S (m*k codes), x: (n, k_pad) int8 → y: (n, ldy) f32
void bn_i2s_canonical_gemm_ref(const uint8_t *src, int32_t m, int32_t k, float w_scale,
                               const int8_t *x, int32_t k_pad, const float *x_scale,
                               const int32_t *x_sum, int32_t n, float *y, int32_t ldy) {
    for (int32_t t = 0; t < n; t++) {
        const int8_t *xt = x + (size_t)t * (size_t)k_pad;
        const float factor = w_scale / x_scale[t];
        for (int32_t r = 0; r < m; r++) {
            int32_t acc = 0;
            for (int32_t c = 0; c < k; c++)
                acc += bn_i2s_canonical_code(src, k, r, c) * (int32_t)xt[c];
            /* padding columns carry activation 0, so Σq over k equals x_sum */
            y[(size_t)t * (size_t)ldy + (size_t)r] = (float)(acc - x_sum[t]) * factor;
        }
    }
}

/* ---- Q8_R16 (int8 head), layout in bitnet_kernels.h ---- */

size_t bn_q8r16_bytes(int32_t m, int32_t k) {
    return (size_t)((m + 15) / 16 * 16) * (size_t)bn_pad_cols(k);
}

void bn_q8r16_pack(const int8_t *w, int32_t m, int32_t k, int8_t *dst, int32_t *row_sum) {
    const int32_t k_pad = bn_pad_cols(k), m_pad = (m + 15) / 16 * 16;
    memset(dst, 0, bn_q8r16_bytes(m, k));
    for (int32_t r = 0; r < m_pad; r++) {
        int32_t sum = 0;
        for (int32_t c = 0; r < m && c < k; c++) {
            const int8_t v = w[(size_t)r * (size_t)k + (size_t)c];
            dst[((size_t)(r / 16) * (size_t)(k_pad / 4) + (size_t)(c / 4)) * 64 + (size_t)((r % 16) * 4 + c % 4)] = v;
            sum += v;
        }
        row_sum[r] = sum;
    }
}
