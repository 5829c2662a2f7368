/* TL1 / TL2 formats (layout in bitnet_kernels.h): sizes, packing, repacking
 * from I2_R16, default tiling, and bn_tl_drive, the loop nest every ISA's
 * LUT kernel shares (K blocks, row chunks, stack buffers, epilogue). */
#include <string.h>
#if defined(__linux__)
#include <unistd.h>
#endif
#include "internal.h"

_Static_assert(BN_TL_ROWS == BN_ROW_ALIGN, "TL tiles and row ranges share the row alignment");

static int32_t slot_width(int32_t type) { return type == 1 ? 2 : 3; }

int32_t bn_tl_slots(int32_t type, int32_t k) {
    const int32_t w = slot_width(type);
    const int32_t s = (k + w - 1) / w;
    return (s + BN_TL_GROUP_SLOTS - 1) / BN_TL_GROUP_SLOTS * BN_TL_GROUP_SLOTS;
}

static size_t tile_stride(int32_t type, int32_t s_pad) {
    return (size_t)(s_pad / BN_TL_GROUP_SLOTS) * (size_t)bn_tl_group_bytes(type);
}

size_t bn_tl_bytes(int32_t type, int32_t m, int32_t k) {
    const int32_t m_pad = bn_pad_rows(m);
    size_t bytes = (size_t)(m_pad / BN_TL_ROWS) * tile_stride(type, bn_tl_slots(type, k));
    if (type == 2) bytes += sizeof(int32_t) * (size_t)m_pad;
    return bytes;
}

/* Packing works tile by tile (32 rows) and group by group (8 slots): the
 * group's weights are gathered as codes (weight + 1; 3 = invalid I2_R16
 * code) into a 32 × 24 block on the stack, then emitted with two table
 * lookups per slot. No per-element calls or divisions: 2B4T's 2.1e9 weights
 * repack in about a second per core instead of ~12 s. */
enum { TL_GROUP_COLS_MAX = BN_TL_GROUP_SLOTS * 3 };
typedef uint8_t tl_codes[BN_TL_ROWS][TL_GROUP_COLS_MAX];

enum tl_source { TL_FROM_TERNARY, TL_FROM_I2R16 };

/* Codes of columns c0 .. c0+ncols-1 of the tile's rows; 1 (weight 0) past m or k.
 * From I2_R16, a row's 16 columns of a chunk are one 32-bit word (4 bytes of
 * 4 bit planes), decoded whole. */
static inline __attribute__((always_inline)) void gather(enum tl_source kind, const void *src, int32_t m, int32_t k,
                                                         int32_t row0, int32_t c0, int32_t ncols, tl_codes codes) {
    const int32_t k_pad = bn_pad_cols(k);
    const int32_t real = c0 >= k ? 0 : (c0 + ncols <= k ? ncols : k - c0);
    for (int32_t rr = 0; rr < BN_TL_ROWS; rr++) {
        const int32_t r = row0 + rr;
        uint8_t *out = codes[rr];
        int32_t i = 0;
        if (r < m && kind == TL_FROM_TERNARY) {
            const int8_t *row = (const int8_t *)src + (size_t)r * (size_t)k + (size_t)c0;
            for (; i < real; i++) out[i] = (uint8_t)(row[i] + 1);
        } else if (r < m && real > 0) {
            const uint8_t *grp = (const uint8_t *)src + bn_i2r16_chunk_offset(k_pad, r / BN_I2R16_ROWS, 0) +
                                 (size_t)(r % BN_I2R16_ROWS) * 4;
            const int32_t ch0 = c0 / BN_I2R16_CHUNK_COLS, ch1 = (c0 + real - 1) / BN_I2R16_CHUNK_COLS;
            uint8_t tmp[TL_GROUP_COLS_MAX + 2 * BN_I2R16_CHUNK_COLS];
            for (int32_t ch = ch0; ch <= ch1; ch++) {
                const uint8_t *b = grp + (size_t)ch * BN_I2R16_CHUNK_BYTES;
                uint8_t *t = tmp + (ch - ch0) * BN_I2R16_CHUNK_COLS;
                for (int32_t plane = 0; plane < 4; plane++)
                    for (int32_t j = 0; j < 4; j++) t[4 * plane + j] = (uint8_t)((b[j] >> (2 * plane)) & 3);
            }
            const uint8_t *t = tmp + (c0 - ch0 * BN_I2R16_CHUNK_COLS);
            for (; i < real; i++) out[i] = t[i];
        }
        for (; i < ncols; i++) out[i] = 1;
    }
}

/* Slot code from the codes (c+1 of each weight) of its columns, combined as
 * 9·c0 + 3·c1 + c2 (TL2) or 3·c0 + c1 (TL1): low nibble = table index, bit 4 =
 * negative (TL2). Code 3 (invalid) is read as +1 and counted by the caller. */
static uint8_t tl2_slot_code(int32_t combined) {
    const int32_t v = combined - 13;
    return (uint8_t)((v < 0 ? -v : v) | (v < 0 ? 16 : 0));
}

static inline __attribute__((always_inline)) uint8_t slot_code(enum tl_source kind, const uint8_t *code27,
                                                               int32_t width, const uint8_t *c, int64_t *bad) {
    int32_t c0 = c[0], c1 = c[1], c2 = width == 3 ? c[2] : 1;
    if (kind == TL_FROM_I2R16 && (c0 == 3 || c1 == 3 || c2 == 3)) {
        *bad += (c0 == 3) + (c1 == 3) + (c2 == 3);
        c0 = c0 == 3 ? 2 : c0;
        c1 = c1 == 3 ? 2 : c1;
        c2 = c2 == 3 ? 2 : c2;
    }
    return width == 2 ? code27[3 * c0 + c1] : code27[9 * c0 + 3 * c1 + c2];
}

/* Every index byte of a group is written once from two slot codes, and the
 * sign bits are collected in four 64-bit words (one per nibble vector) that
 * are stored at the end: no read-modify-write of memory in the loop. */
static inline __attribute__((always_inline)) int64_t pack_impl(enum tl_source kind, int32_t type, const void *src,
                                                                int32_t m, int32_t k, uint8_t *dst) {
    const int32_t m_pad = bn_pad_rows(m), s_pad = bn_tl_slots(type, k), width = slot_width(type);
    const int32_t gbytes = bn_tl_group_bytes(type), gcols = width * BN_TL_GROUP_SLOTS;
    const size_t tstride = tile_stride(type, s_pad);
    uint8_t code27[27];
    for (int32_t i = 0; i < 27; i++) code27[i] = type == 1 ? (uint8_t)i : tl2_slot_code(i);
    int32_t *negcount = type == 2 ? (int32_t *)(dst + (size_t)(m_pad / BN_TL_ROWS) * tstride) : NULL;
    int64_t bad = 0;
    tl_codes codes;
    for (int32_t row0 = 0; row0 < m_pad; row0 += BN_TL_ROWS) {
        uint8_t *tile = dst + (size_t)(row0 / BN_TL_ROWS) * tstride;
        int32_t negs[BN_TL_ROWS] = {0};
        for (int32_t g = 0; g < s_pad / BN_TL_GROUP_SLOTS; g++) {
            gather(kind, src, m, k, row0, g * gcols, gcols, codes);
            uint8_t *group = tile + (size_t)g * (size_t)gbytes;
            uint64_t sign_words[4] = {0, 0, 0, 0};
            for (int32_t rr = 0; rr < BN_TL_ROWS; rr++) {
                const uint8_t *cr = codes[rr];
                for (int32_t p = 0; p < BN_TL_GROUP_SLOTS / 2; p++) {
                    const uint8_t lo = slot_code(kind, code27, width, cr + 2 * p * width, &bad);
                    const uint8_t hi = slot_code(kind, code27, width, cr + (2 * p + 1) * width, &bad);
                    group[bn_tl_index_byte(2 * p, rr)] = (uint8_t)((lo & 15) | (hi & 15) << 4);
                    if (type == 2) {
                        /* slot j's sign: word 2·(j/4) + j%2, bit 16·(2·(rr/16) + p%2) + rr%16 */
                        const int32_t bit = 16 * (2 * (rr >> 4) + (p & 1)) + (rr & 15);
                        sign_words[2 * (p >> 1)] |= (uint64_t)(lo >> 4) << bit;
                        sign_words[2 * (p >> 1) + 1] |= (uint64_t)(hi >> 4) << bit;
                        negs[rr] += (lo >> 4) + (hi >> 4);
                    }
                }
            }
            if (type == 2)
                for (int32_t wi = 0; wi < 4; wi++)
                    for (int32_t b = 0; b < 8; b++) group[128 + 8 * wi + b] = (uint8_t)(sign_words[wi] >> (8 * b));
        }
        if (negcount) memcpy(&negcount[row0], negs, sizeof negs);
    }
    return bad;
}

void bn_tl_pack(int32_t type, const int8_t *w, int32_t m, int32_t k, uint8_t *dst) {
    pack_impl(TL_FROM_TERNARY, type, w, m, k, dst);
}

int64_t bn_tl_from_i2r16(int32_t type, const uint8_t *i2r16, int32_t m, int32_t k, uint8_t *dst) {
    return pack_impl(TL_FROM_I2R16, type, i2r16, m, k, dst);
}

/* Decoding mirrors packing: a run of groups that covers whole I2_R16 chunks
 * (TL1: one group = 16 columns = 1 chunk; TL2: two groups = 48 columns = 3
 * chunks) is decoded into codes on the stack, then each row's chunk words are
 * written whole. Past m or k the codes are 1 (weight 0), whatever the file's
 * padding holds. */
int64_t bn_tl_to_i2r16(int32_t type, const uint8_t *data, int32_t m, int32_t k, uint8_t *i2r16) {
    const int32_t s_pad = bn_tl_slots(type, k), width = slot_width(type), k_pad = bn_pad_cols(k);
    const int32_t gbytes = bn_tl_group_bytes(type), gcols = width * BN_TL_GROUP_SLOTS;
    const int32_t run_groups = type == 1 ? 1 : 2, run_cols = run_groups * gcols;
    const int32_t groups = s_pad / BN_TL_GROUP_SLOTS, chunks = k_pad / BN_I2R16_CHUNK_COLS;
    const size_t tstride = tile_stride(type, s_pad);
    /* codes (weight + 1) of the digits of index i (bit 4: negated); invalid indices give weights 0 */
    uint8_t digits[32][3];
    for (int32_t i = 0; i < 32; i++) {
        int32_t d[3];
        bn_tl_digits(type, i & 15, d);
        for (int32_t p = 0; p < 3; p++) digits[i][p] = (uint8_t)((i & 16 ? -d[p] : d[p]) + 1);
    }
    const int32_t limit = type == 1 ? 8 : 13;
    memset(i2r16, 0x55, bn_i2r16_bytes(m, k));
    int64_t bad = 0;
    uint8_t codes[BN_TL_ROWS][2 * TL_GROUP_COLS_MAX];
    for (int32_t row0 = 0; row0 < m; row0 += BN_TL_ROWS) {
        const uint8_t *tile = data + (size_t)(row0 / BN_TL_ROWS) * tstride;
        const int32_t rows = bn_min_i32(BN_TL_ROWS, m - row0);
        for (int32_t g0 = 0; g0 < groups; g0 += run_groups) {
            const int32_t c0 = g0 * gcols;
            if (c0 >= k) break;
            for (int32_t gi = 0; gi < run_groups; gi++) {
                const uint8_t *group = tile + (size_t)(g0 + gi) * (size_t)gbytes;
                uint64_t sign_words[4] = {0, 0, 0, 0};
                /* TL2 decodes two groups at a time: with an odd group count the second one of
                 * the last run does not exist, and its sign bytes lie past the tile (past the
                 * tensor for the last tile) — read them only for a group that exists */
                if (type == 2 && g0 + gi < groups)
                    for (int32_t wi = 0; wi < 4; wi++)
                        for (int32_t b = 0; b < 8; b++) sign_words[wi] |= (uint64_t)group[128 + 8 * wi + b] << (8 * b);
                for (int32_t rr = 0; rr < rows; rr++) {
                    uint8_t *out = codes[rr] + gi * gcols;
                    if (g0 + gi >= groups) {
                        memset(out, 1, (size_t)gcols);
                        continue;
                    }
                    for (int32_t p = 0; p < BN_TL_GROUP_SLOTS / 2; p++) {
                        const uint8_t byte = group[bn_tl_index_byte(2 * p, rr)];
                        int32_t lo = byte & 15, hi = byte >> 4;
                        bad += (lo > limit) + (hi > limit);
                        if (type == 2) {
                            const int32_t bit = 16 * (2 * (rr >> 4) + (p & 1)) + (rr & 15);
                            lo |= (int32_t)((sign_words[2 * (p >> 1)] >> bit) & 1) << 4;
                            hi |= (int32_t)((sign_words[2 * (p >> 1) + 1] >> bit) & 1) << 4;
                        }
                        for (int32_t q = 0; q < width; q++) {
                            out[2 * p * width + q] = digits[lo][q];
                            out[(2 * p + 1) * width + q] = digits[hi][q];
                        }
                    }
                }
            }
            /* columns past k read as weight 0 */
            const int32_t real = bn_min_i32(run_cols, k - c0);
            for (int32_t rr = 0; rr < rows; rr++)
                for (int32_t i = real; i < run_cols; i++) codes[rr][i] = 1;
            for (int32_t rr = 0; rr < rows; rr++) {
                const int32_t r = row0 + rr;
                uint8_t *grp = i2r16 + bn_i2r16_chunk_offset(k_pad, r / BN_I2R16_ROWS, 0) + (size_t)(r % BN_I2R16_ROWS) * 4;
                for (int32_t ch = 0; ch < run_cols / BN_I2R16_CHUNK_COLS; ch++) {
                    const int32_t chunk = c0 / BN_I2R16_CHUNK_COLS + ch;
                    if (chunk >= chunks) break;
                    const uint8_t *c = codes[rr] + ch * BN_I2R16_CHUNK_COLS;
                    uint8_t *b = grp + (size_t)chunk * BN_I2R16_CHUNK_BYTES;
                    for (int32_t i = 0; i < 4; i++)
                        b[i] = (uint8_t)(c[i] | c[4 + i] << 2 | c[8 + i] << 4 | c[12 + i] << 6);
                }
            }
        }
    }
    return bad;
}

/* Read-only validation for kernels that run on a file's TL bytes in place: the
 * file is trusted for nothing the kernels rely on. Index nibbles are checked 16
 * at a time in 64-bit words (TL1: > 8 is bit 3 with any of bits 0-2; TL2: > 13
 * is bits 1-3 all set), across every tile, padding included; TL2's per-row
 * negative-slot counts, which the kernels add to their sums, must equal the
 * sign bits' popcount per row. */
int64_t bn_tl_check(int32_t type, const uint8_t *data, int32_t m, int32_t k) {
    const int32_t m_pad = bn_pad_rows(m), s_pad = bn_tl_slots(type, k);
    const int32_t groups = s_pad / BN_TL_GROUP_SLOTS, gbytes = bn_tl_group_bytes(type);
    const size_t tstride = tile_stride(type, s_pad), tiles = (size_t)(m_pad / BN_TL_ROWS);
    const uint64_t hi = 0x8888888888888888ull, lo = 0x7777777777777777ull;
    int64_t bad = 0;
    for (size_t t = 0; t < tiles; t++) {
        const uint8_t *tile = data + t * tstride;
        int32_t negs[BN_TL_ROWS] = {0};
        for (int32_t g = 0; g < groups; g++) {
            const uint8_t *group = tile + (size_t)g * (size_t)gbytes;
            for (int32_t b = 0; b < 128; b += 8) {
                uint64_t v;
                memcpy(&v, group + b, sizeof v);
                const uint64_t over = type == 1 ? (v & hi) & (((v & lo) + lo) & hi) : v & (v << 1) & (v << 2) & hi;
                bad += __builtin_popcountll(over);
            }
            if (type != 2) continue;
            for (int32_t wi = 0; wi < 4; wi++) {
                uint64_t word = 0;
                for (int32_t b = 0; b < 8; b++) word |= (uint64_t)group[128 + 8 * wi + b] << (8 * b);
                /* bits 16·(2·half + q) .. +15 belong to rows 16·half .. 16·half+15 */
                for (int32_t half = 0; half < 2; half++)
                    for (int32_t q = 0; q < 2; q++) {
                        uint32_t bits = (uint32_t)(word >> (16 * (2 * half + q))) & 0xFFFFu;
                        while (bits) {
                            negs[16 * half + __builtin_ctz(bits)]++;
                            bits &= bits - 1;
                        }
                    }
            }
        }
        if (type == 2) {
            const uint8_t *counts = data + tiles * tstride + t * BN_TL_ROWS * sizeof(int32_t);
            for (int32_t rr = 0; rr < BN_TL_ROWS; rr++) {
                int32_t stored;
                memcpy(&stored, counts + (size_t)rr * sizeof stored, sizeof stored);
                bad += stored != negs[rr];
            }
        }
    }
    return bad;
}

void bn_tl_adopt(int32_t type, const uint8_t *src, int32_t m, int32_t k, uint8_t *dst) {
    const int32_t m_pad = bn_pad_rows(m), s_pad = bn_tl_slots(type, k);
    const size_t tiles = (size_t)(m_pad / BN_TL_ROWS) * tile_stride(type, s_pad);
    memcpy(dst, src, tiles);
    if (type != 2) return;
    /* the per-row counts of negative slots, from the sign words (a file's own tail is not trusted) */
    const int32_t groups = s_pad / BN_TL_GROUP_SLOTS;
    int32_t *negcount = (int32_t *)(dst + tiles);
    for (int32_t row0 = 0; row0 < m_pad; row0 += BN_TL_ROWS) {
        const uint8_t *tile = dst + (size_t)(row0 / BN_TL_ROWS) * tile_stride(type, s_pad);
        int32_t negs[BN_TL_ROWS] = {0};
        for (int32_t g = 0; g < groups; g++) {
            const uint8_t *signs = tile + (size_t)g * BN_TL2_GROUP_BYTES + 128;
            for (int32_t wi = 0; wi < 4; wi++) {
                uint64_t word = 0;
                for (int32_t b = 0; b < 8; b++) word |= (uint64_t)signs[8 * wi + b] << (8 * b);
                /* bit 16·(2·(rr/16) + q) + rr%16 (q = 0, 1) belongs to row rr */
                for (int32_t half = 0; half < 2; half++)
                    for (int32_t q = 0; q < 2; q++) {
                        uint32_t bits = (uint32_t)(word >> (16 * (2 * half + q))) & 0xFFFFu;
                        while (bits) {
                            negs[16 * half + __builtin_ctz(bits)]++;
                            bits &= bits - 1;
                        }
                    }
            }
        }
        memcpy(&negcount[row0], negs, sizeof negs);
    }
}

int bn_tl_weight(int32_t type, const uint8_t *data, int32_t m, int32_t k, int32_t r, int32_t c) {
    (void)m;
    const int32_t s_pad = bn_tl_slots(type, k), width = slot_width(type);
    const int32_t s = c / width, pos = c % width, j = s % BN_TL_GROUP_SLOTS, rr = r % BN_TL_ROWS;
    const uint8_t *group = data + (size_t)(r / BN_TL_ROWS) * tile_stride(type, s_pad) +
                           (size_t)(s / BN_TL_GROUP_SLOTS) * (size_t)bn_tl_group_bytes(type);
    const int32_t index = (group[bn_tl_index_byte(j, rr)] >> (4 * (j & 1))) & 15;
    int32_t d[3];
    bn_tl_digits(type, index, d);
    int32_t wv = d[pos];
    const int32_t bit = bn_tl_sign_bit(j, rr);
    if (type == 2 && ((group[bit / 8] >> (bit % 8)) & 1)) wv = -wv;
    return wv;
}

static long cache_bytes(int level) {
    long v = -1;
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE)
    v = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
#endif
    if (v <= 0) v = level == 1 ? 32 * 1024 : 512 * 1024;
    return v;
}

/* GEMV (n = 1): one K block for the whole row when its tables fit the
 * stack buffer, so the weights stream sequentially (the tables, 32 bytes
 * per slot, may then be read from L2; measured faster on Zen 4 than
 * L1-sized blocks, whose strided runs defeat prefetching). GEMM: 8 activation rows
 * per table batch, their tables together in half of L1, so each tile's
 * block of weights is reused from L1 8 times per load from memory. */
bn_tl_tiling bn_tl_default_tiling(int32_t type, int32_t m, int32_t k, int32_t n) {
    (void)m;
    bn_tl_tiling t;
    t.token_block = n <= 1 ? 1 : 8;
    long slots = n <= 1 ? BN_TL_LUT_STACK / 32 : cache_bytes(1) / 2 / 32 / t.token_block;
    const long all = bn_tl_slots(type, k);
    if (n <= 1 && slots > all) slots = all;
    if (slots < 8) slots = 8;
    t.block_slots = (int32_t)(slots / 8 * 8);
    t.chunk_tiles = BN_TL_ACC_STACK / (BN_TL_ROWS * t.token_block);
    return t;
}

bn_tl_matrix bn_tl_matrix_make(int32_t type, const uint8_t *data, int32_t m, int32_t k, float scale) {
    bn_tl_matrix w;
    w.data = data;
    w.type = type;
    w.m = m;
    w.k = k;
    w.m_pad = bn_pad_rows(m);
    w.k_pad = bn_pad_cols(k);
    w.slots = bn_tl_slots(type, k);
    w.scale = scale;
    w.tiling = bn_tl_default_tiling(type, m, k, 1);
    return w;
}

void bn_tl_drive(const bn_tl_ops *ops, const bn_tl_matrix *w, const int8_t *x, const float *x_scale, int32_t n,
                 float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    if (row_begin >= end || n <= 0) return;
    _Alignas(64) uint8_t lut[BN_TL_LUT_STACK];
    _Alignas(64) int32_t acc[BN_TL_ACC_STACK];
    const int32_t lsb = ops->lut_slot_bytes, s_pad = w->slots, type = w->type;
    /* clamp the tiling to the stack buffers; any values give the same answer */
    int32_t tb = n == 1 ? 1 : w->tiling.token_block;
    if (tb < 1) tb = 1;
    if (tb > 16) tb = 16;
    if (tb > n) tb = n;
    int32_t kb = w->tiling.block_slots / BN_TL_GROUP_SLOTS * BN_TL_GROUP_SLOTS;
    if (kb < BN_TL_GROUP_SLOTS) kb = BN_TL_GROUP_SLOTS;
    if (kb > s_pad) kb = s_pad;
    if ((int64_t)tb * kb * lsb > BN_TL_LUT_STACK)
        kb = bn_min_i32(kb, BN_TL_LUT_STACK / (tb * lsb) / BN_TL_GROUP_SLOTS * BN_TL_GROUP_SLOTS);
    int32_t rt = w->tiling.chunk_tiles;
    if (rt < 1) rt = 1;
    if (rt > BN_TL_ACC_STACK / (BN_TL_ROWS * tb)) rt = BN_TL_ACC_STACK / (BN_TL_ROWS * tb);
    const size_t tstride = tile_stride(type, s_pad);
    const int32_t *negcount =
        type == 2 && ops->xor_sign ? (const int32_t *)(w->data + (size_t)(w->m_pad / BN_TL_ROWS) * tstride) : NULL;
    const int32_t tile_begin = row_begin / BN_TL_ROWS, tile_end = (end + BN_TL_ROWS - 1) / BN_TL_ROWS;
    for (int32_t t0 = 0; t0 < n; t0 += tb) {
        const int32_t nt = bn_min_i32(tb, n - t0);
        for (int32_t c0 = tile_begin; c0 < tile_end; c0 += rt) {
            const int32_t c1 = bn_min_i32(tile_end, c0 + rt), rows = (c1 - c0) * BN_TL_ROWS;
            memset(acc, 0, sizeof(int32_t) * (size_t)rows * (size_t)nt);
            for (int32_t s0 = 0; s0 < s_pad; s0 += kb) {
                const int32_t ns = bn_min_i32(kb, s_pad - s0);
                for (int32_t j = 0; j < nt; j++)
                    ops->build(lut + (size_t)j * (size_t)kb * (size_t)lsb, x + (size_t)(t0 + j) * (size_t)w->k_pad,
                               w->k_pad, s0, ns, type);
                for (int32_t c = c0; c < c1; c++)
                    for (int32_t j = 0; j < nt; j++)
                        ops->tile(w->data + (size_t)c * tstride, s0, ns, lut + (size_t)j * (size_t)kb * (size_t)lsb,
                                  acc + (size_t)j * (size_t)rows + (size_t)(c - c0) * BN_TL_ROWS, type);
            }
            const int32_t r0 = c0 * BN_TL_ROWS > row_begin ? c0 * BN_TL_ROWS : row_begin;
            const int32_t r1 = bn_min_i32(end, c1 * BN_TL_ROWS);
            for (int32_t j = 0; j < nt; j++) {
                const float factor = w->scale / x_scale[t0 + j];
                float *yt = y + (size_t)(t0 + j) * (size_t)ldy;
                const int32_t *at = acc + (size_t)j * (size_t)rows - (size_t)c0 * BN_TL_ROWS;
                for (int32_t r = r0; r < r1; r++) {
                    int32_t dot = at[r];
                    if (negcount) {
                        int32_t nc;
                        memcpy(&nc, &negcount[r], sizeof nc);
                        dot += nc;
                    }
                    yt[r] = (float)dot * factor;
                }
            }
        }
    }
}

static void tl_task(void *ctx, int32_t ith, int32_t nth) { bn_tl_matmul_task(ctx, ith, nth); }

void bn_tl_matmul_task(void *ctx, int32_t ith, int32_t nth) {
    const bn_tl_job *j = (const bn_tl_job *)ctx;
    const int32_t units = j->w->m_pad / BN_ROW_ALIGN;
    const int32_t begin = (int32_t)((int64_t)units * ith / nth) * BN_ROW_ALIGN;
    const int32_t end = (int32_t)((int64_t)units * (ith + 1) / nth) * BN_ROW_ALIGN;
    if (begin < end) j->kernel(j->w, j->x, j->x_scale, NULL, j->n, j->y, j->ldy, begin, end);
}

void bn_tl_matmul(bn_pool *pool, const bn_kernels *k, const bn_tl_matrix *w, const int8_t *x,
                  const float *x_scale, int32_t n, float *y, int32_t ldy) {
    bn_tl_job j;
    j.kernel = w->type == 1 ? (n == 1 ? k->tl1_gemv : k->tl1_gemm) : (n == 1 ? k->tl2_gemv : k->tl2_gemm);
    j.w = w;
    j.x = x;
    j.x_scale = x_scale;
    j.n = n;
    j.ldy = ldy;
    j.y = y;
    const int32_t units = w->m_pad / BN_ROW_ALIGN;
    const int32_t nth = bn_min_i32(pool ? bn_pool_threads(pool) : 1, units > 0 ? units : 1);
    if (!pool) { tl_task(&j, 0, 1); return; }
    bn_pool_run_n(pool, tl_task, &j, nth);
}
