/* Ternary (I2_R16) × int8 matrix product: the specification of every
 * bn_i2s_gemv_* / bn_i2s_gemm_* kernel (layout in bitnet_kernels.h). */
#include "internal.h"

int bn_i2r16_code(const uint8_t *data, int32_t k_pad, int32_t r, int32_t c) {
    const int32_t g = r / BN_I2R16_ROWS, row_in_group = r % BN_I2R16_ROWS;
    const int32_t chunk = c / BN_I2R16_CHUNK_COLS, col_in_chunk = c % BN_I2R16_CHUNK_COLS;
    const int32_t plane = col_in_chunk / 4;
    const int32_t byte = row_in_group * 4 + col_in_chunk % 4;
    const uint8_t b = data[bn_i2r16_chunk_offset(k_pad, g, chunk) + (size_t)byte];
    return (b >> (2 * plane)) & 3;
}

// w: (m_pad, k_pad) I2_R16, x: (n, k_pad) int8 → y: (n, ldy) f32, rows [row_begin, min(row_end, m))
void bn_i2s_gemm_scalar(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                        const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    for (int32_t t = 0; t < n; t++) {
        const int8_t *xt = x + (size_t)t * (size_t)w->k_pad;
        const float factor = w->scale / x_scale[t];
        for (int32_t r = row_begin; r < end; r++) {
            /* codes are weight+1, so Σcode·q − Σq = Σweight·q (exact, see header bounds) */
            int32_t acc = 0;
            for (int32_t c = 0; c < w->k_pad; c++)
                acc += bn_i2r16_code(w->data, w->k_pad, r, c) * (int32_t)xt[c];
            y[(size_t)t * (size_t)ldy + (size_t)r] = (float)(acc - x_sum[t]) * factor;
        }
    }
}
