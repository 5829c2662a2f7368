/* Small-batch GEMM micro-benchmark (not part of `make test`): the I2_S
 * projections and the Q8 head at n = 1, 2, 4, 8, 16 activation rows, the
 * shapes continuous batching runs. Prints G-op/s (2·m·k·n / time) as the
 * median of `reps` timed calls, through bn_i2s_matmul on a pool of 1 and 2
 * threads (the heads are split in 16- and 48-row units like the library does).
 *
 *   clang -O2 -std=c11 -D_GNU_SOURCE -ICKernels/include -ICKernels/src \
 *     $(KERNEL_SRCS of the Makefile) Tests/c/bench_gemm.c -lm -lpthread -o build/bench_gemm
 *   build/bench_gemm [reps] [isa] [which: any of i (I2_S), q (Q8 head), f (F16 head)]
 *
 * A/B in one process: compile an old copy of a kernel file with its public
 * symbol renamed (-Dbn_i2s_gemm_avx2=old_bn_i2s_gemm_avx2 -c old.c; then
 * objcopy --keep-global-symbol=old_bn_i2s_gemm_avx2 old.o) and link it in; the weak references below then pick it up and every measurement
 * alternates old and new calls, so both see the same machine load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bitnet_kernels.h"

#define HARNESS_SEED 0x5DEECE66Dull
#include "harness.h"

extern void old_bn_i2s_gemm_avx2(const bn_i2s_matrix *, const int8_t *, const float *, const int32_t *, int32_t,
                                 float *, int32_t, int32_t, int32_t) __attribute__((weak));
extern void old_bn_q8_gemm_avx2(const bn_q8_matrix *, const int8_t *, const float *, int32_t, float *, int32_t,
                                int32_t, int32_t) __attribute__((weak));
extern void old_bn_f16_gemm_avx2(const uint16_t *, int32_t, const float *, int32_t, float *, int32_t, int32_t,
                                 int32_t) __attribute__((weak));

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- pooled calls (the library's split: 32-row units for I2_S, 16 for heads) ---- */

typedef struct {
    int kind; /* 0 = i2s, 1 = q8, 2 = f16 */
    bn_i2s_gemm_fn i2s;
    bn_q8_gemm_fn q8;
    bn_f16_gemm_fn f16;
    const bn_i2s_matrix *wi;
    const bn_q8_matrix *wq;
    const uint16_t *wh;
    int32_t m, k;
    const int8_t *x;
    const float *xf, *xs;
    const int32_t *xsum;
    int32_t n;
    float *y;
    int32_t counter;
} job;

static void task(void *ctx, int32_t ith, int32_t nth) {
    (void)ith;
    (void)nth;
    job *j = ctx;
    /* units claimed at a time: 4 × 32 rows (I2_S), 4 × 16 (Q8), 48 rows for F16 as HeadJob.chunkRows */
    const int32_t unit = j->kind == 0 ? 32 : 16, per = j->kind == 2 ? 3 : 4;
    const int32_t m_pad = (j->m + unit - 1) / unit * unit;
    for (;;) {
        const int32_t u = bn_pool_claim(&j->counter, per);
        const int32_t r0 = u * unit;
        if (r0 >= m_pad) break;
        const int32_t r1 = r0 + per * unit;
        if (j->kind == 0) j->i2s(j->wi, j->x, j->xs, j->xsum, j->n, j->y, j->m, r0, r1);
        else if (j->kind == 1) j->q8(j->wq, j->x, j->xs, j->n, j->y, j->m, r0, r1 < j->m ? r1 : j->m);
        else j->f16(j->wh, j->k, j->xf, j->n, j->y, j->m, r0, r1 < j->m ? r1 : j->m);
    }
}

static void run_job(bn_pool *pool, job *j) {
    j->counter = 0;
    bn_pool_run(pool, task, j);
}

/* Times fa (and fb when set) alternately; returns medians in sec[0], sec[1]. */
static void time_ab(bn_pool *pool, job *a, job *b, int reps, double sec[2]) {
    double *ta = malloc(sizeof(double) * reps), *tb = malloc(sizeof(double) * reps);
    run_job(pool, a);
    if (b) run_job(pool, b);
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        run_job(pool, a);
        ta[i] = now_s() - t0;
        if (b) {
            t0 = now_s();
            run_job(pool, b);
            tb[i] = now_s() - t0;
        }
    }
    qsort(ta, reps, sizeof(double), cmp_d);
    sec[0] = ta[reps / 2];
    if (b) {
        qsort(tb, reps, sizeof(double), cmp_d);
        sec[1] = tb[reps / 2];
    } else sec[1] = 0;
    free(ta);
    free(tb);
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 21;
    const bn_kernels *kt = argc > 2 ? bn_kernels_for((bn_isa)bn_isa_parse(argv[2])) : bn_kernels_best();
    const char *only = argc > 3 ? argv[3] : "iqf"; /* which benchmarks: i2s, q8, f16 */
    if (!kt) {
        fprintf(stderr, "isa unavailable\n");
        return 1;
    }
    static const int ns[] = {1, 2, 4, 8, 16};
    const int nmax = 16;
    printf("isa %s, %d reps (median); G-op/s = 2*m*k*n/t%s\n", kt->name, reps,
           old_bn_i2s_gemm_avx2 ? "; old = linked-in previous kernel, same process, alternating" : "");
    static const int shapes[][2] = {{2560, 2560}, {6912, 2560}, {2560, 6912}};
    for (int nt = 1; nt <= 2; nt++) {
        bn_pool *pool = bn_pool_create(nt);
        if (strchr(only, 'i'))
            for (int si = 0; si < 3; si++) {
                const int m = shapes[si][0], k = shapes[si][1], k_pad = bn_pad_cols(k);
                uint8_t *wp = malloc(bn_i2r16_bytes(m, k));
                for (size_t i = 0; i < bn_i2r16_bytes(m, k); i++) {
                    uint8_t b = 0;
                    for (int s = 0; s < 4; s++) b |= (uint8_t)((rnd() % 3) << (2 * s));
                    wp[i] = b;
                }
                bn_i2s_matrix w = {wp, m, k, bn_pad_rows(m), k_pad, 0.5f};
                int8_t *x = malloc((size_t)nmax * k_pad);
                for (size_t i = 0; i < (size_t)nmax * k_pad; i++) x[i] = (int8_t)(rnd() % 256);
                float xs[16];
                int32_t xsum[16];
                for (int t = 0; t < nmax; t++) xs[t] = 1.0f, xsum[t] = 0;
                float *y = malloc(sizeof(float) * (size_t)nmax * m);
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    const int n = ns[ni];
                    job a = {0, n == 1 ? kt->i2s_gemv : kt->i2s_gemm, 0, 0, &w, 0, 0, m, k, x, 0, xs, xsum, n, y, 0};
                    job b = a;
                    if (old_bn_i2s_gemm_avx2 && n > 1) b.i2s = old_bn_i2s_gemm_avx2;
                    double sec[2];
                    time_ab(pool, &a, old_bn_i2s_gemm_avx2 && n > 1 ? &b : NULL, reps, sec);
                    const double ops = 2.0 * m * k * n;
                    printf("i2s %dx%d t=%d n=%2d: %7.1f G-op/s", m, k, nt, n, ops / sec[0] * 1e-9);
                    if (sec[1] > 0) printf("   old %7.1f  (x%.2f)", ops / sec[1] * 1e-9, sec[1] / sec[0]);
                    printf("\n");
                }
                free(wp);
                free(x);
                free(y);
            }
        if (strchr(only, 'q')) { /* the int8 head: 32768 rows of a 2560 hidden size (84 MB, out of cache) */
            const int m = 32768, k = 2560, k_pad = bn_pad_cols(k), m16 = (m + 15) / 16 * 16;
            int8_t *wq = malloc(bn_q8r16_bytes(m, k));
            for (size_t i = 0; i < bn_q8r16_bytes(m, k); i++) wq[i] = (int8_t)(rnd() % 255 - 127);
            int32_t *row_sum = calloc(m16, sizeof(int32_t));
            float *row_scale = malloc(sizeof(float) * m);
            for (int r = 0; r < m; r++) row_scale[r] = 0.01f;
            bn_q8_matrix w = {wq, row_scale, row_sum, m, k, m16, k_pad};
            int8_t *x = malloc((size_t)nmax * k_pad);
            for (size_t i = 0; i < (size_t)nmax * k_pad; i++) x[i] = (int8_t)(rnd() % 256);
            float xs[16];
            for (int t = 0; t < nmax; t++) xs[t] = 1.0f;
            float *y = malloc(sizeof(float) * (size_t)nmax * m);
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                const int n = ns[ni];
                job a = {1, 0, kt->q8_gemm, 0, 0, &w, 0, m, k, x, 0, xs, 0, n, y, 0};
                job b = a;
                if (old_bn_q8_gemm_avx2) b.q8 = old_bn_q8_gemm_avx2;
                double sec[2];
                time_ab(pool, &a, old_bn_q8_gemm_avx2 ? &b : NULL, reps, sec);
                const double ops = 2.0 * m * k * n;
                printf("q8  %dx%d t=%d n=%2d: %7.1f G-op/s", m, k, nt, n, ops / sec[0] * 1e-9);
                if (sec[1] > 0) printf("   old %7.1f  (x%.2f)", ops / sec[1] * 1e-9, sec[1] / sec[0]);
                printf("\n");
            }
            free(wq); free(row_sum); free(row_scale); free(x); free(y);
        }
        if (strchr(only, 'f')) { /* the F16 head, same shape */
            const int m = 32768, k = 2560;
            uint16_t *wh = malloc(sizeof(uint16_t) * (size_t)m * k);
            for (size_t i = 0; i < (size_t)m * k; i++) wh[i] = (uint16_t)(0x3000 + rnd() % 0x0800) | (rnd() & 1 ? 0x8000 : 0);
            { /* the kernels read 16-row panels (bn_f16_gemm_fn) */
                uint16_t *panels = malloc(bn_f16_panels_bytes(m, k));
                bn_f16_panels(wh, m, k, 0, (m + 15) / 16, panels);
                free(wh);
                wh = panels;
            }
            float *x = malloc(sizeof(float) * (size_t)nmax * k);
            for (size_t i = 0; i < (size_t)nmax * k; i++) x[i] = rnd_float();
            float *y = malloc(sizeof(float) * (size_t)nmax * m);
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                const int n = ns[ni];
                job a = {2, 0, 0, kt->f16_gemm, 0, 0, wh, m, k, 0, x, 0, 0, n, y, 0};
                job b = a;
                if (old_bn_f16_gemm_avx2) b.f16 = old_bn_f16_gemm_avx2;
                double sec[2];
                time_ab(pool, &a, old_bn_f16_gemm_avx2 ? &b : NULL, reps, sec);
                const double ops = 2.0 * m * k * n;
                printf("f16 %dx%d t=%d n=%2d: %7.1f G-op/s", m, k, nt, n, ops / sec[0] * 1e-9);
                if (sec[1] > 0) printf("   old %7.1f  (x%.2f)", ops / sec[1] * 1e-9, sec[1] / sec[0]);
                printf("\n");
            }
            free(wh); free(x); free(y);
        }
        bn_pool_destroy(pool);
    }
    return 0;
}
