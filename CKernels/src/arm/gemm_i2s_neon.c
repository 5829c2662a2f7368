/* NEON twins of bn_i2s_gemm_scalar (src/scalar/gemm_i2s_scalar.c). A 64-byte
 * I2_R16 chunk is four 16-byte quarters of 4 rows × 16 columns; plane s of a
 * quarter is 4 rows × 4 columns: one sdot against activation word s (with
 * dotprod), or smull + pairwise adds without it. Every int32 lane ends as one
 * row's dot product. This version re-unpacks the weights per activation row;
 * a register-tiled GEMM for arm64 is future work (it cannot be timed here). */
#if defined(__aarch64__)
#include <arm_neon.h>
#include "internal.h"

static inline void store4(float *y, int32x4_t acc, int32_t sum, float factor, int32_t row0, int32_t end) {
    const float32x4_t v = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(acc, vdupq_n_s32(sum))), factor);
    if (end - row0 >= 4) {
        vst1q_f32(y + row0, v);
    } else {
        float tmp[4];
        vst1q_f32(tmp, v);
        for (int32_t r = row0; r < end; r++) y[r] = tmp[r - row0];
    }
}

/* One plane (4 rows × 4 columns) times one activation word: int16 pair sums
 * ordered [r0 r0 r1 r1 r2 r2 r3 r3], each ≤ 3·128·2 in magnitude. */
static inline int16x8_t plane_prod(uint8x16_t codes, int32x4_t xword) {
    const int8x16_t c = vreinterpretq_s8_u8(codes), xs = vreinterpretq_s8_s32(xword);
    return vpaddq_s16(vmull_s8(vget_low_s8(c), vget_low_s8(xs)), vmull_high_s8(c, xs));
}

/* The four planes of a quarter add to ≤ 3072 per int16 lane, then widen
 * pairwise into the four row accumulators. */
static inline int32x4_t quarter_dot(int32x4_t acc, uint8x16_t v, int8x16_t xw) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    const int32x4_t x32 = vreinterpretq_s32_s8(xw);
    int16x8_t s = plane_prod(vandq_u8(v, m3), vdupq_laneq_s32(x32, 0));
    s = vaddq_s16(s, plane_prod(vandq_u8(vshrq_n_u8(v, 2), m3), vdupq_laneq_s32(x32, 1)));
    s = vaddq_s16(s, plane_prod(vandq_u8(vshrq_n_u8(v, 4), m3), vdupq_laneq_s32(x32, 2)));
    s = vaddq_s16(s, plane_prod(vshrq_n_u8(v, 6), vdupq_laneq_s32(x32, 3)));
    return vpadalq_s16(acc, s);
}

// w: (m_pad, k_pad) I2_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, row_end)
void bn_i2s_gemm_neon(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                      int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), nchunks = w->k_pad / BN_I2R16_CHUNK_COLS;
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        const uint8_t *p = w->data + bn_i2r16_chunk_offset(w->k_pad, g, 0);
        for (int32_t t = 0; t < n; t++) {
            const int8_t *xt = x + (size_t)t * (size_t)w->k_pad;
            int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
            for (int32_t c = 0; c < nchunks; c++) {
                const int8x16_t xw = vld1q_s8(xt + c * BN_I2R16_CHUNK_COLS);
                for (int qd = 0; qd < 4; qd++)
                    acc[qd] = quarter_dot(acc[qd], vld1q_u8(p + (size_t)c * 64 + 16 * qd), xw);
            }
            const float factor = w->scale / x_scale[t];
            for (int qd = 0; qd < 4; qd++)
                store4(y + (size_t)t * (size_t)ldy, acc[qd], x_sum[t], factor, g * BN_I2R16_ROWS + 4 * qd, end);
        }
    }
}

__attribute__((target("dotprod")))
void bn_i2s_gemm_neon_dotprod(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                              const int32_t *x_sum, int32_t n, float *y, int32_t ldy, int32_t row_begin,
                              int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), nchunks = w->k_pad / BN_I2R16_CHUNK_COLS;
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int32_t g = row_begin / BN_I2R16_ROWS; g * BN_I2R16_ROWS < end; g++) {
        const uint8_t *p = w->data + bn_i2r16_chunk_offset(w->k_pad, g, 0);
        for (int32_t t = 0; t < n; t++) {
            const int8_t *xt = x + (size_t)t * (size_t)w->k_pad;
            int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
            for (int32_t c = 0; c < nchunks; c++) {
                const int8x16_t xw = vld1q_s8(xt + c * BN_I2R16_CHUNK_COLS);
                for (int qd = 0; qd < 4; qd++) {
                    const uint8x16_t v = vld1q_u8(p + (size_t)c * 64 + 16 * qd);
                    acc[qd] = vdotq_laneq_s32(acc[qd], vreinterpretq_s8_u8(vandq_u8(v, m3)), xw, 0);
                    acc[qd] = vdotq_laneq_s32(acc[qd], vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m3)), xw, 1);
                    acc[qd] = vdotq_laneq_s32(acc[qd], vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m3)), xw, 2);
                    acc[qd] = vdotq_laneq_s32(acc[qd], vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), xw, 3);
                }
            }
            const float factor = w->scale / x_scale[t];
            for (int qd = 0; qd < 4; qd++)
                store4(y + (size_t)t * (size_t)ldy, acc[qd], x_sum[t], factor, g * BN_I2R16_ROWS + 4 * qd, end);
        }
    }
}
#endif
