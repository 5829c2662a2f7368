/* NEON twin of bn_quantize_scalar (src/scalar/quantize_scalar.c): same result
 * bit for bit for finite inputs (NaN inputs give unspecified in-range codes). */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include "internal.h"

// x: (n, ldx) f32 → q: (n, k_pad) int8, scale: (n,), sum: (n,)
void bn_quantize_neon(const float *x, int32_t n, int32_t k, int32_t ldx,
                      int8_t *q, int32_t k_pad, float *scale, int32_t *sum) {
    for (int32_t t = 0; t < n; t++) {
        const float *row = x + (size_t)t * (size_t)ldx;
        int8_t *qrow = q + (size_t)t * (size_t)k_pad;
        float32x4_t vmax = vdupq_n_f32(0.0f);
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) vmax = vmaxnmq_f32(vmax, vabsq_f32(vld1q_f32(row + i)));
        float amax = vmaxvq_f32(vmax);
        for (; i < k; i++) {
            const float a = fabsf(row[i]);
            amax = a > amax ? a : amax;
        }
        const float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
        const float32x4_t vs = vdupq_n_f32(s);
        int32x4_t vsum = vdupq_n_s32(0);
        i = 0;
        for (; i + 8 <= k; i += 8) {
            /* vcvtnq rounds half to even; the saturating narrows clamp to [-128, 127] */
            const int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(row + i), vs));
            const int32x4_t b = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(row + i + 4), vs));
            const int8x8_t q8 = vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)));
            vst1_s8(qrow + i, q8);
            vsum = vpadalq_s16(vsum, vmovl_s8(q8));
        }
        int32_t total = vaddvq_s32(vsum);
        for (; i < k; i++) {
            float v = rintf(row[i] * s);
            v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
            const int8_t qi = (v == v) ? (int8_t)v : (int8_t)-128;
            qrow[i] = qi;
            total += qi;
        }
        if (k_pad > k) memset(qrow + k, 0, (size_t)(k_pad - k));
        scale[t] = s;
        sum[t] = total;
    }
}
#endif
