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

/* Index (TL1: 0..8; TL2: |v| 0..13) and sign of slot s of row r, from a weight getter. */
static void slot_code(int32_t type, const int32_t wv[3], int32_t *index, int32_t *neg) {
    if (type == 1) {
        *index = 3 * (wv[0] + 1) + (wv[1] + 1);
        *neg = 0;
    } else {
        const int32_t v = 9 * wv[0] + 3 * wv[1] + wv[2];
        *index = v < 0 ? -v : v;
        *neg = v < 0;
    }
}

typedef int32_t (*weight_at)(const void *src, int32_t m, int32_t k, int32_t r, int32_t c, int64_t *bad);

static int32_t ternary_at(const void *src, int32_t m, int32_t k, int32_t r, int32_t c, int64_t *bad) {
    (void)m; (void)bad;
    return ((const int8_t *)src)[(size_t)r * (size_t)k + (size_t)c];
}

static int32_t i2r16_at(const void *src, int32_t m, int32_t k, int32_t r, int32_t c, int64_t *bad) {
    (void)m;
    const int code = bn_i2r16_code((const uint8_t *)src, bn_pad_cols(k), r, c);
    if (code == 3) { (*bad)++; return 1; }
    return code - 1;
}

static int64_t pack_from(int32_t type, weight_at at, const void *src, int32_t m, int32_t k, uint8_t *dst) {
    const int32_t m_pad = bn_pad_rows(m), s_pad = bn_tl_slots(type, k), width = slot_width(type);
    const int32_t gbytes = bn_tl_group_bytes(type);
    const size_t tstride = tile_stride(type, s_pad);
    memset(dst, 0, bn_tl_bytes(type, m, k));
    int32_t *negcount = type == 2 ? (int32_t *)(dst + (size_t)(m_pad / BN_TL_ROWS) * tstride) : NULL;
    int64_t bad = 0;
    for (int32_t r = 0; r < m_pad; r++) {
        uint8_t *tile = dst + (size_t)(r / BN_TL_ROWS) * tstride;
        const int32_t rr = r % BN_TL_ROWS;
        int32_t negs = 0;
        for (int32_t s = 0; s < s_pad; s++) {
            int32_t wv[3] = {0, 0, 0};
            for (int32_t i = 0; i < width; i++) {
                const int32_t c = s * width + i;
                if (r < m && c < k) wv[i] = at(src, m, k, r, c, &bad);
            }
            int32_t index, neg;
            slot_code(type, wv, &index, &neg);
            uint8_t *group = tile + (size_t)(s / BN_TL_GROUP_SLOTS) * (size_t)gbytes;
            const int32_t j = s % BN_TL_GROUP_SLOTS;
            group[bn_tl_index_byte(j, rr)] |= (uint8_t)(index << (4 * (j & 1)));
            if (neg) {
                const int32_t bit = bn_tl_sign_bit(j, rr);
                group[bit / 8] |= (uint8_t)(1u << (bit % 8));
                negs++;
            }
        }
        if (negcount) memcpy(&negcount[r], &negs, sizeof negs);
    }
    return bad;
}

void bn_tl_pack(int32_t type, const int8_t *w, int32_t m, int32_t k, uint8_t *dst) {
    pack_from(type, ternary_at, w, m, k, dst);
}

int64_t bn_tl_from_i2r16(int32_t type, const uint8_t *i2r16, int32_t m, int32_t k, uint8_t *dst) {
    return pack_from(type, i2r16_at, i2r16, m, k, dst);
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
