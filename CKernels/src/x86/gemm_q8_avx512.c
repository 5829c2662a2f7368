/* AVX-512 VNNI twin of bn_q8_gemm_scalar (src/scalar/gemm_q8_scalar.c).
 * vpdpbusd multiplies unsigned by signed bytes, so activations enter as
 * u = q + 128 and the row sums remove the offset: Σ w·q = Σ w·u − 128·Σ w. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define BN_INLINE static inline __attribute__((always_inline))

/* TILE_T activation rows per register tile. Their unsigned activations
 * (u = max(q, -127) + 128) are made once per call into a stack buffer when all
 * n rows fit U_BYTES (a decode step of up to 25 sequences at k = 2560), else
 * once per KBLOCK columns per row group into a TILE_T·KBLOCK buffer: the inner
 * loop is then a broadcast load and a vpdpbusd per chunk and row. Making them
 * per row group cost as much as the dot products it fed at 8 rows: the
 * 128256 × 2560 head of an 8-sequence step took 26.5 ms on one core of the
 * AVX-512 EPYC host, 42% of its vpdpbusd peak. */
enum { TILE_T = 8, KBLOCK = 512, U_BYTES = 65536 };
/* With two or more activation rows the tile is vpdpbusd-bound and the weight
 * stream falls behind unless requested ahead: the 8-row head above went from
 * 26–27 to 18.3–18.9 ms with a request 1–4 KiB ahead into L1 (16 KiB: 20.9),
 * 16 rows 40–41 → 32–33 ms. One row streams faster without it on AMD (10.2 vs
 * 10.9 ms), so there it follows bn_stream_prefetch like the other streaming
 * kernels. From 5 rows on, a request 16 KiB ahead into L2 does better still
 * (same host type, later sitting, best of 6, head 128256 × 2560): 8 rows
 * 21.9 → 14.9 ms on one core and 15.7 → 11.8 ms on two, 16 rows 34.9 → 26.2
 * and 20.9 → 15.7 ms, 5–7 rows 18–34% faster; at 2–4 rows the L1 request
 * stays ahead (4 rows, one core: 13.9 vs 16.5 ms). */
enum { PREFETCH = 4096, PREFETCH_L2 = 16384, L2_ROWS = 5 };
enum { PF_NONE, PF_L1, PF_L2 }; /* dot_chunks' prefetch modes */

BN_INLINE BN_VNNI __m512i bcast32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

BN_INLINE BN_VNNI void store16(float *y, __m512i acc, const bn_q8_matrix *w, int32_t row0, int32_t end, float xs) {
    const int32_t valid = end - row0;
    if (valid <= 0) return;
    const __mmask16 m = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
    const __m512i sum = _mm512_loadu_si512(w->row_sum + row0); /* row_sum has m_pad entries */
    const __m512i dot = _mm512_sub_epi32(acc, _mm512_slli_epi32(sum, 7));
    const __m512 scale = _mm512_div_ps(_mm512_maskz_loadu_ps(m, w->row_scale + row0), _mm512_set1_ps(xs));
    _mm512_mask_storeu_ps(y + row0, m, _mm512_mul_ps(_mm512_cvtepi32_ps(dot), scale));
}

/* n rows of int8 activations (row stride ldx) → unsigned, clamped to [-127, 127]
 * (the spec) then q + 128: u (n, ldu), cols a multiple of 32 */
BN_INLINE BN_VNNI void make_unsigned(const int8_t *x, size_t ldx, int n, int32_t cols, uint8_t *u, size_t ldu) {
    const __m256i lo = _mm256_set1_epi8(-127), flip = _mm256_set1_epi8((char)0x80);
    for (int t = 0; t < n; t++)
        for (int32_t i = 0; i < cols; i += 32) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x + (size_t)t * ldx + i));
            _mm256_store_si256((__m256i *)(u + (size_t)t * ldu + i), _mm256_xor_si256(_mm256_max_epi8(q, lo), flip));
        }
}

/* acc/acc2[t] += chunks [0, chunks) of one row group (p) against u row t (stride ldu) */
BN_INLINE BN_VNNI void dot_chunks(const int8_t *p, int32_t chunks, const uint8_t *u, size_t ldu, const int T,
                                  __m512i *acc, __m512i *acc2, int prefetch) {
    for (int32_t c = 0; c < chunks; c += 2) { /* a multiple of 8: chunks come in pairs */
        if (prefetch == PF_L2) {
            _mm_prefetch((const char *)(p + (size_t)c * 64 + PREFETCH_L2), _MM_HINT_T1);
            _mm_prefetch((const char *)(p + (size_t)c * 64 + PREFETCH_L2 + 64), _MM_HINT_T1);
        } else if (prefetch == PF_L1) {
            _mm_prefetch((const char *)(p + (size_t)c * 64 + PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)(p + (size_t)c * 64 + PREFETCH + 64), _MM_HINT_T0);
        }
        const __m512i w0 = _mm512_loadu_si512(p + (size_t)c * 64), w1 = _mm512_loadu_si512(p + (size_t)c * 64 + 64);
#pragma clang loop unroll(full)
        for (int t = 0; t < T; t++) {
            const uint8_t *ut = u + (size_t)t * ldu + 4 * c;
            acc[t] = _mm512_dpbusd_epi32(acc[t], bcast32(ut), w0);
            acc2[t] = _mm512_dpbusd_epi32(acc2[t], bcast32(ut + 4), w1);
        }
    }
}

/* Row group g × activation rows t0 .. t0+T. once: ub holds all n rows made
 * unsigned already (n, k_pad); else they are made here KBLOCK columns at a time.
 * (once is a constant at every call, so each form compiles without the other.) */
BN_INLINE BN_VNNI void tile(const bn_q8_matrix *w, const int8_t *x, const uint8_t *ub, const float *x_scale, float *y,
                            int32_t ldy, int32_t g, int32_t t0, const int T, int32_t end, int prefetch, const int once) {
    const int32_t k_pad = w->k_pad;
    const int8_t *p = w->data + (size_t)g * (size_t)k_pad * 16;
    __m512i acc[TILE_T], acc2[TILE_T];
    for (int t = 0; t < T; t++) acc[t] = acc2[t] = _mm512_setzero_si512();
    if (once) {
        dot_chunks(p, k_pad / 4, ub + (size_t)t0 * (size_t)k_pad, (size_t)k_pad, T, acc, acc2, prefetch);
    } else {
        _Alignas(64) uint8_t u[TILE_T * KBLOCK]; /* (T, KBLOCK) */
        for (int32_t kb = 0; kb < k_pad; kb += KBLOCK) {
            const int32_t kn = bn_min_i32(KBLOCK, k_pad - kb); /* a multiple of 32, as k_pad is */
            make_unsigned(x + (size_t)t0 * (size_t)k_pad + kb, (size_t)k_pad, T, kn, u, KBLOCK);
            dot_chunks(p + (size_t)kb * 16, kn / 4, u, KBLOCK, T, acc, acc2, prefetch); /* from chunk kb/4 */
        }
    }
    for (int t = 0; t < T; t++)
        store16(y + (size_t)(t0 + t) * (size_t)ldy, _mm512_add_epi32(acc[t], acc2[t]), w, g * 16, end, x_scale[t0 + t]);
}

/* Every row group of [row_begin, end) × every tile of the n activation rows. */
BN_INLINE BN_VNNI void tiles(const bn_q8_matrix *w, const int8_t *x, const uint8_t *ub, const float *x_scale, int32_t n,
                             float *y, int32_t ldy, int32_t row_begin, int32_t end, int prefetch, const int once) {
    const int32_t ntiles = (n + TILE_T - 1) / TILE_T; /* near-equal tiles: 9 rows are 5 + 4, not 8 + 1 */
    for (int32_t g = row_begin / 16; g * 16 < end; g++)
        for (int32_t i = 0, t0 = 0; i < ntiles; i++) {
            const int32_t T = (n - t0) / (ntiles - i) + ((n - t0) % (ntiles - i) != 0);
            switch (T) {
#define BN_TILE(c) \
    case c: tile(w, x, ub, x_scale, y, ldy, g, t0, c, end, prefetch, once); break;
            BN_TILE(8) BN_TILE(7) BN_TILE(6) BN_TILE(5) BN_TILE(4) BN_TILE(3) BN_TILE(2)
#undef BN_TILE
            default: tile(w, x, ub, x_scale, y, ldy, g, t0, 1, end, prefetch, once); break;
            }
            t0 += T;
        }
}

// w: (m_pad, k_pad) Q8_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
BN_VNNI void bn_q8_gemm_avx512vnni(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n,
                                   float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    const int prefetch = n >= L2_ROWS ? PF_L2 : n > 1 || bn_stream_prefetch() ? PF_L1 : PF_NONE;
    if ((size_t)n * (size_t)w->k_pad <= U_BYTES) {
        _Alignas(64) uint8_t ub[U_BYTES]; /* (n, k_pad) unsigned activations, made once */
        make_unsigned(x, (size_t)w->k_pad, n, w->k_pad, ub, (size_t)w->k_pad);
        tiles(w, x, ub, x_scale, n, y, ldy, row_begin, end, prefetch, 1);
    } else {
        tiles(w, x, NULL, x_scale, n, y, ldy, row_begin, end, prefetch, 0);
    }
}
#endif
