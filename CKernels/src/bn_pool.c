/* A persistent worker pool. A decode step of a 30-layer model makes about
 * 200 matrix calls, so a dispatch must cost microseconds: workers spin on a
 * generation counter between calls and only sleep on a condition variable
 * after a few milliseconds without work. Memory is allocated only in
 * bn_pool_create. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ volatile("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

/* ~2-5 ms of pause instructions before a worker goes to sleep. */
#define BN_POOL_SPIN (1 << 17)
/* Spinners yield the core now and then, so that a pool with more threads
 * than free cores still makes progress instead of spinning against itself. */
#define BN_POOL_YIELD_EVERY 256

static inline void spin_wait(int i) {
    if ((i & (BN_POOL_YIELD_EVERY - 1)) == BN_POOL_YIELD_EVERY - 1)
        sched_yield();
    else
        cpu_relax();
}

struct bn_pool;
typedef struct {
    struct bn_pool *pool;
    int32_t ith;
} bn_worker;

struct bn_pool {
    int32_t nthreads;
    pthread_t *threads;   /* nthreads - 1 workers; the caller is thread 0 */
    bn_worker *workers;
    _Atomic uint32_t generation;
    _Atomic int32_t pending;
    _Atomic int32_t sleepers;
    _Atomic int stop;
    bn_task_fn fn;
    void *ctx;
    int32_t nth_active;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *worker_main(void *arg) {
    bn_worker *w = (bn_worker *)arg;
    struct bn_pool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int i = 0; gen == seen && i < BN_POOL_SPIN; i++) {
            spin_wait(i);
            gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = gen;
        if (w->ith < p->nth_active) p->fn(p->ctx, w->ith, p->nth_active);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

bn_pool *bn_pool_create(int32_t nthreads) {
    if (nthreads < 1) nthreads = 1;
    struct bn_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (nthreads > 1) {
        p->threads = calloc((size_t)nthreads - 1, sizeof *p->threads);
        p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
        if (!p->threads || !p->workers) {
            free(p->threads);
            free(p->workers);
            free(p);
            return NULL;
        }
        for (int32_t i = 1; i < nthreads; i++) {
            p->workers[i - 1] = (bn_worker){p, i};
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, &p->workers[i - 1]) != 0) {
                p->nthreads = i; /* stop the ones already started */
                bn_pool_destroy(p);
                return NULL;
            }
        }
    }
    return p;
}

void bn_pool_destroy(bn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int32_t i = 1; i < p->nthreads; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p->workers);
    free(p);
}

int32_t bn_pool_threads(const bn_pool *p) { return p ? p->nthreads : 1; }

int32_t bn_pool_claim(int32_t *counter, int32_t n) { return __atomic_fetch_add(counter, n, __ATOMIC_RELAXED); }

void bn_pool_run_n(bn_pool *p, bn_task_fn fn, void *ctx, int32_t nth) {
    if (!p || p->nthreads == 1 || nth <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    if (nth > p->nthreads) nth = p->nthreads;
    p->fn = fn;
    p->ctx = ctx;
    p->nth_active = nth;
    atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1); /* seq_cst: ordered before the sleepers read */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, nth);
    for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) spin_wait(i);
}

void bn_pool_run(bn_pool *p, bn_task_fn fn, void *ctx) {
    bn_pool_run_n(p, fn, ctx, p ? p->nthreads : 1);
}

typedef struct {
    bn_i2s_gemm_fn kernel;
    const bn_i2s_matrix *w;
    const int8_t *x;
    const float *x_scale;
    const int32_t *x_sum;
    int32_t n, ldy;
    float *y;
} matmul_job;

static void matmul_task(void *ctx, int32_t ith, int32_t nth) {
    const matmul_job *j = (const matmul_job *)ctx;
    const int32_t units = j->w->m_pad / BN_ROW_ALIGN;
    const int32_t begin = (int32_t)((int64_t)units * ith / nth) * BN_ROW_ALIGN;
    const int32_t end = (int32_t)((int64_t)units * (ith + 1) / nth) * BN_ROW_ALIGN;
    if (begin < end) j->kernel(j->w, j->x, j->x_scale, j->x_sum, j->n, j->y, j->ldy, begin, end);
}

void bn_i2s_matmul(bn_pool *pool, const bn_kernels *k, const bn_i2s_matrix *w, const int8_t *x,
                   const float *x_scale, const int32_t *x_sum, int32_t n, float *y, int32_t ldy) {
    matmul_job j = {n == 1 ? k->i2s_gemv : k->i2s_gemm, w, x, x_scale, x_sum, n, ldy, y};
    const int32_t units = w->m_pad / BN_ROW_ALIGN;
    const int32_t nth = bn_min_i32(bn_pool_threads(pool), units > 0 ? units : 1);
    bn_pool_run_n(pool, matmul_task, &j, nth);
}

/* Several matrices of one input (a layer's Q, K and V; gate and up) as one
 * dispatch: their 32-row units form one range split evenly over the threads,
 * so a decode step waits at one barrier instead of one per matrix, and the
 * small K and V matrices do not each leave a thread idle at their tails.
 * A row's result does not depend on where its thread's range starts (ranges
 * stay 32-row aligned, as the kernels require), so results are identical. */
typedef struct {
    bn_i2s_gemm_fn kernel;
    const bn_i2s_matrix *const *w;
    int32_t count;
    const int8_t *x;
    const float *x_scale;
    const int32_t *x_sum;
    int32_t n;
    float *const *y;
    const int32_t *ldy;
    int32_t units;
} matmul_many_job;

static void matmul_many_task(void *ctx, int32_t ith, int32_t nth) {
    const matmul_many_job *j = (const matmul_many_job *)ctx;
    const int32_t begin = (int32_t)((int64_t)j->units * ith / nth);
    const int32_t end = (int32_t)((int64_t)j->units * (ith + 1) / nth);
    int32_t first = 0; /* the matrices' units, concatenated: [first, first + units_i) is matrix i */
    for (int32_t i = 0; i < j->count && first < end; i++) {
        const bn_i2s_matrix *w = j->w[i];
        const int32_t units = w->m_pad / BN_ROW_ALIGN;
        const int32_t b = bn_max_i32(begin, first) - first, e = bn_min_i32(end, first + units) - first;
        if (b < e)
            j->kernel(w, j->x, j->x_scale, j->x_sum, j->n, j->y[i], j->ldy[i], b * BN_ROW_ALIGN, e * BN_ROW_ALIGN);
        first += units;
    }
}

void bn_i2s_matmul_many(bn_pool *pool, const bn_kernels *k, const bn_i2s_matrix *const *w, int32_t count,
                        const int8_t *x, const float *x_scale, const int32_t *x_sum, int32_t n,
                        float *const *y, const int32_t *ldy) {
    int32_t units = 0;
    for (int32_t i = 0; i < count; i++) units += w[i]->m_pad / BN_ROW_ALIGN;
    matmul_many_job j = {n == 1 ? k->i2s_gemv : k->i2s_gemm, w, count, x, x_scale, x_sum, n, y, ldy, units};
    const int32_t nth = bn_min_i32(bn_pool_threads(pool), units > 0 ? units : 1);
    bn_pool_run_n(pool, matmul_many_task, &j, nth);
}
