/* NEON twin of bn_q8_gemm_scalar (src/scalar/gemm_q8_scalar.c): a 16-byte
 * quarter of a Q8_R16 chunk is 4 rows × 4 columns; smull + pairwise adds
 * reduce it against one activation word (int16 pairs ≤ 2·127·127). */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>
#include "internal.h"

// w: (m_pad, k_pad) Q8_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
void bn_q8_gemm_neon(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                     int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), chunks = w->k_pad / 4;
    for (int32_t g = row_begin / 16; g * 16 < end; g++) {
        const int8_t *p = w->data + (size_t)g * (size_t)w->k_pad * 16;
        for (int32_t t = 0; t < n; t++) {
            const int8_t *xt = x + (size_t)t * (size_t)w->k_pad;
            int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
            for (int32_t c = 0; c < chunks; c++) {
                int32_t word;
                memcpy(&word, xt + 4 * c, 4);
                const int8x16_t q = vmaxq_s8(vreinterpretq_s8_s32(vdupq_n_s32(word)), vdupq_n_s8(-127));
                for (int qd = 0; qd < 4; qd++) {
                    const int8x16_t wv = vld1q_s8(p + (size_t)c * 64 + 16 * qd);
                    const int16x8_t pr = vpaddq_s16(vmull_s8(vget_low_s8(wv), vget_low_s8(q)), vmull_high_s8(wv, q));
                    acc[qd] = vpadalq_s16(acc[qd], pr);
                }
            }
            for (int qd = 0; qd < 4; qd++) {
                int32_t dots[4];
                vst1q_s32(dots, acc[qd]);
                for (int i = 0; i < 4 && g * 16 + 4 * qd + i < end; i++) {
                    const int32_t r = g * 16 + 4 * qd + i;
                    y[(size_t)t * (size_t)ldy + (size_t)r] = (float)dots[i] * (w->row_scale[r] / x_scale[t]);
                }
            }
        }
    }
}
#endif
