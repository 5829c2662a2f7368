/* TL1 / TL2 lookup-table kernels, scalar: the specification of every
 * bn_tl*_gemm_* kernel (layout in bitnet_kernels.h). The table of a slot is
 * 16 int16 entries (T[i] = Σ d·a over the slot's digits); a slot of a row
 * adds T[index] (TL2: negated when its sign bit is set), summed exactly in
 * int32. The SIMD kernels do the same lookups with byte shuffles. */
#include "internal.h"

// x: (k_pad,) int8 → lut: ns × 16 int16
static void build_scalar(uint8_t *lut, const int8_t *x, int32_t k_pad, int32_t s0, int32_t ns, int32_t type) {
    const int32_t width = type == 1 ? 2 : 3;
    int16_t *t = (int16_t *)(void *)lut;
    for (int32_t s = 0; s < ns; s++) {
        int32_t a[3] = {0, 0, 0};
        for (int32_t i = 0; i < width; i++) a[i] = bn_tl_act(x, k_pad, (s0 + s) * width + i);
        for (int32_t e = 0; e < 16; e++) {
            int32_t d[3];
            bn_tl_digits(type, e, d);
            t[s * 16 + e] = (int16_t)(d[0] * a[0] + d[1] * a[1] + d[2] * a[2]);
        }
    }
}

static void tile_scalar(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc,
                        int32_t type) {
    const int16_t *t = (const int16_t *)(const void *)lut;
    const int32_t gbytes = bn_tl_group_bytes(type);
    for (int32_t s = s0; s < s0 + ns; s++) {
        const uint8_t *group = tile + (size_t)(s / BN_TL_GROUP_SLOTS) * (size_t)gbytes;
        const int32_t j = s % BN_TL_GROUP_SLOTS;
        const int16_t *ts = t + (s - s0) * 16;
        for (int32_t r = 0; r < BN_TL_ROWS; r++) {
            const int32_t index = (group[bn_tl_index_byte(j, r)] >> (4 * (j & 1))) & 15;
            const int32_t bit = bn_tl_sign_bit(j, r);
            int32_t v = ts[index];
            if (type == 2 && ((group[bit / 8] >> (bit % 8)) & 1)) v = -v;
            acc[r] += v;
        }
    }
}

static const bn_tl_ops ops_scalar = {32, 0, build_scalar, tile_scalar};

// w: TL1 (m_pad, s_pad), x: (n, k_pad) int8 → y: (n, ldy) f32, rows [row_begin, min(row_end, m))
void bn_tl1_gemm_scalar(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_scalar, w, x, x_scale, n, y, ldy, row_begin, row_end);
}

void bn_tl2_gemm_scalar(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_sum;
    bn_tl_drive(&ops_scalar, w, x, x_scale, n, y, ldy, row_begin, row_end);
}
