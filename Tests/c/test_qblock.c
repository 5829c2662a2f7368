/* C harness for the block-quantized head kernels (Q8_0, Q4_0, Q4_K, Q6_K in
 * the file's layout): every ISA bit for bit against the scalar spec (integer
 * block sums are exact and the float update order is fixed, see
 * bitnet_kernels.h), the scalar spec against a dequantize-then-double-dot
 * reference within a stated bound, the activation quantizer, odd shapes, N up
 * to 16, both builds of the AVX-512 VNNI entry (with and without GFNI),
 * row-range splits, adversarial bytes and scales, guard bytes after every
 * buffer and a PROT_NONE page right after the weights. Built plain,
 * with ASan+UBSan, and for arm64 under qemu. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "bitnet_kernels.h"

#define HARNESS_SEED 0x9E3779B97F4A7C15ull
#include "harness.h"

static const bn_isa all_isas[] = {BN_ISA_SCALAR, BN_ISA_AVX2, BN_ISA_AVX512, BN_ISA_AVX512_VNNI, BN_ISA_AMX,
                                  BN_ISA_NEON, BN_ISA_NEON_DOTPROD};
#define N_ISAS (int)(sizeof all_isas / sizeof all_isas[0])
static const int32_t types[] = {BN_QBLOCK_Q8_0, BN_QBLOCK_Q4_0, BN_QBLOCK_Q4_K, BN_QBLOCK_Q6_K};
static const char *type_name(int32_t t) {
    return t == BN_QBLOCK_Q8_0 ? "Q8_0" : t == BN_QBLOCK_Q4_0 ? "Q4_0" : t == BN_QBLOCK_Q4_K ? "Q4_K" : "Q6_K";
}

/* f32 → f16 bits, round to nearest even (finite, normal range: test scales only). */
static uint16_t to_half(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    const uint32_t sign = (b >> 16) & 0x8000u;
    int32_t e = (int32_t)((b >> 23) & 0xff) - 127 + 15;
    uint32_t mant = b & 0x7fffffu;
    if (e <= 0) return (uint16_t)sign; /* tiny: zero */
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

enum { W_RANDOM, W_EXTREME, W_BIGSCALE, W_UNIFORM };
enum { X_RANDOM, X_MAX, X_MIN, X_ALT };

/* Block bytes of one block of `type`, random or adversarial. Scales stay finite. W_UNIFORM:
 * every code byte 0x00 or every one 0xFF (per block), so each code is the lowest or the highest
 * value everywhere (Q6_K also with every sub-scale -128): the largest partial sums the SIMD
 * kernels hold in int16 lanes, e.g. Q4_0's 16-sums of (0 - 8)·(-127), and the largest blocks. */
static void fill_block(int32_t type, uint8_t *blk, int kind) {
    const int bytes = bn_qblock_bytes(type);
    const uint8_t uniform = (rnd() & 1) ? 0xFF : 0x00;
    for (int i = 0; i < bytes; i++)
        blk[i] = kind == W_EXTREME ? ((rnd() & 1) ? 0xFF : 0x80) : kind == W_UNIFORM ? uniform : (uint8_t)rnd();
    uint16_t d = to_half(kind == W_BIGSCALE ? 60000.0f : rnd_float() * 0.05f);
    uint16_t dmin = to_half(kind == W_BIGSCALE ? -60000.0f : rnd_float() * 0.02f);
    if (kind == W_EXTREME) d = dmin = 0x7BFF; /* 65504: the largest f16 */
    if (type == BN_QBLOCK_Q8_0 || type == BN_QBLOCK_Q4_0 || type == BN_QBLOCK_Q4_K) memcpy(blk, &d, 2);
    if (type == BN_QBLOCK_Q4_K) memcpy(blk + 2, &dmin, 2);
    if (type == BN_QBLOCK_Q6_K) {
        memcpy(blk + 208, &d, 2);
        if (kind == W_EXTREME)
            for (int j = 0; j < 16; j++) blk[192 + j] = (j & 1) ? 0x80 : 0x7F; /* sub-scales -128, 127 */
        if (kind == W_UNIFORM) memset(blk + 192, 0x80, 16);
    }
}

typedef struct {
    int32_t type, m, k, n;
    uint8_t *w;     /* (m, row_bytes) blocks, guarded */
    int8_t *x;      /* (n, k), guarded */
    float *xs;      /* (n, k/act_block), guarded */
    int32_t *bsum;  /* (n, k/16), guarded */
    bn_qblock_matrix mat;
} problem;

static size_t wbytes(const problem *p) { return (size_t)p->m * (size_t)p->mat.row_bytes; }

static problem make_problem(int32_t type, int32_t m, int32_t k, int32_t n, int wkind, int xkind) {
    problem p = {type, m, k, n, NULL, NULL, NULL, NULL, {0}};
    const int32_t B = bn_qblock_size(type), nb = k / B, bb = bn_qblock_bytes(type);
    p.mat = (bn_qblock_matrix){NULL, type, m, k, nb * bb};
    p.w = guarded_alloc(wbytes(&p));
    for (int32_t r = 0; r < m; r++)
        for (int32_t b = 0; b < nb; b++) fill_block(type, p.w + (size_t)r * (size_t)p.mat.row_bytes + (size_t)b * (size_t)bb, wkind);
    p.mat.data = p.w;
    const int32_t groups = k / bn_qblock_act_block(type);
    p.x = guarded_alloc((size_t)n * (size_t)k);
    p.xs = guarded_alloc((size_t)n * (size_t)groups * sizeof(float));
    p.bsum = guarded_alloc((size_t)n * (size_t)(k / 16) * sizeof(int32_t));
    if (xkind == X_RANDOM) {
        float *xf = malloc((size_t)n * (size_t)k * sizeof(float)); /* (n, k) */
        for (size_t i = 0; i < (size_t)n * (size_t)k; i++) xf[i] = rnd_float() * (float)(1 + (int)(rnd() % 8));
        bn_qblock_quantize(type, xf, n, k, k, p.x, p.xs, p.bsum);
        free(xf);
    } else {
        for (size_t i = 0; i < (size_t)n * (size_t)k; i++)
            p.x[i] = xkind == X_MAX ? 127 : xkind == X_MIN ? -127 : ((i & 1) ? 127 : -127);
        for (size_t i = 0; i < (size_t)n * (size_t)groups; i++) p.xs[i] = 3.0e38f / 127.0f * 0.5f;
        for (int32_t t = 0; t < n; t++)
            for (int32_t j = 0; j < k / 16; j++) {
                int32_t s = 0;
                for (int i = 0; i < 16; i++) s += p.x[(size_t)t * (size_t)k + (size_t)(16 * j + i)];
                p.bsum[(size_t)t * (size_t)(k / 16) + (size_t)j] = s;
            }
    }
    return p;
}

static void free_problem(problem *p) {
    CHECK(guard_ok(p->w, wbytes(p)), "%s weights guard", type_name(p->type));
    free(p->w);
    free(p->x);
    free(p->xs);
    free(p->bsum);
}

static int same_float(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (isnan(a) && isnan(b));
}

/* Runs kernel over [0, m) in ranges of `split` rows (starting at `first`) into a guarded y
 * of ldy = m + 3; rows outside the ranges must keep the 0xCD fill. Returns y (caller frees). */
static float *run(const bn_qblock_gemm_fn fn, const problem *p, int32_t first, int32_t split) {
    const int32_t ldy = p->m + 3;
    const size_t bytes = (size_t)p->n * (size_t)ldy * sizeof(float);
    float *y = guarded_alloc(bytes);
    for (int32_t r = first; r < p->m; r += split) fn(&p->mat, p->x, p->xs, p->bsum, p->n, y, ldy, r, r + split);
    CHECK(guard_ok(y, bytes), "%s wrote past y (m=%d k=%d n=%d)", type_name(p->type), p->m, p->k, p->n);
    CHECK(guard_ok(p->x, (size_t)p->n * (size_t)p->k), "x guard");
    uint32_t fill;
    memset(&fill, 0xCD, 4);
    for (int32_t t = 0; t < p->n; t++) {
        for (int32_t r = 0; r < first; r++)
            CHECK(memcmp(&y[(size_t)t * (size_t)ldy + (size_t)r], &fill, 4) == 0, "row %d before the range written", r);
        for (int32_t r = p->m; r < ldy; r++)
            CHECK(memcmp(&y[(size_t)t * (size_t)ldy + (size_t)r], &fill, 4) == 0, "row %d past m written", r);
    }
    return y;
}

/* The scalar spec against Σ dequantized w · (q · xd) in double. The kernel's sums are exact
 * integers; its float error is one rounding of d·xd, one of the product, one of the add per
 * block (and the same again for Q4_K's mins), so |y - ref| ≤ (2·nb + 4)·2^-24·M with
 * M = Σ |terms| (|d·sc·v| and |dmin·mn| separately for Q4_K); the dequantized reference adds
 * ≤ 2 roundings per element. Bound used: (2·nb + 8)·2^-24·M + 1e-30. */
static void check_reference(const problem *p, const float *y) {
    const int32_t ldy = p->m + 3, groups = p->k / bn_qblock_act_block(p->type), B = bn_qblock_size(p->type);
    float *row = malloc((size_t)p->k * sizeof(float)); /* (k,) */
    int bad = 0;
    for (int32_t r = 0; r < p->m && !bad; r++) {
        bn_qblock_dequantize_row(&p->mat, r, row);
        for (int32_t t = 0; t < p->n; t++) {
            double ref = 0, mag = 0;
            for (int32_t c = 0; c < p->k; c++) {
                const double xv = (double)p->x[(size_t)t * (size_t)p->k + (size_t)c] *
                                  (double)p->xs[(size_t)t * (size_t)groups + (size_t)(c / bn_qblock_act_block(p->type))];
                ref += (double)row[c] * xv;
                mag += fabs((double)row[c] * xv);
            }
            if (p->type == BN_QBLOCK_Q4_K) { /* the mins' terms separately: ds·v - dm may cancel */
                const uint8_t *base = p->w + (size_t)r * (size_t)p->mat.row_bytes;
                for (int32_t c = 0; c < p->k; c++) {
                    const uint8_t *blk = base + (size_t)(c / B) * 144;
                    const int j = (c % B) / 32;
                    const int mn = j < 4 ? (blk[4 + j + 4] & 63) : ((blk[4 + j + 4] >> 4) | ((blk[4 + j] >> 6) << 4));
                    const int sc = j < 4 ? (blk[4 + j] & 63) : ((blk[4 + j + 4] & 0xF) | ((blk[4 + j - 4] >> 6) << 4));
                    const double xv = fabs((double)p->x[(size_t)t * (size_t)p->k + (size_t)c] *
                                           (double)p->xs[(size_t)t * (size_t)groups + (size_t)(c / B)]);
                    mag += xv * (double)(mn + sc) * 0.1; /* |d|, |dmin| ≤ 0.05 in random blocks */
                }
            }
            const double nb = (double)(p->k / B), tol = (2 * nb + 8) * 0x1p-24 * mag + 1e-30;
            const double got = (double)y[(size_t)t * (size_t)ldy + (size_t)r];
            if (!(fabs(got - ref) <= tol)) {
                CHECK(0, "%s scalar vs dequantized reference r=%d t=%d: %.9g vs %.9g (tol %.3g)", type_name(p->type), r,
                      t, got, ref, tol);
                bad = 1;
                break;
            }
        }
    }
    checks++;
    free(row);
}

static void compare_isas(const problem *p, const char *what) {
    const bn_kernels *sk = bn_kernels_for(BN_ISA_SCALAR);
    float *ref = run(sk->qblock_gemm, p, 0, p->m);
    const int32_t ldy = p->m + 3;
    for (int ii = 1; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        const int32_t splits[] = {p->m, 8, 3, 13};
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            const int32_t first = s == 2 ? 1 : 0; /* an odd row_begin */
            float *y = run(kt->qblock_gemm, p, first, splits[s]);
            int bad = 0;
            for (int32_t t = 0; t < p->n && !bad; t++)
                for (int32_t r = first; r < p->m; r++)
                    if (!same_float(y[(size_t)t * ldy + r], ref[(size_t)t * ldy + r])) {
                        CHECK(0, "%s %s %s m=%d k=%d n=%d split=%d: row %d t %d: %.9g vs scalar %.9g", kt->name,
                              type_name(p->type), what, p->m, p->k, p->n, splits[s], r, t, y[(size_t)t * ldy + r],
                              ref[(size_t)t * ldy + r]);
                        bad = 1;
                        break;
                    }
            checks++;
            free(y);
        }
    }
    free(ref);
}

static void test_shapes(void) {
    const int32_t ms[] = {1, 7, 8, 9, 17, 67};
    const int32_t ns[] = {1, 2, 3, 5, 8, 16};
    for (size_t ti = 0; ti < 4; ti++) {
        const int32_t type = types[ti], B = bn_qblock_size(type);
        const int32_t ks[] = {B, 2 * B, 3 * B, B == 32 ? 2560 : 2560};
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
            for (size_t ki = 0; ki < 4; ki++) {
                const int32_t n = ns[(mi + ki) % 6];
                problem p = make_problem(type, ms[mi], ks[ki], n, W_RANDOM, X_RANDOM);
                compare_isas(&p, "random");
                float *y = run(bn_kernels_for(BN_ISA_SCALAR)->qblock_gemm, &p, 0, p.m);
                check_reference(&p, y);
                free(y);
                free_problem(&p);
            }
    }
}

static void test_adversarial(void) {
    for (size_t ti = 0; ti < 4; ti++)
        for (int wk = W_EXTREME; wk <= W_UNIFORM; wk++)
            for (int xk = X_RANDOM; xk <= X_ALT; xk++) {
                const int32_t k = 2 * bn_qblock_size(types[ti]) * (types[ti] == BN_QBLOCK_Q8_0 ? 40 : 5);
                problem p = make_problem(types[ti], 11, k, 3, wk, xk);
                compare_isas(&p, wk == W_EXTREME ? "extreme bytes" : wk == W_BIGSCALE ? "big scales" : "uniform bytes");
                free_problem(&p);
            }
    /* every activation row of a batch equals the same row computed alone (N = 16, tiles split rows) */
    for (size_t ti = 0; ti < 4; ti++) {
        problem p = make_problem(types[ti], 19, 512, 16, W_RANDOM, X_RANDOM);
        const bn_kernels *kt = bn_kernels_best();
        float *all = run(kt->qblock_gemm, &p, 0, p.m);
        for (int32_t t = 0; t < p.n; t++) {
            float one[19];
            const int32_t groups = p.k / bn_qblock_act_block(p.type);
            kt->qblock_gemm(&p.mat, p.x + (size_t)t * (size_t)p.k, p.xs + (size_t)t * (size_t)groups,
                            p.bsum + (size_t)t * (size_t)(p.k / 16), 1, one, 19, 0, 19);
            CHECK(memcmp(one, all + (size_t)t * (size_t)(p.m + 3), sizeof one) == 0, "%s batch row %d != alone",
                  type_name(p.type), t);
        }
        free(all);
        free_problem(&p);
    }
}

/* Known values: one block of each type by hand, so the layout (not just self-consistency) is checked. */
static void test_known_values(void) {
    /* Q6_K: every ql byte 0x21 (low nibble 1, high 2), qh 0b11100100 (codes 0,1,2,3 per quarter),
     * scales 1..16, d = 1: element e = 128h + 32c + l has code (low | c<<4) - 32 with low = 1 (c<2) or 2. */
    uint8_t blk[210];
    memset(blk, 0x21, 128);
    memset(blk + 128, 0xE4, 64);
    for (int j = 0; j < 16; j++) blk[192 + j] = (uint8_t)(j + 1);
    const uint16_t one = 0x3C00;
    memcpy(blk + 208, &one, 2);
    bn_qblock_matrix w = {blk, BN_QBLOCK_Q6_K, 1, 256, 210};
    float row[256];
    bn_qblock_dequantize_row(&w, 0, row);
    int ok = 1;
    for (int e = 0; e < 256; e++) {
        const int c = (e % 128) / 32, low = c < 2 ? 1 : 2;
        const float want = (float)(e / 16 + 1) * (float)((low | (c << 4)) - 32);
        if (row[e] != want) ok = 0;
    }
    CHECK(ok, "Q6_K dequantization layout");
    /* Q4_K: d = 1, dmin = 0.5, scales bytes chosen so sc_j = j + 1, mn_j = 2j; nibbles lo 3 hi 5. */
    uint8_t k4[144] = {0};
    const uint16_t half = 0x3800;
    memcpy(k4, &one, 2);
    memcpy(k4 + 2, &half, 2);
    for (int j = 0; j < 4; j++) {
        k4[4 + j] = (uint8_t)(j + 1);
        k4[8 + j] = (uint8_t)(2 * j);
    }
    for (int j = 4; j < 8; j++) { /* sc, mn = 5..8, 8..14: low 4 bits in bytes 8..11, high bits 0 */
        k4[4 + j + 4] = (uint8_t)(((j + 1) & 0xF) | ((2 * j) & 0xF) << 4);
    }
    memset(k4 + 16, 0x53, 128);
    bn_qblock_matrix w4 = {k4, BN_QBLOCK_Q4_K, 1, 256, 144};
    bn_qblock_dequantize_row(&w4, 0, row);
    ok = 1;
    for (int e = 0; e < 256; e++) {
        const int j = e / 32, v = (j & 1) ? 5 : 3;
        if (row[e] != (float)(j + 1) * (float)v - 0.5f * (float)(2 * j)) ok = 0;
    }
    CHECK(ok, "Q4_K dequantization layout (%g %g)", row[0], row[255]);
}

static void test_quantize(void) {
    for (size_t ti = 0; ti < 4; ti++) {
        const int32_t type = types[ti], k = 512, A = bn_qblock_act_block(type);
        float x[2 * 512]; /* (2, 512) */
        for (int i = 0; i < 2 * k; i++) x[i] = rnd_float() * 3;
        for (int i = 0; i < A; i++) x[k + i] = 0; /* a zero group */
        int8_t *q = guarded_alloc(2 * (size_t)k);
        float *s = guarded_alloc(2 * (size_t)(k / A) * sizeof(float));
        int32_t *bs = guarded_alloc(2 * (size_t)(k / 16) * sizeof(int32_t));
        bn_qblock_quantize(type, x, 2, k, k, q, s, bs);
        CHECK(guard_ok(q, 2 * (size_t)k) && guard_ok(s, 2 * (size_t)(k / A) * sizeof(float)) &&
                  guard_ok(bs, 2 * (size_t)(k / 16) * sizeof(int32_t)), "quantize guards");
        int ok = 1;
        for (int i = 0; i < 2 * k; i++) {
            const float d = s[i / A];
            if (q[i] < -127 || fabsf((float)q[i] * d - x[i]) > d * 0.5001f + 1e-7f) ok = 0;
        }
        for (int j = 0; j < 2 * (k / 16); j++) {
            int32_t sum = 0;
            for (int i = 0; i < 16; i++) sum += q[16 * j + i];
            if (sum != bs[j]) ok = 0;
        }
        CHECK(ok && s[k / A] == 0 && q[k] == 0, "%s activation quantizer", type_name(type));
        free(q);
        free(s);
        free(bs);
    }
}

/* The kernels read nothing past the last weight block: the matrix ends at a PROT_NONE page. */
static void test_reads_only_its_bytes(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t ti = 0; ti < 4; ti++)
        for (int32_t m = 1; m <= 9; m += 8) {
            problem p = make_problem(types[ti], m, 2 * bn_qblock_size(types[ti]), 2, W_RANDOM, X_RANDOM);
            const size_t bytes = wbytes(&p), span = (bytes + page - 1) / page * page;
            uint8_t *region = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (region == MAP_FAILED) continue;
            mprotect(region + span, page, PROT_NONE);
            uint8_t *data = region + span - bytes;
            memcpy(data, p.w, bytes);
            p.mat.data = data;
            for (int ii = 0; ii < N_ISAS; ii++) {
                const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
                if (!kt) continue;
                float *y = run(kt->qblock_gemm, &p, 0, p.m);
                free(y);
            }
            p.mat.data = p.w;
            munmap(region, span + page);
            free_problem(&p);
        }
}

int main(void) {
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (kt) printf("  testing %s\n", kt->name);
        if (kt) CHECK(kt->qblock_gemm != NULL, "%s: qblock entry", kt->name);
    }
    test_known_values();
    test_quantize();
    /* the AVX-512 VNNI entry has two builds (bn_qblock_gfni): where the CPU has GFNI, run the
     * kernel checks with it and again without it */
    const int gfni = bn_qblock_gfni();
    for (int pass = 0; pass <= gfni; pass++) {
        bn_set_qblock_gfni(pass == 0 ? -1 : 0);
        printf("  AVX-512 VNNI block kernel: %s build\n", bn_qblock_gfni() ? "GFNI" : "plain");
        test_shapes();
        test_adversarial();
        test_reads_only_its_bytes();
    }
    bn_set_qblock_gfni(-1);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
