/* Block-quantized heads (Q8_0, Q4_0, Q4_K, Q6_K in the file's layout) × int8
 * activations: the specification of every bn_qblock_gemm_* kernel (output
 * rule in bitnet_kernels.h; block layouts in docs/FORMATS.md). */
#include <math.h>
#include <string.h>
#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* IEEE binary16 → binary32, exact (the same values vcvtph2ps / fcvtl give). */
float bn_qblock_half(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        const float mag = (float)mant * 0x1p-24f; /* zero or subnormal: exact as a normal float */
        memcpy(&bits, &mag, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

int32_t bn_qblock_size(int32_t type) {
    switch (type) {
    case BN_QBLOCK_Q4_0: case BN_QBLOCK_Q8_0: return 32;
    case BN_QBLOCK_Q4_K: case BN_QBLOCK_Q6_K: return 256;
    default: return 0;
    }
}

int32_t bn_qblock_bytes(int32_t type) {
    switch (type) {
    case BN_QBLOCK_Q4_0: return 18;  /* f16 d, 16 bytes of nibbles */
    case BN_QBLOCK_Q8_0: return 34;  /* f16 d, 32 int8 */
    case BN_QBLOCK_Q4_K: return 144; /* f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles */
    case BN_QBLOCK_Q6_K: return 210; /* 128 ql, 64 qh, 16 int8 scales, f16 d */
    default: return 0;
    }
}

int32_t bn_qblock_act_block(int32_t type) { return bn_qblock_size(type); }

void bn_qblock_quantize(int32_t type, const float *x, int32_t n, int32_t k, int32_t ldx, int8_t *q, float *scale,
                        int32_t *bsum) {
    const int32_t B = bn_qblock_act_block(type);
    if (B == 0) return;
    const int32_t groups = k / B;
    for (int32_t t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * (size_t)ldx;
        int8_t *qt = q + (size_t)t * (size_t)k;
        for (int32_t g = 0; g < groups; g++) {
            float amax = 0;
            int finite = 1;
            for (int32_t i = 0; i < B; i++) {
                const float v = xt[g * B + i];
                if (!isfinite(v)) finite = 0;
                else if (fabsf(v) > amax) amax = fabsf(v);
            }
            const float d = finite ? amax / 127.0f : 0.0f;
            const float id = d > 0 ? 1.0f / d : 0.0f;
            for (int32_t i = 0; i < B; i++) {
                float v = roundf(xt[g * B + i] * id);
                if (!(v == v)) v = 0; /* NaN (non-finite group: id = 0 times inf) */
                v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
                qt[g * B + i] = (int8_t)v;
            }
            scale[(size_t)t * (size_t)groups + (size_t)g] = d;
        }
        if (bsum)
            for (int32_t j = 0; j < k / 16; j++) {
                int32_t s = 0;
                for (int32_t i = 0; i < 16; i++) s += qt[j * 16 + i];
                bsum[(size_t)t * (size_t)(k / 16) + (size_t)j] = s;
            }
    }
}

/* Q4_K's 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void q4k_scale_min(const uint8_t *s, int j, int32_t *sc, int32_t *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q6_K element e (0..255) of a block as its signed code q6 - 32, and its sub-scale index e/16. */
static inline int32_t q6k_code(const uint8_t *blk, int e) {
    const uint8_t *ql = blk, *qh = blk + 128;
    const int half = e / 128, l = e % 32, quarter = (e % 128) / 32;
    const uint8_t lo = ql[64 * half + l + 32 * (quarter & 1)];
    const int low = quarter < 2 ? (lo & 0xF) : (lo >> 4);
    const int high = (qh[32 * half + l] >> (2 * quarter)) & 3;
    return (low | (high << 4)) - 32;
}

void bn_qblock_dequantize_row(const bn_qblock_matrix *w, int32_t r, float *dst) {
    const int32_t B = bn_qblock_size(w->type), nb = w->k / B;
    const uint8_t *row = w->data + (size_t)r * (size_t)w->row_bytes;
    for (int32_t b = 0; b < nb; b++) {
        float *y = dst + (size_t)b * (size_t)B;
        switch (w->type) {
        case BN_QBLOCK_Q8_0: {
            const uint8_t *blk = row + (size_t)b * 34;
            const float d = bn_qblock_half(rd16(blk));
            for (int i = 0; i < 32; i++) y[i] = d * (float)(int8_t)blk[2 + i];
            break;
        }
        case BN_QBLOCK_Q4_0: {
            const uint8_t *blk = row + (size_t)b * 18;
            const float d = bn_qblock_half(rd16(blk));
            for (int i = 0; i < 16; i++) {
                y[i] = d * (float)((blk[2 + i] & 0xF) - 8);
                y[i + 16] = d * (float)((blk[2 + i] >> 4) - 8);
            }
            break;
        }
        case BN_QBLOCK_Q4_K: {
            const uint8_t *blk = row + (size_t)b * 144;
            const float d = bn_qblock_half(rd16(blk)), dmin = bn_qblock_half(rd16(blk + 2));
            for (int j = 0; j < 8; j++) {
                int32_t sc, mn;
                q4k_scale_min(blk + 4, j, &sc, &mn);
                const float ds = d * (float)sc, dm = dmin * (float)mn;
                const uint8_t *qs = blk + 16 + 32 * (j / 2);
                for (int i = 0; i < 32; i++) {
                    const int v = (j & 1) ? (qs[i] >> 4) : (qs[i] & 0xF);
                    y[32 * j + i] = ds * (float)v - dm;
                }
            }
            break;
        }
        case BN_QBLOCK_Q6_K: {
            const uint8_t *blk = row + (size_t)b * 210;
            const float d = bn_qblock_half(rd16(blk + 208));
            for (int e = 0; e < 256; e++) y[e] = d * (float)((int8_t)blk[192 + e / 16]) * (float)q6k_code(blk, e);
            break;
        }
        default: memset(y, 0, (size_t)B * sizeof(float)); break;
        }
    }
}

// w: (m, row_bytes) blocks, x: (n, k) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
void bn_qblock_gemm_scalar(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                           int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (void)x_bsum; /* the spec sums (q6 - 32)·q directly; the SIMD kernels use the sums */
    const int32_t end = bn_min_i32(row_end, w->m), k = w->k;
    const int32_t B = bn_qblock_size(w->type), nb = k / B, groups = k / bn_qblock_act_block(w->type);
    const int32_t bytes = bn_qblock_bytes(w->type);
    for (int32_t t = 0; t < n; t++) {
        const int8_t *xt = x + (size_t)t * (size_t)k;
        const float *xs = x_scale + (size_t)t * (size_t)groups;
        for (int32_t r = row_begin; r < end; r++) {
            const uint8_t *row = w->data + (size_t)r * (size_t)w->row_bytes;
            float acc = 0;
            for (int32_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + (size_t)b * (size_t)bytes;
                const int8_t *q = xt + (size_t)b * (size_t)B;
                int32_t isum = 0, msum = 0;
                float d = 0, dmin = 0;
                switch (w->type) {
                case BN_QBLOCK_Q8_0:
                    d = bn_qblock_half(rd16(blk));
                    for (int i = 0; i < 32; i++) isum += (int32_t)(int8_t)blk[2 + i] * q[i];
                    break;
                case BN_QBLOCK_Q4_0:
                    d = bn_qblock_half(rd16(blk));
                    for (int i = 0; i < 16; i++)
                        isum += ((blk[2 + i] & 0xF) - 8) * q[i] + ((blk[2 + i] >> 4) - 8) * q[i + 16];
                    break;
                case BN_QBLOCK_Q4_K:
                    d = bn_qblock_half(rd16(blk));
                    dmin = bn_qblock_half(rd16(blk + 2));
                    for (int j = 0; j < 8; j++) {
                        int32_t sc, mn, s = 0, qs = 0;
                        q4k_scale_min(blk + 4, j, &sc, &mn);
                        const uint8_t *nib = blk + 16 + 32 * (j / 2);
                        for (int i = 0; i < 32; i++) {
                            s += ((j & 1) ? (nib[i] >> 4) : (nib[i] & 0xF)) * q[32 * j + i];
                            qs += q[32 * j + i];
                        }
                        isum += sc * s;
                        msum += mn * qs;
                    }
                    break;
                case BN_QBLOCK_Q6_K:
                    d = bn_qblock_half(rd16(blk + 208));
                    for (int j = 0; j < 16; j++) {
                        int32_t s = 0;
                        for (int i = 0; i < 16; i++) s += q6k_code(blk, 16 * j + i) * q[16 * j + i];
                        isum += (int32_t)(int8_t)blk[192 + j] * s;
                    }
                    break;
                default: break;
                }
                const float xd = xs[(size_t)b * (size_t)B / (size_t)bn_qblock_act_block(w->type)];
                const float a = d * xd;
                const float p = a * (float)isum;
                acc = acc + p;
                if (w->type == BN_QBLOCK_Q4_K) {
                    const float am = dmin * xd;
                    const float pm = am * (float)msum;
                    acc = acc - pm;
                }
            }
            y[(size_t)t * (size_t)ldy + (size_t)r] = acc;
        }
    }
}

void bn_qblock_gemm_ref(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    bn_qblock_gemm_scalar(w, x, x_scale, x_bsum, n, y, ldy, row_begin, row_end);
}
