/* C-only test harness for CKernels: every ISA this CPU supports against the
 * scalar twins, on odd shapes and adversarial values, with guard bytes after
 * every output. Built plain and with -fsanitize=address,undefined
 * (make test-c, make sanitize); exits non-zero on the first failure class. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bitnet_kernels.h"

#define HARNESS_SEED 0x9E3779B97F4A7C15ull
#include "harness.h"

static const bn_isa all_isas[] = {BN_ISA_SCALAR, BN_ISA_AVX2, BN_ISA_AVX512, BN_ISA_AVX512_VNNI, BN_ISA_AMX,
                                  BN_ISA_NEON, BN_ISA_NEON_DOTPROD};
#define N_ISAS (int)(sizeof all_isas / sizeof all_isas[0])

/* ---- quantization ---------------------------------------------------------- */

static void fill_row(float *x, int k, int kind) {
    for (int i = 0; i < k; i++) {
        switch (kind) {
        case 0: x[i] = rnd_float() * 3.0f; break;
        case 1: x[i] = 0.0f; break;                               /* all-zero row: 1e-5 floor */
        case 2: x[i] = (i & 1 ? -1.0f : 1.0f) * 3.4e38f; break;   /* max-magnitude floats */
        case 3: x[i] = (float)((int)(rnd() % 255) - 127) * 0.5f; break; /* exact .5 ties after scaling */
        case 4: x[i] = rnd_float() * 1e-7f; break;                /* below the floor */
        default: x[i] = (i == k / 2) ? -50.0f : rnd_float(); break;  /* one outlier */
        }
    }
}

static void test_quantize(void) {
    static const int ks[] = {1, 7, 15, 16, 17, 31, 33, 100, 128, 1000, 2560, 8640};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        const int k = ks[ki], k_pad = bn_pad_cols(k), n = 6, ldx = k + 3;
        float *x = malloc(sizeof(float) * (size_t)n * (size_t)ldx);
        for (int t = 0; t < n; t++) fill_row(x + (size_t)t * (size_t)ldx, k, t);
        int8_t *qref = guarded_alloc((size_t)n * (size_t)k_pad);
        float sref[6];
        int32_t sumref[6];
        bn_kernels_for(BN_ISA_SCALAR)->quantize(x, n, k, ldx, qref, k_pad, sref, sumref);
        /* spec checks on the scalar twin itself */
        for (int t = 0; t < n; t++) {
            const float *row = x + (size_t)t * (size_t)ldx;
            float amax = 0;
            for (int i = 0; i < k; i++) amax = fmaxf(amax, fabsf(row[i]));
            const float s = 127.0f / fmaxf(amax, 1e-5f);
            int32_t sum = 0;
            for (int i = 0; i < k; i++) {
                const float v = fminf(fmaxf(nearbyintf(row[i] * s), -128.0f), 127.0f);
                CHECK(qref[(size_t)t * k_pad + i] == (int8_t)v, "scalar quantize k=%d row=%d i=%d", k, t, i);
                sum += (int32_t)v;
            }
            for (int i = k; i < k_pad; i++) CHECK(qref[(size_t)t * k_pad + i] == 0, "padding not zero");
            CHECK(sref[t] == s && sumref[t] == sum, "scalar scale/sum k=%d row=%d", k, t);
        }
        CHECK(guard_ok(qref, (size_t)n * (size_t)k_pad), "scalar quantize overran k=%d", k);
        for (int ii = 1; ii < N_ISAS; ii++) {
            const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
            if (!kt) continue;
            int8_t *q = guarded_alloc((size_t)n * (size_t)k_pad);
            float s[6];
            int32_t sum[6];
            kt->quantize(x, n, k, ldx, q, k_pad, s, sum);
            CHECK(memcmp(q, qref, (size_t)n * (size_t)k_pad) == 0, "%s quantize codes differ k=%d", kt->name, k);
            CHECK(memcmp(s, sref, sizeof s) == 0 && memcmp(sum, sumref, sizeof sum) == 0,
                  "%s quantize scale/sum differ k=%d", kt->name, k);
            CHECK(guard_ok(q, (size_t)n * (size_t)k_pad), "%s quantize overran k=%d", kt->name, k);
            free(q);
        }
        free(qref);
        free(x);
    }
}

/* ---- ternary matrix products ------------------------------------------------ */

typedef struct {
    int m, k, k_pad, n;
    int8_t *tern;   /* (m, k) in {-1,0,1} */
    uint8_t *packed; /* I2_R16 */
    uint8_t *canon;
    int8_t *x;      /* (n, k_pad) */
    float *xs;
    int32_t *xsum;
} problem;

enum { W_RANDOM, W_PLUS, W_MINUS, W_ZERO };
enum { X_RANDOM, X_MAX, X_MIN, X_ZERO };

static problem make_problem(int m, int k, int n, int wkind, int xkind) {
    problem p = {m, k, bn_pad_cols(k), n, NULL, NULL, NULL, NULL, NULL, NULL};
    p.tern = malloc((size_t)m * (size_t)k);
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++)
        p.tern[i] = wkind == W_RANDOM ? (int8_t)((int)(rnd() % 3) - 1) : wkind == W_PLUS ? 1 : wkind == W_MINUS ? -1 : 0;
    p.packed = guarded_alloc(bn_i2r16_bytes(m, k));
    bn_i2r16_pack(p.tern, m, k, p.packed);
    CHECK(guard_ok(p.packed, bn_i2r16_bytes(m, k)), "I2_R16 pack overran (m=%d k=%d)", m, k);
    {   /* the unpacked values are the packed ones, exactly */
        int8_t *back = guarded_alloc((size_t)m * (size_t)k);
        bn_i2r16_unpack(p.packed, m, k, back);
        CHECK(memcmp(back, p.tern, (size_t)m * (size_t)k) == 0 && guard_ok(back, (size_t)m * (size_t)k),
              "I2_R16 unpack round trip (m=%d k=%d)", m, k);
        free(back);
    }
    p.canon = malloc(bn_i2s_canonical_bytes(m, k));
    bn_i2s_canonical_pack(p.tern, m, k, p.canon);
    p.x = calloc((size_t)n * (size_t)p.k_pad, 1);
    p.xs = malloc(sizeof(float) * (size_t)n);
    p.xsum = malloc(sizeof(int32_t) * (size_t)n);
    for (int t = 0; t < n; t++) {
        int32_t s = 0;
        for (int i = 0; i < k; i++) {
            int v = xkind == X_RANDOM ? (int)(rnd() % 256) - 128 : xkind == X_MAX ? 127 : xkind == X_MIN ? -128 : 0;
            p.x[(size_t)t * p.k_pad + i] = (int8_t)v;
            s += v;
        }
        p.xsum[t] = s;
        p.xs[t] = 0.5f + (float)(rnd() % 1000) / 7.0f;
    }
    return p;
}

static void free_problem(problem *p) {
    free(p->tern); free(p->packed); free(p->canon); free(p->x); free(p->xs); free(p->xsum);
}

/* Runs one kernel over [0, m) in row ranges of `split` rows (a multiple of
 * 32), into a guarded y with ldy = m + 3 whose gaps must stay untouched. */
static float *run_kernel(bn_i2s_gemm_fn fn, const bn_i2s_matrix *w, const problem *p, int split) {
    const int ldy = p->m + 3;
    const size_t bytes = sizeof(float) * (size_t)p->n * (size_t)ldy;
    float *y = guarded_alloc(bytes);
    for (int r = 0; r < w->m_pad; r += split)
        fn(w, p->x, p->xs, p->xsum, p->n, y, ldy, r, r + split);
    CHECK(guard_ok(y, bytes), "kernel wrote past y (m=%d k=%d n=%d)", p->m, p->k, p->n);
    const uint8_t *gap = (const uint8_t *)y;
    for (int t = 0; t < p->n; t++)
        for (int r = p->m; r < ldy; r++)
            for (int b = 0; b < 4; b++)
                CHECK(gap[((size_t)t * ldy + r) * 4 + b] == 0xCD, "kernel wrote row %d ≥ m=%d", r, p->m);
    return y;
}

static void check_problem(problem *p, const char *what) {
    bn_i2s_matrix w = {p->packed, p->m, p->k, bn_pad_rows(p->m), p->k_pad, 1.0f};
    const int ldy = p->m + 3;
    /* 1. repacking the canonical file layout gives the same bytes as packing directly */
    uint8_t *repacked = malloc(bn_i2r16_bytes(p->m, p->k));
    bn_i2s_repack_canonical(p->canon, p->m, p->k, repacked);
    CHECK(memcmp(repacked, p->packed, bn_i2r16_bytes(p->m, p->k)) == 0, "%s: repack != pack (m=%d k=%d)", what, p->m, p->k);
    free(repacked);
    for (int r = 0; r < p->m; r += 1 + p->m / 5)
        for (int c = 0; c < p->k; c += 1 + p->k / 7) {
            const int want = p->tern[(size_t)r * p->k + c] + 1;
            CHECK(bn_i2r16_code(p->packed, p->k_pad, r, c) == want && bn_i2s_canonical_code(p->canon, p->k, r, c) == want,
                  "%s: code (%d,%d)", what, r, c);
        }
    /* 2. integer exactness: with unit scales the f32 output is the exact dot
     * product (all our sums are < 2^24 or even powers of two) */
    float *unit = malloc(sizeof(float) * p->n);
    for (int t = 0; t < p->n; t++) unit[t] = 1.0f;
    float *saved = p->xs;
    p->xs = unit;
    float *yint = run_kernel(bn_kernels_for(BN_ISA_SCALAR)->i2s_gemm, &w, p, w.m_pad);
    for (int t = 0; t < p->n; t++)
        for (int r = 0; r < p->m; r++) {
            int64_t dot = 0;
            for (int c = 0; c < p->k; c++) dot += (int64_t)p->tern[(size_t)r * p->k + c] * p->x[(size_t)t * p->k_pad + c];
            CHECK(yint[(size_t)t * ldy + r] == (float)dot, "%s: scalar dot (t=%d r=%d) %.1f != %lld", what, t, r,
                  yint[(size_t)t * ldy + r], (long long)dot);
        }
    free(yint);
    p->xs = saved;
    free(unit);
    /* 3. the canonical-layout reference and every ISA agree bit for bit with the scalar twin */
    w.scale = 0.0123f + (float)(rnd() % 100) / 1000.0f;
    float *yref = run_kernel(bn_kernels_for(BN_ISA_SCALAR)->i2s_gemm, &w, p, w.m_pad);
    float *ycan = malloc(sizeof(float) * (size_t)p->n * ldy);
    memcpy(ycan, yref, sizeof(float) * (size_t)p->n * ldy);
    bn_i2s_canonical_gemm_ref(p->canon, p->m, p->k, w.scale, p->x, p->k_pad, p->xs, p->xsum, p->n, ycan, ldy);
    CHECK(memcmp(ycan, yref, sizeof(float) * (size_t)p->n * ldy) == 0, "%s: canonical ref != scalar", what);
    free(ycan);
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        const int splits[2] = {w.m_pad, 32};
        for (int si = 0; si < 2; si++) {
            float *y = run_kernel(kt->i2s_gemm, &w, p, splits[si]);
            for (int t = 0; t < p->n; t++)
                CHECK(memcmp(y + (size_t)t * ldy, yref + (size_t)t * ldy, sizeof(float) * p->m) == 0,
                      "%s: %s gemm differs (m=%d k=%d n=%d t=%d split=%d)", what, kt->name, p->m, p->k, p->n, t, splits[si]);
            free(y);
            if (p->n == 1) {
                y = run_kernel(kt->i2s_gemv, &w, p, splits[si]);
                CHECK(memcmp(y, yref, sizeof(float) * p->m) == 0, "%s: %s gemv differs (m=%d k=%d)", what, kt->name, p->m, p->k);
                free(y);
            }
        }
    }
    free(yref);
}

static void test_gemm(void) {
    static const int ms[] = {1, 15, 16, 17, 33, 100};
    static const int ks[] = {1, 31, 32, 100, 128, 1000, 8640};
    static const int ns[] = {1, 2, 3, 7, 9, 17};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                problem p = make_problem(ms[mi], ks[ki], ns[ni], W_RANDOM, X_RANDOM);
                check_problem(&p, "random");
                free_problem(&p);
            }
    /* continuous batching: every small batch size (tile splits of 2..17 rows)
     * on odd K (the padded tail of the last chunk pair) and odd M */
    static const int small_k[] = {33, 77, 1001};
    for (int n = 2; n <= 17; n++)
        for (size_t ki = 0; ki < sizeof small_k / sizeof small_k[0]; ki++) {
            problem p = make_problem(n % 2 ? 47 : 80, small_k[ki], n, W_RANDOM, X_RANDOM);
            check_problem(&p, "small-batch");
            free_problem(&p);
        }
    /* AMX token tiles are 16 rows in pairs: one full pair plus a partial
     * second tile (33, 47), on K with and without a trailing half block of 32 */
    static const int tile_n[] = {32, 33, 47};
    static const int tile_k[] = {64, 96, 1001};
    for (size_t ni = 0; ni < sizeof tile_n / sizeof tile_n[0]; ni++)
        for (size_t ki = 0; ki < sizeof tile_k / sizeof tile_k[0]; ki++) {
            problem p = make_problem(tile_n[ni] == 33 ? 65 : 100, tile_k[ki], tile_n[ni], W_RANDOM, X_RANDOM);
            check_problem(&p, "token-tiles");
            free_problem(&p);
        }
    /* a prompt-sized batch: N = 128 crosses token blocks and register tiles */
    problem big = make_problem(70, 1000, 128, W_RANDOM, X_RANDOM);
    check_problem(&big, "n128");
    free_problem(&big);
}

/* Saturation: all ±1 weights against ±127/-128 activations at the largest K
 * of real models and at the documented limit bn_i2s_max_k(). */
static void test_saturation(void) {
    const int ks[] = {8640, 65536, (int)bn_i2s_max_k()};
    const int combos[4][2] = {{W_PLUS, X_MAX}, {W_MINUS, X_MAX}, {W_PLUS, X_MIN}, {W_MINUS, X_MIN}};
    for (int ki = 0; ki < 3; ki++)
        for (int c = 0; c < 4; c++) {
            problem p = make_problem(33, ks[ki], ki == 0 ? 3 : 1, combos[c][0], combos[c][1]);
            check_problem(&p, "saturation");
            free_problem(&p);
        }
    problem z = make_problem(17, 1000, 2, W_ZERO, X_RANDOM);
    check_problem(&z, "zero-weights");
    free_problem(&z);
    problem zx = make_problem(17, 1000, 2, W_RANDOM, X_ZERO);
    check_problem(&zx, "zero-activations");
    free_problem(&zx);
}

/* Code 3 is invalid but can come from a malformed file: every ISA must still
 * agree with the scalar spec (which reads it as weight +2), even at max K. */
static void test_code3(void) {
    /* n = 5: the GEMM's int16 sums of a tile (3 + 2 rows) see code 3 too */
    const int m = 20, k = (int)bn_i2s_max_k(), n = 5;
    problem p = make_problem(m, k, n, W_PLUS, X_MIN);
    memset(p.canon, 0xFF, bn_i2s_canonical_bytes(m, k));
    bn_i2s_repack_canonical(p.canon, m, k, p.packed);
    for (int t = 0; t < n; t++) p.xs[t] = 1.0f;
    bn_i2s_matrix w = {p.packed, m, k, bn_pad_rows(m), p.k_pad, 1.0f};
    float *yref = run_kernel(bn_kernels_for(BN_ISA_SCALAR)->i2s_gemm, &w, &p, w.m_pad);
    CHECK(yref[0] == (float)(2.0 * -128.0 * k), "code-3 scalar %f", yref[0]);
    for (int ii = 1; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        float *y = run_kernel(kt->i2s_gemv, &w, &p, w.m_pad);
        CHECK(memcmp(y, yref, sizeof(float) * m) == 0, "code-3 %s gemv", kt->name);
        free(y);
        y = run_kernel(kt->i2s_gemm, &w, &p, w.m_pad);
        CHECK(memcmp(y, yref, sizeof(float) * (size_t)n * (m + 3)) == 0, "code-3 %s gemm", kt->name);
        free(y);
    }
    free(yref);
    free_problem(&p);
}


/* ---- int8 head (Q8_R16) ------------------------------------------------------ */

static void check_q8(int m, int k, int n, int extreme) {
    const int k_pad = bn_pad_cols(k), m_pad = (m + 15) / 16 * 16;
    int8_t *wv = malloc((size_t)m * k);
    for (size_t i = 0; i < (size_t)m * k; i++)
        wv[i] = extreme == 1 ? (int8_t)((i & 1) ? -127 : 127) : (int8_t)((int)(rnd() % 255) - 127);
    int8_t *packed = malloc(bn_q8r16_bytes(m, k));
    int32_t *row_sum = malloc(sizeof(int32_t) * m_pad);
    bn_q8r16_pack(wv, m, k, packed, row_sum);
    float *row_scale = malloc(sizeof(float) * m);
    for (int r = 0; r < m; r++) row_scale[r] = 0.001f + (float)(rnd() % 100) / 1000.0f;
    int8_t *x = calloc((size_t)n * k_pad, 1);
    float *xs = malloc(sizeof(float) * n);
    for (int t = 0; t < n; t++) {
        xs[t] = 0.5f + (float)(rnd() % 100) / 10.0f;
        for (int c = 0; c < k; c++)
            x[(size_t)t * k_pad + c] = extreme == 1 ? (int8_t)((c & 2) ? 127 : -128)
                                       : extreme == 2 ? (int8_t)((int)(rnd() % 255) - 127) /* as bn_quantize writes */
                                                      : (int8_t)((int)(rnd() % 256) - 128);
    }
    bn_q8_matrix w = {packed, row_scale, row_sum, m, k, m_pad, k_pad};
    const int ldy = m + 3;
    const size_t bytes = sizeof(float) * (size_t)n * ldy;
    float *yref = guarded_alloc(bytes);
    bn_kernels_for(BN_ISA_SCALAR)->q8_gemm(&w, x, xs, n, yref, ldy, 0, m_pad);
    for (int t = 0; t < n; t++)
        for (int r = 0; r < m; r++) {
            int64_t dot = 0;
            for (int c = 0; c < k; c++) {
                const int q = x[(size_t)t * k_pad + c] < -127 ? -127 : x[(size_t)t * k_pad + c];
                dot += (int64_t)wv[(size_t)r * k + c] * q;
            }
            CHECK(yref[(size_t)t * ldy + r] == (float)dot * (row_scale[r] / xs[t]), "q8 scalar spec m=%d k=%d", m, k);
        }
    for (int ii = 1; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        /* row ranges of one 16-row group each, then the whole range at once */
        const int splits[2] = {16, m_pad};
        for (int si = 0; si < (m_pad > 16 ? 2 : 1); si++) {
            const int split = splits[si];
            float *y = guarded_alloc(bytes);
            for (int r0 = 0; r0 < m_pad; r0 += split) kt->q8_gemm(&w, x, xs, n, y, ldy, r0, r0 + split);
            for (int t = 0; t < n; t++)
                CHECK(memcmp(y + (size_t)t * ldy, yref + (size_t)t * ldy, sizeof(float) * m) == 0,
                      "%s q8_gemm differs (m=%d k=%d n=%d t=%d split=%d)", kt->name, m, k, n, t, split);
            CHECK(guard_ok(y, bytes), "%s q8_gemm overran", kt->name);
            for (int t = 0; t < n; t++)
                for (int r = m; r < ldy; r++)
                    CHECK(((uint32_t *)y)[(size_t)t * ldy + r] == 0xCDCDCDCDu, "%s q8_gemm wrote row %d", kt->name, r);
            free(y);
        }
    }
    free(yref); free(wv); free(packed); free(row_sum); free(row_scale); free(x); free(xs);
}

static void test_q8(void) {
    static const int ms[] = {1, 15, 16, 17, 100};
    static const int ks[] = {1, 31, 32, 100, 2560};
    static const int ns[] = {1, 3, 9};
    for (size_t mi = 0; mi < 5; mi++)
        for (size_t ki = 0; ki < 5; ki++)
            for (size_t ni = 0; ni < 3; ni++) check_q8(ms[mi], ks[ki], ns[ni], 0);
    for (int n = 2; n <= 17; n++) { /* continuous batching: every tile split, odd K */
        check_q8(n % 2 ? 47 : 33, 77, n, 0);
        check_q8(17, 1001, n, 0);
    }
    /* activations without -128 (what bn_quantize writes), so the AMX tiles run
     * rather than their VNNI fallback: group pairs and a lone last group, one
     * and two token tiles, K with and without a trailing half tile */
    static const int am[] = {16, 17, 33, 100};
    static const int ak[] = {64, 96, 2560};
    static const int an[] = {1, 2, 8, 16, 17, 32, 33, 40};
    for (size_t mi = 0; mi < 4; mi++)
        for (size_t ki = 0; ki < 3; ki++)
            for (size_t ni = 0; ni < 8; ni++) check_q8(am[mi], ak[ki], an[ni], 2);
    check_q8(33, 16384, 2, 1); /* ±127 weights against ±127/-128 activations at the largest K */
    check_q8(33, 16384, 9, 1);
    /* either side of the AVX-512 kernel's activations-made-once limit (n·k_pad ≤ 64 KiB) */
    check_q8(49, 2560, 25, 0);
    check_q8(49, 2560, 26, 0);
}

/* ---- batch invariance ----------------------------------------------------------
 * Continuous batching decodes several sequences in one call: a sequence's
 * output row must not depend on how many other rows share the call or where
 * it sits. The integer sums are exact, so this holds when every path (the
 * GEMV for n == 1, the GEMM tiles for n > 1, every ISA) ends with the same
 * epilogue expression, (float)dot · (w_scale / x_scale[t]). Checked bit for
 * bit through bn_i2s_matmul (2 threads, so rows are split too) and q8_gemm,
 * for n = 1..17 with the n rows taken at every offset of a 17-row batch. */
static void test_batch_invariance(void) {
    static const int shapes[][2] = {{1, 1}, {17, 31}, {33, 100}, {45, 129}, {70, 1000}, {100, 2560}};
    const int nmax = 17;
    bn_pool *pool = bn_pool_create(2);
    int cases = 0;
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int m = shapes[si][0], k = shapes[si][1], ldy = m + 3;
            problem p = make_problem(m, k, nmax, W_RANDOM, X_RANDOM);
            bn_i2s_matrix w = {p.packed, m, k, bn_pad_rows(m), p.k_pad, 0.0123f + (float)(rnd() % 100) / 1000.0f};
            /* Q8 head of the same shape: random int8 rows, per-row scales */
            const int m16 = (m + 15) / 16 * 16;
            int8_t *wq = malloc((size_t)m * k), *q8 = malloc(bn_q8r16_bytes(m, k));
            for (size_t i = 0; i < (size_t)m * k; i++) wq[i] = (int8_t)((int)(rnd() % 255) - 127);
            int32_t *row_sum = malloc(sizeof(int32_t) * m16);
            bn_q8r16_pack(wq, m, k, q8, row_sum);
            float *row_scale = malloc(sizeof(float) * m);
            for (int r = 0; r < m; r++) row_scale[r] = 0.001f + (float)(rnd() % 100) / 1000.0f;
            bn_q8_matrix wq8 = {q8, row_scale, row_sum, m, k, m16, p.k_pad};
            /* every activation row alone (n == 1: the I2_S GEMV) */
            float *one = malloc(sizeof(float) * nmax * m), *one_q8 = malloc(sizeof(float) * nmax * m);
            for (int t = 0; t < nmax; t++) {
                bn_i2s_matmul(pool, kt, &w, p.x + (size_t)t * p.k_pad, p.xs + t, p.xsum + t, 1, one + (size_t)t * m, m);
                kt->q8_gemm(&wq8, p.x + (size_t)t * p.k_pad, p.xs + t, 1, one_q8 + (size_t)t * m, m, 0, m16);
            }
            for (int n = 1; n <= nmax; n++) {
                const int s = (int)(rnd() % (unsigned)(nmax - n + 1));
                const size_t bytes = sizeof(float) * (size_t)n * ldy;
                float *y = guarded_alloc(bytes), *yq = guarded_alloc(bytes);
                bn_i2s_matmul(pool, kt, &w, p.x + (size_t)s * p.k_pad, p.xs + s, p.xsum + s, n, y, ldy);
                for (int r0 = 0; r0 < m16; r0 += 16) /* the head is split in 16-row units */
                    kt->q8_gemm(&wq8, p.x + (size_t)s * p.k_pad, p.xs + s, n, yq, ldy, r0, r0 + 16);
                CHECK(guard_ok(y, bytes) && guard_ok(yq, bytes), "%s batch outputs overran", kt->name);
                for (int t = 0; t < n; t++) {
                    CHECK(memcmp(y + (size_t)t * ldy, one + (size_t)(s + t) * m, sizeof(float) * m) == 0,
                          "%s i2s_matmul not batch-invariant (m=%d k=%d n=%d t=%d)", kt->name, m, k, n, t);
                    CHECK(memcmp(yq + (size_t)t * ldy, one_q8 + (size_t)(s + t) * m, sizeof(float) * m) == 0,
                          "%s q8_gemm not batch-invariant (m=%d k=%d n=%d t=%d)", kt->name, m, k, n, t);
                }
                free(y);
                free(yq);
                cases++;
            }
            free(one); free(one_q8); free(wq); free(q8); free(row_sum); free(row_scale);
            free_problem(&p);
        }
    }
    bn_pool_destroy(pool);
    printf("  batch invariance: %d (ISA, shape, n) cases of i2s_matmul and q8_gemm bit-identical to n = 1\n", cases);
}

/* ---- worker pool ------------------------------------------------------------ */

typedef struct {
    int counts[8];
} count_ctx;
static void count_task(void *ctx, int32_t ith, int32_t nth) {
    count_ctx *c = ctx;
    if (ith < nth) c->counts[ith]++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_pool(void) {
    for (int nt = 1; nt <= 4; nt++) {
        bn_pool *pool = bn_pool_create(nt);
        CHECK(pool != NULL && bn_pool_threads(pool) == nt, "pool create %d", nt);
        count_ctx c;
        memset(&c, 0, sizeof c);
        const int iters = nt <= 2 ? 2000 : 50; /* more threads than cores: correctness only */
        const double t0 = now_s();
        for (int i = 0; i < iters; i++) bn_pool_run(pool, count_task, &c);
        const double per = (now_s() - t0) / iters;
        for (int i = 0; i < nt; i++) CHECK(c.counts[i] == iters, "pool thread %d ran %d/%d", i, c.counts[i], iters);
        printf("  pool: %d threads, %.2f us per dispatch\n", nt, per * 1e6);
        /* threaded matmul == single-threaded kernel */
        problem p = make_problem(200, 1000, 5, W_RANDOM, X_RANDOM);
        bn_i2s_matrix w = {p.packed, p.m, p.k, bn_pad_rows(p.m), p.k_pad, 0.37f};
        const bn_kernels *kt = bn_kernels_best();
        float *y1 = calloc((size_t)p.n * p.m, sizeof(float)), *y2 = calloc((size_t)p.n * p.m, sizeof(float));
        kt->i2s_gemm(&w, p.x, p.xs, p.xsum, p.n, y1, p.m, 0, w.m_pad);
        bn_i2s_matmul(pool, kt, &w, p.x, p.xs, p.xsum, p.n, y2, p.m);
        CHECK(memcmp(y1, y2, sizeof(float) * p.n * p.m) == 0, "pooled matmul differs (%d threads)", nt);
        bn_i2s_matmul(pool, kt, &w, p.x, p.xs, p.xsum, 1, y2, p.m);
        CHECK(memcmp(y1, y2, sizeof(float) * p.m) == 0, "pooled gemv differs (%d threads)", nt);
        free(y1);
        free(y2);
        free_problem(&p);
        bn_pool_destroy(pool);
    }
}

static void test_dispatch(void) {
    char buf[1024];
    const size_t len = bn_dispatch_report(buf, sizeof buf);
    CHECK(len > 0 && len < sizeof buf, "report length");
    CHECK(bn_kernels_for(BN_ISA_SCALAR) != NULL, "scalar always available");
    CHECK(bn_isa_parse("avx2") == BN_ISA_AVX2 && bn_isa_parse("bogus") == -1, "isa parse");
    const bn_isa best = bn_isa_detected();
    CHECK(bn_isa_supported(best), "detected isa supported");
    for (int i = 0; i < BN_ISA_COUNT; i++)
        if (bn_isa_supported((bn_isa)i)) printf("  isa available: %s\n", bn_isa_name((bn_isa)i));
    printf("%s", buf);
}

/* The benchmark probes' counts: the f32 FMA probe reports 12 FMAs per pass
 * per vector lane (16 for zmm, 8 for ymm, 4 for NEON) and nothing at the
 * scalar level; the int8 probe some multiply-adds wherever SIMD runs. */
static void test_bench_probes(void) {
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_isa isa = all_isas[ii];
        if (!bn_isa_supported(isa)) continue;
        const uint64_t lanes = isa == BN_ISA_SCALAR ? 0
                               : isa == BN_ISA_AVX2 ? 8
                               : (isa == BN_ISA_NEON || isa == BN_ISA_NEON_DOTPROD) ? 4 : 16;
        CHECK(bn_bench_f32_peak(isa, 10) == 10 * 12 * lanes, "%s f32 peak probe count", bn_isa_name(isa));
        CHECK((bn_bench_int8_peak(isa, 10) > 0) == (isa != BN_ISA_SCALAR), "%s int8 peak probe count", bn_isa_name(isa));
    }
}

int main(void) {
    test_dispatch();
    test_bench_probes();
    test_quantize();
    test_gemm();
    test_saturation();
    test_code3();
    test_q8();
    test_batch_invariance();
    test_pool();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
