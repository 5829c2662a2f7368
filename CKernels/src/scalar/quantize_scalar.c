/* Per-token int8 activation quantization, BitNet b1.58 (docs/FORMATS.md §2.2, §3.5):
 * the specification every SIMD twin must match bit for bit. */
#include <math.h>
#include "internal.h"

// x: (n, ldx) f32, k used columns → q: (n, k_pad) int8, scale: (n,), sum: (n,)
void bn_quantize_scalar(const float *x, int32_t n, int32_t k, int32_t ldx,
                        int8_t *q, int32_t k_pad, float *scale, int32_t *sum) {
    for (int32_t t = 0; t < n; t++) {
        const float *row = x + (size_t)t * (size_t)ldx;
        int8_t *qrow = q + (size_t)t * (size_t)k_pad;
        float amax = 0.0f;
        for (int32_t i = 0; i < k; i++) {
            float a = fabsf(row[i]);
            amax = a > amax ? a : amax; /* NaN never wins, as in the SIMD max(v, acc) */
        }
        /* The 1e-5 floor keeps all-zero rows finite (the reference clamps the same way). */
        const float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
        int32_t total = 0;
        for (int32_t i = 0; i < k; i++) {
            /* rintf rounds half to even in the default FP mode, like torch.round. */
            float v = rintf(row[i] * s);
            v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
            int8_t qi = (v == v) ? (int8_t)v : (int8_t)-128; /* NaN → -128, as cvtps does */
            qrow[i] = qi;
            total += qi;
        }
        for (int32_t i = k; i < k_pad; i++) qrow[i] = 0;
        scale[t] = s;
        sum[t] = total;
    }
}
