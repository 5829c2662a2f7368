/* NEON twin of bn_qblock_gemm_scalar (src/scalar/gemm_qblock_scalar.c), used
 * by the neon and dotprod levels. Each block's integer sum is formed with
 * widening multiplies (smull/smlal: two products ≤ 2·128·127 per int16 lane)
 * and pairwise-added to int32, exact; the float update is then the scalar's,
 * statement for statement, so results are bit-identical to the spec. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* Σ a_i·b_i over 16 signed bytes (|a·b| ≤ 128·127), exact. */
static inline int32_t dot16(int8x16_t a, int8x16_t b) {
    const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
    return vaddvq_s32(vpaddlq_s16(p));
}

static inline void q4k_scale_min(const uint8_t *s, int j, int32_t *sc, int32_t *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// w: (m, row_bytes) blocks, x: (n, k) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
void bn_qblock_gemm_neon(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                         int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), k = w->k, type = w->type;
    const int32_t B = bn_qblock_size(type), nb = k / B, bytes = bn_qblock_bytes(type);
    const uint8x16_t m4 = vdupq_n_u8(0xF), m2 = vdupq_n_u8(3);
    /* rows outer: one row's blocks stay in L1 for every activation row */
    for (int32_t r = row_begin; r < end; r++) {
        const uint8_t *row = w->data + (size_t)r * (size_t)w->row_bytes;
        for (int32_t t = 0; t < n; t++) {
            const int8_t *xt = x + (size_t)t * (size_t)k;
            const float *xs = x_scale + (size_t)t * (size_t)nb;
            const int32_t *bs = x_bsum ? x_bsum + (size_t)t * (size_t)(k / 16) : NULL;
            float acc = 0;
            for (int32_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + (size_t)b * (size_t)bytes;
                const int8_t *q = xt + (size_t)b * (size_t)B;
                int32_t isum = 0, msum = 0;
                float d, dmin = 0;
                if (type == BN_QBLOCK_Q8_0) {
                    d = bn_qblock_half(rd16(blk));
                    isum = dot16(vld1q_s8((const int8_t *)blk + 2), vld1q_s8(q)) +
                           dot16(vld1q_s8((const int8_t *)blk + 18), vld1q_s8(q + 16));
                } else if (type == BN_QBLOCK_Q4_0) {
                    d = bn_qblock_half(rd16(blk));
                    const uint8x16_t raw = vld1q_u8(blk + 2);
                    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, m4)), vdupq_n_s8(8));
                    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
                    isum = dot16(lo, vld1q_s8(q)) + dot16(hi, vld1q_s8(q + 16));
                } else if (type == BN_QBLOCK_Q4_K) {
                    d = bn_qblock_half(rd16(blk));
                    dmin = bn_qblock_half(rd16(blk + 2));
                    for (int j = 0; j < 8; j++) {
                        int32_t sc, mn;
                        q4k_scale_min(blk + 4, j, &sc, &mn);
                        const uint8_t *nib = blk + 16 + 32 * (j / 2);
                        int32_t s = 0;
                        for (int h = 0; h < 2; h++) {
                            const uint8x16_t raw = vld1q_u8(nib + 16 * h);
                            const uint8x16_t u = (j & 1) ? vshrq_n_u8(raw, 4) : vandq_u8(raw, m4);
                            s += dot16(vreinterpretq_s8_u8(u), vld1q_s8(q + 32 * j + 16 * h));
                        }
                        isum += sc * s;
                        msum += mn * (bs[16 * b + 2 * j] + bs[16 * b + 2 * j + 1]);
                    }
                } else { /* BN_QBLOCK_Q6_K: quarter c of half h = elements 128h + 32c .. + 31 */
                    d = bn_qblock_half(rd16(blk + 208));
                    const int8_t *sc = (const int8_t *)(blk + 192);
                    for (int h = 0; h < 2; h++)
                        for (int c = 0; c < 4; c++)
                            for (int g = 0; g < 2; g++) { /* 16-element group: sub-scale 8h + 2c + g */
                                const uint8x16_t lo = vld1q_u8(blk + 64 * h + 32 * (c & 1) + 16 * g);
                                const uint8x16_t hb = vld1q_u8(blk + 128 + 32 * h + 16 * g);
                                const uint8x16_t low = c < 2 ? vandq_u8(lo, m4) : vshrq_n_u8(lo, 4);
                                uint8x16_t high = hb;
                                if (c == 1) high = vshrq_n_u8(hb, 2);
                                if (c == 2) high = vshrq_n_u8(hb, 4);
                                if (c == 3) high = vshrq_n_u8(hb, 6);
                                const uint8x16_t u = vorrq_u8(low, vshlq_n_u8(vandq_u8(high, m2), 4));
                                const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(u), vdupq_n_s8(32));
                                isum += sc[8 * h + 2 * c + g] * dot16(v, vld1q_s8(q + 128 * h + 32 * c + 16 * g));
                            }
                }
                const float xd = xs[b];
                const float a = d * xd;
                const float p = a * (float)isum;
                acc = acc + p;
                if (type == BN_QBLOCK_Q4_K) {
                    const float am = dmin * xd;
                    const float pm = am * (float)msum;
                    acc = acc - pm;
                }
            }
            y[(size_t)t * (size_t)ldy + (size_t)r] = acc;
        }
    }
}
#endif
