/* C harness for the TL1 / TL2 lookup-table kernels: packing and repacking
 * from I2_R16, every ISA against its scalar twin and bit for bit against the
 * I2_S kernels (LUT kernels change speed, not answers), odd shapes (K not a
 * multiple of 2, 3 or of the K block), tiny and odd tilings, adversarial
 * values at the largest K, row-range splits, guard bytes after outputs, the
 * pooled split. Built plain, with ASan+UBSan, and for arm64 under qemu. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "bitnet_kernels.h"

#define HARNESS_SEED 0x2545F4914F6CDD1Dull
#include "harness.h"

static const bn_isa all_isas[] = {BN_ISA_SCALAR, BN_ISA_AVX2, BN_ISA_AVX512, BN_ISA_AVX512_VNNI, BN_ISA_AMX,
                                  BN_ISA_NEON, BN_ISA_NEON_DOTPROD};
#define N_ISAS (int)(sizeof all_isas / sizeof all_isas[0])

enum { W_RANDOM, W_PLUS, W_MINUS, W_ALT };
enum { X_RANDOM, X_MAX, X_MIN, X_ALT };

typedef struct {
    int m, k, k_pad, n;
    int8_t *tern;
    uint8_t *i2r16;
    int8_t *x;
    float *xs;
    int32_t *xsum;
} problem;

static problem make_problem(int m, int k, int n, int wkind, int xkind) {
    problem p = {m, k, bn_pad_cols(k), n, NULL, NULL, NULL, NULL, NULL};
    p.tern = malloc((size_t)m * (size_t)k);
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++)
        p.tern[i] = wkind == W_RANDOM ? (int8_t)((int)(rnd() % 3) - 1)
                    : wkind == W_PLUS ? 1
                    : wkind == W_MINUS ? -1
                                       : (int8_t)((i & 1) ? -1 : 1);
    p.i2r16 = malloc(bn_i2r16_bytes(m, k));
    bn_i2r16_pack(p.tern, m, k, p.i2r16);
    p.x = calloc((size_t)n * (size_t)p.k_pad, 1);
    p.xs = malloc(sizeof(float) * (size_t)n);
    p.xsum = malloc(sizeof(int32_t) * (size_t)n);
    for (int t = 0; t < n; t++) {
        int32_t s = 0;
        for (int i = 0; i < k; i++) {
            const int v = xkind == X_RANDOM ? (int)(rnd() % 256) - 128
                          : xkind == X_MAX  ? 127
                          : xkind == X_MIN  ? -128
                                            : ((i & 1) ? -128 : 127);
            p.x[(size_t)t * p.k_pad + i] = (int8_t)v;
            s += v;
        }
        p.xsum[t] = s;
        p.xs[t] = 0.5f + 140.0f * fabsf(rnd_float());
    }
    return p;
}

static void free_problem(problem *p) {
    free(p->tern); free(p->i2r16); free(p->x); free(p->xs); free(p->xsum);
}

typedef void (*any_fn)(const void *w, const problem *p, float *y, int ldy, int r0, int r1);

static const bn_tl_gemm_fn *cur_tl;
static void call_tl(const void *w, const problem *p, float *y, int ldy, int r0, int r1) {
    (*cur_tl)((const bn_tl_matrix *)w, p->x, p->xs, NULL, p->n, y, ldy, r0, r1);
}
static bn_i2s_gemm_fn cur_i2s;
static void call_i2s(const void *w, const problem *p, float *y, int ldy, int r0, int r1) {
    cur_i2s((const bn_i2s_matrix *)w, p->x, p->xs, p->xsum, p->n, y, ldy, r0, r1);
}

/* Runs over [0, m_pad) in ranges of `split` rows into a guarded y with
 * ldy = m + 3; the gaps past m must stay untouched. */
static float *run(any_fn fn, const void *w, const problem *p, int split, const char *what) {
    const int ldy = p->m + 3, m_pad = bn_pad_rows(p->m);
    const size_t bytes = sizeof(float) * (size_t)p->n * (size_t)ldy;
    float *y = guarded_alloc(bytes);
    for (int r = 0; r < m_pad; r += split) fn(w, p, y, ldy, r, r + split);
    CHECK(guard_ok(y, bytes), "%s wrote past y (m=%d k=%d n=%d)", what, p->m, p->k, p->n);
    const uint32_t *u = (const uint32_t *)y;
    int bad = 0;
    for (int t = 0; t < p->n; t++)
        for (int r = p->m; r < ldy; r++) bad += u[(size_t)t * ldy + r] != 0xCDCDCDCDu;
    CHECK(bad == 0, "%s wrote rows >= m=%d", what, p->m);
    return y;
}

static int same_rows(const float *a, const float *b, const problem *p) {
    const int ldy = p->m + 3;
    for (int t = 0; t < p->n; t++)
        if (memcmp(a + (size_t)t * ldy, b + (size_t)t * ldy, sizeof(float) * (size_t)p->m) != 0) return 0;
    return 1;
}

static void check_type(problem *p, int type, const float *yref, const char *what) {
    const int m = p->m, k = p->k;
    const size_t bytes = bn_tl_bytes(type, m, k);
    uint8_t *tl = guarded_alloc(bytes), *tl2 = guarded_alloc(bytes);
    bn_tl_pack(type, p->tern, m, k, tl);
    CHECK(guard_ok(tl, bytes), "%s TL%d pack overran", what, type);
    const int64_t bad = bn_tl_from_i2r16(type, p->i2r16, m, k, tl2);
    CHECK(bad == 0 && memcmp(tl, tl2, bytes) == 0 && guard_ok(tl2, bytes), "%s TL%d from I2_R16 != pack (m=%d k=%d)",
          what, type, m, k);
    for (int r = 0; r < m; r += 1 + m / 5)
        for (int c = 0; c < k; c += 1 + k / 9)
            CHECK(bn_tl_weight(type, tl, m, k, r, c) == p->tern[(size_t)r * k + c], "%s TL%d weight (%d,%d)", what,
                  type, r, c);
    /* adopting packed bytes whose TL2 count tail was clobbered restores it exactly */
    {
        uint8_t *src = guarded_alloc(bytes), *adopted = guarded_alloc(bytes);
        memcpy(src, tl, bytes);
        if (type == 2) memset(src + bytes - sizeof(int32_t) * (size_t)bn_pad_rows(m), 0x5A, sizeof(int32_t) * (size_t)bn_pad_rows(m));
        bn_tl_adopt(type, src, m, k, adopted);
        CHECK(memcmp(adopted, tl, bytes) == 0 && guard_ok(adopted, bytes), "%s TL%d adopt (m=%d k=%d)", what, type, m, k);
        free(src);
        free(adopted);
    }
    /* and back: the I2_R16 bytes, padding included, must be rebuilt exactly */
    const size_t i2bytes = bn_i2r16_bytes(m, k);
    uint8_t *back = guarded_alloc(i2bytes);
    const int64_t invalid = bn_tl_to_i2r16(type, tl, m, k, back);
    CHECK(invalid == 0 && memcmp(back, p->i2r16, i2bytes) == 0 && guard_ok(back, i2bytes),
          "%s TL%d -> I2_R16 round trip (m=%d k=%d)", what, type, m, k);
    free(back);
    bn_tl_matrix w = bn_tl_matrix_make(type, tl, m, k, 0.37f);
    CHECK(w.slots % 8 == 0 && w.slots * (type == 1 ? 2 : 3) >= k, "TL%d slots", type);
    /* three tilings: the defaults, tiny blocks / single-tile chunks / 3-row
     * token blocks, and one block for all of K */
    bn_tl_tiling tilings[3];
    tilings[0] = bn_tl_default_tiling(type, m, k, p->n);
    tilings[1].block_slots = 8; tilings[1].chunk_tiles = 1; tilings[1].token_block = 3;
    tilings[2].block_slots = 1 << 20; tilings[2].chunk_tiles = 1 << 20; tilings[2].token_block = 100;
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        const bn_tl_gemm_fn gemm = type == 1 ? kt->tl1_gemm : kt->tl2_gemm;
        const bn_tl_gemm_fn gemv = type == 1 ? kt->tl1_gemv : kt->tl2_gemv;
        for (int ti = 0; ti < 3; ti++) {
            w.tiling = tilings[ti];
            const int splits[2] = {bn_pad_rows(m), 32};
            for (int si = 0; si < 2; si++) {
                if (ti > 0 && si > 0 && m > 40) continue;
                char label[96];
                snprintf(label, sizeof label, "%s TL%d %s tiling %d split %d", what, type, kt->name, ti, splits[si]);
                cur_tl = &gemm;
                float *y = run(call_tl, &w, p, splits[si], label);
                CHECK(same_rows(y, yref, p), "%s: gemm != I2_S (m=%d k=%d n=%d)", label, m, k, p->n);
                free(y);
                if (p->n == 1) {
                    cur_tl = &gemv;
                    y = run(call_tl, &w, p, splits[si], label);
                    CHECK(same_rows(y, yref, p), "%s: gemv != I2_S (m=%d k=%d)", label, m, k);
                    free(y);
                }
            }
        }
    }
    free(tl);
    free(tl2);
}

static void check_problem(problem *p, const char *what) {
    const int m = p->m, k = p->k, ldy = m + 3;
    bn_i2s_matrix wi = {p->i2r16, m, k, bn_pad_rows(m), p->k_pad, 0.37f};
    /* I2_S reference: the best kernel (itself checked against the scalar spec by test_kernels) */
    cur_i2s = bn_kernels_best()->i2s_gemm;
    float *yref = run(call_i2s, &wi, p, bn_pad_rows(m), "i2s");
    /* integer exactness of the scalar TL twin: unit scales give the exact dot */
    {
        size_t bytes = bn_tl_bytes(2, m, k);
        uint8_t *tl = malloc(bytes);
        bn_tl_pack(2, p->tern, m, k, tl);
        bn_tl_matrix w = bn_tl_matrix_make(2, tl, m, k, 1.0f);
        float *unit = malloc(sizeof(float) * (size_t)p->n), *saved = p->xs;
        for (int t = 0; t < p->n; t++) unit[t] = 1.0f;
        p->xs = unit;
        const bn_tl_gemm_fn f = bn_kernels_for(BN_ISA_SCALAR)->tl2_gemm;
        cur_tl = &f;
        float *y = run(call_tl, &w, p, bn_pad_rows(m), "scalar exact");
        int bad = 0;
        for (int t = 0; t < p->n; t++)
            for (int r = 0; r < m; r++) {
                int64_t dot = 0;
                for (int c = 0; c < k; c++) dot += (int64_t)p->tern[(size_t)r * k + c] * p->x[(size_t)t * p->k_pad + c];
                bad += y[(size_t)t * ldy + r] != (float)dot;
            }
        CHECK(bad == 0, "%s: scalar TL2 not the exact dot (m=%d k=%d n=%d)", what, m, k, p->n);
        p->xs = saved;
        free(unit); free(y); free(tl);
    }
    check_type(p, 1, yref, what);
    check_type(p, 2, yref, what);
    free(yref);
}

static void test_shapes(void) {
    static const int ms[] = {1, 17, 32, 33, 100};
    static const int ks[] = {1, 2, 3, 4, 5, 31, 32, 33, 96, 100, 128, 1000, 2560, 8640};
    static const int ns[] = {1, 2, 3, 7, 17};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                if (ks[ki] >= 2560 && ns[ni] > 3 && ms[mi] > 33) continue; /* keep the asan run short */
                problem p = make_problem(ms[mi], ks[ki], ns[ni], W_RANDOM, X_RANDOM);
                check_problem(&p, "random");
                free_problem(&p);
            }
    /* prompt-sized batches cross token blocks */
    static const int bk[] = {100, 1000, 2560};
    for (int i = 0; i < 3; i++) {
        problem p = make_problem(70, bk[i], 128, W_RANDOM, X_RANDOM);
        check_problem(&p, "n128");
        free_problem(&p);
    }
}

/* All ±1 weights against ±127/-128 activations: |T2| = 384 per slot, the
 * int16 sums at their bound (64 slots × 385), the int32 total 128·K. */
static void test_adversarial(void) {
    static const int ks[] = {8640, 8641, 8642, 65536};
    const int combos[6][2] = {{W_PLUS, X_MAX}, {W_MINUS, X_MAX}, {W_PLUS, X_MIN}, {W_MINUS, X_MIN},
                              {W_ALT, X_ALT}, {W_RANDOM, X_MIN}};
    for (int ki = 0; ki < 4; ki++)
        for (int c = 0; c < 6; c++) {
            problem p = make_problem(33, ks[ki], ks[ki] > 10000 ? 1 : 2, combos[c][0], combos[c][1]);
            check_problem(&p, "adversarial");
            free_problem(&p);
        }
}

/* Code 3 in an I2_R16 matrix (malformed file) is counted and read as +1. */
static void test_code3(void) {
    const int m = 5, k = 40;
    uint8_t *i2 = malloc(bn_i2r16_bytes(m, k));
    memset(i2, 0xFF, bn_i2r16_bytes(m, k));
    uint8_t *tl = malloc(bn_tl_bytes(2, m, k));
    const int64_t bad = bn_tl_from_i2r16(2, i2, m, k, tl);
    CHECK(bad == (int64_t)m * k, "code-3 count %lld", (long long)bad);
    CHECK(bn_tl_weight(2, tl, m, k, 4, 39) == 1, "code 3 read as +1");
    free(i2);
    free(tl);
}

/* Indices no packer writes (TL1 9..15, TL2 14, 15: a malformed file) are
 * counted and read as weights 0; the other slots keep their values. */
static void test_invalid_index(void) {
    const int m = 33, k = 50;
    int8_t *w = malloc((size_t)m * k);
    for (int i = 0; i < m * k; i++) w[i] = (int8_t)(i % 3 - 1);
    for (int type = 1; type <= 2; type++) {
        uint8_t *tl = malloc(bn_tl_bytes(type, m, k)), *i2 = malloc(bn_i2r16_bytes(m, k));
        bn_tl_pack(type, w, m, k, tl);
        /* (header layout) row 0, slot 0: byte 0, low nibble; row 17, slot 3 (pair 1):
         * byte 0·64 + 1·32 + 1·16 + 1 = 49, high nibble */
        tl[0] = (uint8_t)((tl[0] & 0xF0) | 15);
        tl[49] = (uint8_t)((tl[49] & 0x0F) | (type == 1 ? 9 : 14) << 4);
        const int64_t bad = bn_tl_to_i2r16(type, tl, m, k, i2);
        CHECK(bad == 2, "TL%d invalid-index count %lld", type, (long long)bad);
        const int width = type == 1 ? 2 : 3;
        int wrong = 0;
        for (int r = 0; r < m; r++)
            for (int c = 0; c < k; c++) {
                const int hit = (r == 0 && c / width == 0) || (r == 17 && c / width == 3);
                const int want = hit ? 0 : w[r * k + c];
                wrong += bn_i2r16_code(i2, bn_pad_cols(k), r, c) - 1 != want;
            }
        CHECK(wrong == 0, "TL%d invalid indices decode as 0, others unchanged (%d wrong)", type, wrong);
        free(tl);
        free(i2);
    }
    free(w);
}

static void test_pool(void) {
    problem p = make_problem(300, 2560, 3, W_RANDOM, X_RANDOM);
    for (int type = 1; type <= 2; type++) {
        uint8_t *tl = malloc(bn_tl_bytes(type, p.m, p.k));
        bn_tl_pack(type, p.tern, p.m, p.k, tl);
        bn_tl_matrix w = bn_tl_matrix_make(type, tl, p.m, p.k, 0.5f);
        const bn_kernels *kt = bn_kernels_best();
        float *y1 = calloc((size_t)p.n * p.m, sizeof(float)), *y2 = calloc((size_t)p.n * p.m, sizeof(float));
        (type == 1 ? kt->tl1_gemm : kt->tl2_gemm)(&w, p.x, p.xs, NULL, p.n, y1, p.m, 0, w.m_pad);
        for (int nt = 1; nt <= 3; nt++) {
            bn_pool *pool = bn_pool_create(nt);
            memset(y2, 0, sizeof(float) * (size_t)p.n * p.m);
            bn_tl_matmul(pool, kt, &w, p.x, p.xs, p.n, y2, p.m);
            CHECK(memcmp(y1, y2, sizeof(float) * (size_t)p.n * p.m) == 0, "TL%d pooled gemm (%d threads)", type, nt);
            bn_tl_matmul(pool, kt, &w, p.x, p.xs, 1, y2, p.m);
            CHECK(memcmp(y1, y2, sizeof(float) * (size_t)p.m) == 0, "TL%d pooled gemv (%d threads)", type, nt);
            bn_pool_destroy(pool);
        }
        free(y1); free(y2); free(tl);
    }
    free_problem(&p);
}

/* Batch invariance across kernel families: the TL1/TL2 GEMV of one activation
 * row equals the I2_S GEMV of that row bit for bit (same exact integer sum,
 * same epilogue (float)dot · (w_scale / x_scale)), and row t of a TL call
 * with n rows equals the TL GEMV of row t alone, for n = 1..17 at every
 * offset, every ISA, through the pooled split (2 threads). A decode that
 * switches kernel (--kernel auto) or batches sequences gets the same logits. */
static void test_batch_invariance(void) {
    static const int shapes[][2] = {{1, 2}, {31, 67}, {64, 300}, {100, 2560}};
    const int nmax = 17;
    bn_pool *pool = bn_pool_create(2);
    int cases = 0;
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int m = shapes[si][0], k = shapes[si][1], ldy = m + 3;
            const float scale = 0.0123f + (float)(rnd() % 100) / 1000.0f;
            problem p = make_problem(m, k, nmax, W_RANDOM, X_RANDOM);
            bn_i2s_matrix wi = {p.i2r16, m, k, bn_pad_rows(m), p.k_pad, scale};
            float *one = malloc(sizeof(float) * nmax * m), *y1 = malloc(sizeof(float) * m);
            for (int t = 0; t < nmax; t++)
                bn_i2s_matmul(pool, kt, &wi, p.x + (size_t)t * p.k_pad, p.xs + t, p.xsum + t, 1, one + (size_t)t * m, m);
            for (int type = 1; type <= 2; type++) {
                uint8_t *tl = malloc(bn_tl_bytes(type, m, k));
                bn_tl_pack(type, p.tern, m, k, tl);
                bn_tl_matrix w = bn_tl_matrix_make(type, tl, m, k, scale);
                for (int t = 0; t < nmax; t++) {
                    bn_tl_matmul(pool, kt, &w, p.x + (size_t)t * p.k_pad, p.xs + t, 1, y1, m);
                    CHECK(memcmp(y1, one + (size_t)t * m, sizeof(float) * m) == 0,
                          "%s TL%d GEMV != I2_S GEMV (m=%d k=%d t=%d)", kt->name, type, m, k, t);
                }
                for (int n = 1; n <= nmax; n++) {
                    const int s = (int)(rnd() % (unsigned)(nmax - n + 1));
                    const size_t bytes = sizeof(float) * (size_t)n * ldy;
                    float *y = guarded_alloc(bytes);
                    bn_tl_matmul(pool, kt, &w, p.x + (size_t)s * p.k_pad, p.xs + s, n, y, ldy);
                    CHECK(guard_ok(y, bytes), "%s TL%d batch overran", kt->name, type);
                    for (int t = 0; t < n; t++)
                        CHECK(memcmp(y + (size_t)t * ldy, one + (size_t)(s + t) * m, sizeof(float) * m) == 0,
                              "%s TL%d not batch-invariant (m=%d k=%d n=%d t=%d)", kt->name, type, m, k, n, t);
                    free(y);
                    cases++;
                }
                free(tl);
            }
            free(one);
            free(y1);
            free_problem(&p);
        }
    }
    bn_pool_destroy(pool);
    printf("  batch invariance: %d (ISA, type, shape, n) TL cases bit-identical to the I2_S GEMV of each row\n", cases);
}

static void test_sizes(void) {
    CHECK(bn_tl_slots(2, 2560) == 856 && bn_tl_slots(1, 2560) == 1280, "slots");
    CHECK(bn_tl_bytes(1, 2560, 2560) == bn_i2r16_bytes(2560, 2560), "TL1 is 2 bits/weight");
    CHECK(bn_tl_bytes(2, 2560, 6912) == (size_t)2560 * 2304 * 5 / 8 + 4 * 2560, "TL2 size");
    printf("  TL2/I2_S bytes: 2560x2560 %.3f, 6912x2560 %.3f, 2560x6912 %.3f\n",
           (double)bn_tl_bytes(2, 2560, 2560) / (double)bn_i2r16_bytes(2560, 2560),
           (double)bn_tl_bytes(2, 6912, 2560) / (double)bn_i2r16_bytes(6912, 2560),
           (double)bn_tl_bytes(2, 2560, 6912) / (double)bn_i2r16_bytes(2560, 6912));
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        printf("  testing %s\n", kt->name);
        CHECK(kt->tl1_gemv && kt->tl1_gemm && kt->tl2_gemv && kt->tl2_gemm, "%s: TL entries", kt->name);
    }
}

/* Decoding reads nothing past the TL bytes: each tensor ends exactly at a PROT_NONE page,
 * so an over-read faults in any build (found by Fuzz/c/kernels.c: TL2 decodes two groups
 * at a time and read the sign bytes of a missing second group when the count is odd). */
static void test_decode_reads_only_its_bytes(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const int32_t shapes[][2] = {{1, 32}, {5, 96}, {32, 160}, {33, 224}, {70, 300}, {16, 33}, {64, 2560}};
    for (int type = 1; type <= 2; type++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int32_t m = shapes[s][0], k = shapes[s][1];
            const size_t bytes = bn_tl_bytes(type, m, k), span = (bytes + page - 1) / page * page;
            uint8_t *region = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (region == MAP_FAILED) continue;
            mprotect(region + span, page, PROT_NONE);
            uint8_t *data = region + span - bytes; /* the last byte touches the guard page */
            memset(data, 0, bytes);
            uint8_t *out = malloc(bn_i2r16_bytes(m, k));
            const int64_t bad = bn_tl_to_i2r16(type, data, m, k, out);
            CHECK(bad >= 0, "TL%d %dx%d decoded within its %zu bytes", type, m, k, bytes);
            free(out);
            munmap(region, span + page);
        }
}

/* bn_tl_check, the gate for running a file's TL bytes in place: a packer's
 * output passes; one index no packer writes (in a real slot or in the padding
 * past k or m) or one wrong TL2 negative-slot count fails, each counted once. */
static void test_check(void) {
    const int32_t shapes[][2] = {{1, 32}, {33, 50}, {64, 2560}, {70, 301}};
    for (int type = 1; type <= 2; type++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int32_t m = shapes[s][0], k = shapes[s][1];
            int8_t *w = malloc((size_t)m * (size_t)k);
            for (size_t i = 0; i < (size_t)m * (size_t)k; i++) w[i] = (int8_t)((int)(rnd() % 3) - 1);
            const size_t bytes = bn_tl_bytes(type, m, k);
            uint8_t *tl = malloc(bytes);
            bn_tl_pack(type, w, m, k, tl);
            CHECK(bn_tl_check(type, tl, m, k) == 0, "TL%d %dx%d packer output passes", type, m, k);
            const int32_t s_pad = bn_tl_slots(type, k), gbytes = type == 1 ? BN_TL1_GROUP_BYTES : BN_TL2_GROUP_BYTES;
            const size_t last_group = (size_t)(bn_pad_rows(m) / BN_TL_ROWS - 1) * (size_t)(s_pad / 8) * gbytes +
                                      (size_t)(s_pad / 8 - 1) * gbytes;
            /* the last group of the last tile holds padding slots or rows for these shapes */
            const uint8_t saved = tl[last_group + 127];
            tl[last_group + 127] = (uint8_t)((saved & 0x0F) | 0xF0);
            CHECK(bn_tl_check(type, tl, m, k) == 1, "TL%d %dx%d invalid index in the last group", type, m, k);
            tl[last_group + 127] = saved;
            if (type == 2) {
                int32_t count;
                memcpy(&count, tl + bytes - sizeof count, sizeof count);
                count += 1;
                memcpy(tl + bytes - sizeof count, &count, sizeof count);
                CHECK(bn_tl_check(type, tl, m, k) == 1, "TL2 %dx%d wrong negative-slot count", m, k);
            }
            free(tl);
            free(w);
        }
}

/* Kernels run on a file's bytes in place: the last tensor of a file may end at
 * the mapping's end, so every ISA's GEMV and GEMM must read no byte past
 * bn_tl_bytes (the data ends at a PROT_NONE page). */
static void test_in_place_reads_only_its_bytes(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const int32_t shapes[][2] = {{1, 32}, {33, 224}, {70, 301}, {64, 2560}};
    for (int type = 1; type <= 2; type++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int32_t m = shapes[s][0], k = shapes[s][1];
            problem p = make_problem(m, k, 3, W_RANDOM, X_RANDOM);
            const size_t bytes = bn_tl_bytes(type, m, k), span = (bytes + page - 1) / page * page;
            uint8_t *region = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (region == MAP_FAILED) { free_problem(&p); continue; }
            mprotect(region + span, page, PROT_NONE);
            uint8_t *data = region + span - bytes;
            bn_tl_pack(type, p.tern, m, k, data);
            const bn_tl_matrix w = bn_tl_matrix_make(type, data, m, k, 0.25f);
            float *ref = calloc((size_t)p.n * (size_t)m, sizeof(float)), *y = calloc((size_t)p.n * (size_t)m, sizeof(float));
            const bn_kernels *scalar = bn_kernels_for(BN_ISA_SCALAR);
            (type == 1 ? scalar->tl1_gemm : scalar->tl2_gemm)(&w, p.x, p.xs, NULL, p.n, ref, m, 0, w.m_pad);
            for (int i = 0; i < N_ISAS; i++) {
                const bn_kernels *kt = bn_kernels_for(all_isas[i]);
                if (!kt) continue;
                (type == 1 ? kt->tl1_gemm : kt->tl2_gemm)(&w, p.x, p.xs, NULL, p.n, y, m, 0, w.m_pad);
                CHECK(memcmp(ref, y, sizeof(float) * (size_t)p.n * (size_t)m) == 0, "%s TL%d %dx%d gemm in place",
                      kt->name, type, m, k);
                (type == 1 ? kt->tl1_gemv : kt->tl2_gemv)(&w, p.x, p.xs, NULL, 1, y, m, 0, w.m_pad);
                CHECK(memcmp(ref, y, sizeof(float) * (size_t)m) == 0, "%s TL%d %dx%d gemv in place", kt->name, type, m, k);
            }
            free(ref); free(y);
            munmap(region, span + page);
            free_problem(&p);
        }
}

int main(void) {
    test_sizes();
    test_code3();
    test_invalid_index();
    test_shapes();
    test_adversarial();
    test_pool();
    test_batch_invariance();
    test_decode_reads_only_its_bytes();
    test_check();
    test_in_place_reads_only_its_bytes();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
