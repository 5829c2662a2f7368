/* Int8 head (Q8_R16) × int8 activations: the specification of every
 * bn_q8_gemm_* kernel (layout in bitnet_kernels.h). */
#include "internal.h"

// w: (m_pad, k_pad) Q8_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
void bn_q8_gemm_scalar(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                       int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    for (int32_t t = 0; t < n; t++) {
        const int8_t *xt = x + (size_t)t * (size_t)w->k_pad;
        for (int32_t r = row_begin; r < end; r++) {
            const int8_t *group = w->data + (size_t)(r / 16) * (size_t)w->k_pad * 16;
            int32_t acc = 0;
            for (int32_t c = 0; c < w->k_pad; c++) {
                const int32_t q = xt[c] < -127 ? -127 : xt[c]; /* symmetric range: see the header */
                acc += (int32_t)group[(size_t)(c / 4) * 64 + (size_t)((r % 16) * 4 + c % 4)] * q;
            }
            y[(size_t)t * (size_t)ldy + (size_t)r] = (float)acc * (w->row_scale[r] / x_scale[t]);
        }
    }
}
