/* NEON twins of the TL1 / TL2 scalar kernels. Each 16-byte lane of a group
 * is 16 rows of one pair of slots; vqtbl1q looks the 16 rows up in a slot's
 * 16-byte low and high planes, vzip interleaves them into int16. TL2 signs:
 * 16 sign bits become byte masks (vtst) and XOR turns T into ~T = -T - 1
 * (the driver adds the per-row negative-slot counts). int16 sums run over
 * at most 64 slots (≤ 24,640) before widening. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>
#include "internal.h"

enum { WIDEN_SLOTS = 64 };

static const int16_t t2d[3][16] = {
    {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
    {0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0},
    {0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0}};
static const int16_t t1d[2][16] = {
    {-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0}};

// x: (k_pad,) int8 → lut: ns × [lo 16 | hi 16]
static void build_neon(uint8_t *lut, const int8_t *x, int32_t k_pad, int32_t s0, int32_t ns, int32_t type) {
    const int width = type == 1 ? 2 : 3;
    const int16_t(*d)[16] = type == 1 ? t1d : t2d;
    int16x8_t dl[3], dh[3];
    for (int i = 0; i < width; i++) {
        dl[i] = vld1q_s16(d[i]);
        dh[i] = vld1q_s16(d[i] + 8);
    }
    for (int32_t s = 0; s < ns; s++) {
        int16x8_t tl = vdupq_n_s16(0), th = tl;
        for (int i = 0; i < width; i++) {
            const int16x8_t a = vdupq_n_s16((int16_t)bn_tl_act(x, k_pad, (s0 + s) * width + i));
            tl = vmlaq_s16(tl, a, dl[i]);
            th = vmlaq_s16(th, a, dh[i]);
        }
        const uint8x16_t bl = vreinterpretq_u8_s16(tl), bh = vreinterpretq_u8_s16(th);
        vst1q_u8(lut + (size_t)s * 32, vuzp1q_u8(bl, bh));      /* low bytes of entries 0..15 */
        vst1q_u8(lut + (size_t)s * 32 + 16, vuzp2q_u8(bl, bh)); /* high bytes */
    }
}

/* 16 sign bits (bit r = row r of the half) → 16 byte masks */
static inline uint8x16_t sign_mask16(const uint8_t *p) {
    static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8(p[0]), vdup_n_u8(p[1]));
    return vtstq_u8(v, vld1q_u8(bits));
}

static inline void lookup(uint8x16_t idx, const uint8_t *t, uint8x16_t m, int16x8_t *a0, int16x8_t *a1) {
    const uint8x16_t l = veorq_u8(vqtbl1q_u8(vld1q_u8(t), idx), m);
    const uint8x16_t h = veorq_u8(vqtbl1q_u8(vld1q_u8(t + 16), idx), m);
    *a0 = vaddq_s16(*a0, vreinterpretq_s16_u8(vzip1q_u8(l, h))); /* rows 0-7 of the half */
    *a1 = vaddq_s16(*a1, vreinterpretq_s16_u8(vzip2q_u8(l, h))); /* rows 8-15 */
}

static inline __attribute__((always_inline)) void tile_body(const uint8_t *tile, int32_t s0, int32_t ns,
                                                            const uint8_t *lut, int32_t *acc, const int tl2) {
    const int32_t gbytes = tl2 ? BN_TL2_GROUP_BYTES : BN_TL1_GROUP_BYTES;
    const uint8x16_t low4 = vdupq_n_u8(0x0f), zero = vdupq_n_u8(0);
    for (int32_t b0 = 0; b0 < ns; b0 += WIDEN_SLOTS) {
        const int32_t b1 = bn_min_i32(ns, b0 + WIDEN_SLOTS);
        int16x8_t a[4] = {vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0)};
        for (int32_t s = b0; s < b1; s += BN_TL_GROUP_SLOTS) {
            const uint8_t *g = tile + (size_t)((s0 + s) / BN_TL_GROUP_SLOTS) * (size_t)gbytes;
            const uint8_t *t = lut + (size_t)s * 32;
            for (int p = 0; p < 4; p++)
                for (int half = 0; half < 2; half++) {
                    const uint8x16_t v = vld1q_u8(g + bn_tl_index_byte(2 * p, 16 * half));
                    const uint8x16_t n0 = vandq_u8(v, low4), n1 = vshrq_n_u8(v, 4);
                    const uint8x16_t m0 = tl2 ? sign_mask16(g + bn_tl_sign_bit(2 * p, 16 * half) / 8) : zero;
                    const uint8x16_t m1 = tl2 ? sign_mask16(g + bn_tl_sign_bit(2 * p + 1, 16 * half) / 8) : zero;
                    lookup(n0, t + 64 * p, m0, &a[2 * half], &a[2 * half + 1]);
                    lookup(n1, t + 64 * p + 32, m1, &a[2 * half], &a[2 * half + 1]);
                }
        }
        for (int i = 0; i < 4; i++) {
            int32x4_t lo = vld1q_s32(acc + 8 * i), hi = vld1q_s32(acc + 8 * i + 4);
            vst1q_s32(acc + 8 * i, vaddw_s16(lo, vget_low_s16(a[i])));
            vst1q_s32(acc + 8 * i + 4, vaddw_high_s16(hi, a[i]));
        }
    }
}

static void tile_neon(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc, int32_t type) {
    if (type == 2) tile_body(tile, s0, ns, lut, acc, 1);
    else tile_body(tile, s0, ns, lut, acc, 0);
}

static const bn_tl_ops ops_neon = {32, 1, build_neon, tile_neon};

void bn_tl1_gemm_neon(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                      int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_neon, w, x, x_scale, n, y, ldy, row_begin, row_end);
}

void bn_tl2_gemm_neon(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                      int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_neon, w, x, x_scale, n, y, ldy, row_begin, row_end);
}
#endif
