/* Fuzz target `kernels`: the C kernels' entry points that see file bytes or
 * arbitrary values, with ASan and UBSan. Byte 0 picks the entry point, the next
 * bytes the shape; the rest fills the buffer (zeros past the input's end), which
 * is allocated at exactly the size the format needs, so a read past it is caught.
 *   0  bn_i2s_repack_canonical: any bytes, code 3 included; every element's code
 *      in the I2_R16 result must equal its code in the canonical source.
 *   1  bn_tl_to_i2r16 (TL1/TL2 as read from a file): indices no packer writes are
 *      counted; where none were seen, unpacking the result must give exactly
 *      bn_tl_weight's value for every element, and packing it again the same bytes
 *      (TL1; TL2's per-row counts are recomputed) — tl_from_i2r16 must agree.
 *   2  quantize with arbitrary floats (NaN, ±Inf, subnormals): every ISA this CPU
 *      runs must match the scalar specification bit for bit (q, scale, sum). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "bitnet_kernels.h"

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); abort(); } } while (0)

typedef struct { const uint8_t *p; size_t n, i; } reader;
static uint8_t rd8(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static uint16_t rd16(reader *r) { uint16_t lo = rd8(r); return (uint16_t)(lo | (uint16_t)rd8(r) << 8); }
/* A buffer of exactly `size` bytes from the rest of the input, zero-filled. */
static uint8_t *fill(reader *r, size_t size) {
    uint8_t *b = malloc(size ? size : 1);
    size_t avail = r->n - r->i, take = avail < size ? avail : size;
    memcpy(b, r->p + r->i, take);
    memset(b + take, 0, size - take);
    r->i += take;
    return b;
}

static void repack(reader *r) {
    const int32_t m = 1 + rd8(r) % 70, k = 1 + rd16(r) % 400;
    uint8_t *src = fill(r, bn_i2s_canonical_bytes(m, k));
    uint8_t *dst = malloc(bn_i2r16_bytes(m, k));
    bn_i2s_repack_canonical(src, m, k, dst);
    const int32_t k_pad = bn_pad_cols(k);
    for (int32_t row = 0; row < m; row++)
        for (int32_t c = 0; c < k; c++)
            CHECK(bn_i2r16_code(dst, k_pad, row, c) == bn_i2s_canonical_code(src, k, row, c),
                  "repack m=%d k=%d: code of (%d,%d) changed", m, k, row, c);
    free(src);
    free(dst);
}

/* Fuzz/regressions/kernels/tl2-odd-group-count-sign-overread: TL2 with an odd group
 * count once made bn_tl_to_i2r16 read the sign bytes of a group past the last tile;
 * the buffers here end exactly where the format does, so ASan catches any such read. */
static void tl(reader *r) {
    const int32_t type = 1 + rd8(r) % 2, m = 1 + rd8(r) % 70, k = 1 + rd16(r) % 300;
    const size_t tl_bytes = bn_tl_bytes(type, m, k), i2_bytes = bn_i2r16_bytes(m, k);
    uint8_t *data = fill(r, tl_bytes);
    uint8_t *i2 = malloc(i2_bytes);
    const int64_t invalid = bn_tl_to_i2r16(type, data, m, k, i2);
    CHECK(invalid >= 0, "tl_to_i2r16 returned %lld", (long long)invalid);
    int8_t *w = malloc((size_t)m * (size_t)k);
    bn_i2r16_unpack(i2, m, k, w);
    if (invalid == 0) {
        for (int32_t row = 0; row < m; row++)
            for (int32_t c = 0; c < k; c++)
                CHECK(w[(size_t)row * k + c] == bn_tl_weight(type, data, m, k, row, c),
                      "TL%d m=%d k=%d: (%d,%d) decodes to %d, bn_tl_weight says %d", type, m, k, row, c,
                      w[(size_t)row * k + c], bn_tl_weight(type, data, m, k, row, c));
    }
    /* whatever was decoded (invalid indices as 0) is well-formed: it must survive TL → I2_R16 → TL → I2_R16 */
    uint8_t *again = malloc(tl_bytes), *i2b = malloc(i2_bytes);
    CHECK(bn_tl_from_i2r16(type, i2, m, k, again) == 0, "tl_from_i2r16 saw invalid codes in a decoded matrix");
    CHECK(bn_tl_to_i2r16(type, again, m, k, i2b) == 0, "repacked TL has invalid indices");
    int8_t *w2 = malloc((size_t)m * (size_t)k);
    bn_i2r16_unpack(i2b, m, k, w2);
    CHECK(memcmp(w, w2, (size_t)m * (size_t)k) == 0, "TL%d m=%d k=%d: weights changed in a round trip", type, m, k);
    uint8_t *adopted = malloc(tl_bytes);
    bn_tl_adopt(type, again, m, k, adopted);
    CHECK(memcmp(adopted, again, tl_bytes) == 0, "TL%d m=%d k=%d: adopt changed packer output", type, m, k);
    free(data); free(i2); free(w); free(again); free(i2b); free(w2); free(adopted);
}

static void quantize(reader *r) {
    const int32_t n = 1 + rd8(r) % 4, k = 1 + rd16(r) % 300, k_pad = bn_pad_cols(k), ldx = k + rd8(r) % 3;
    float *x = (float *)fill(r, sizeof(float) * (size_t)n * (size_t)ldx);
    int8_t *q0 = malloc((size_t)n * k_pad), *q1 = malloc((size_t)n * k_pad);
    float s0[4], s1[4];
    int32_t sum0[4], sum1[4];
    bn_kernels_for(BN_ISA_SCALAR)->quantize(x, n, k, ldx, q0, k_pad, s0, sum0);
    for (int32_t t = 0; t < n; t++) {
        CHECK(s0[t] == s0[t], "scalar quantize: NaN scale");
        for (int32_t i = k; i < k_pad; i++) CHECK(q0[(size_t)t * k_pad + i] == 0, "padding not zero");
    }
    for (int isa = 1; isa < BN_ISA_COUNT; isa++) {
        if (!bn_isa_supported((bn_isa)isa)) continue;
        memset(q1, 0x55, (size_t)n * k_pad);
        bn_kernels_for((bn_isa)isa)->quantize(x, n, k, ldx, q1, k_pad, s1, sum1);
        CHECK(memcmp(q0, q1, (size_t)n * k_pad) == 0, "quantize %s != scalar (n=%d k=%d)", bn_isa_name((bn_isa)isa), n, k);
        CHECK(memcmp(s0, s1, sizeof(float) * n) == 0 && memcmp(sum0, sum1, sizeof(int32_t) * n) == 0,
              "quantize %s scale/sum != scalar (n=%d k=%d)", bn_isa_name((bn_isa)isa), n, k);
    }
    free(x); free(q0); free(q1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size, 0};
    switch (rd8(&r) % 3) {
    case 0: repack(&r); break;
    case 1: tl(&r); break;
    default: quantize(&r); break;
    }
    return 0;
}
