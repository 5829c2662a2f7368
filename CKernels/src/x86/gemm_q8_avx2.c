/* AVX2 twin of bn_q8_gemm_scalar (src/scalar/gemm_q8_scalar.c), also used by
 * AVX-512 CPUs without VNNI. pmaddubsw needs one unsigned operand: |w| with
 * w's sign moved onto q keeps every pair ≤ 2·127·127 = 32258 (no saturation,
 * which is why activations are clamped to [-127, 127]). */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BN_INLINE static inline __attribute__((always_inline))

BN_INLINE BN_AVX2 __m256i bcast_q(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_max_epi8(_mm256_set1_epi32(v), _mm256_set1_epi8(-127));
}

/* Software prefetch 1 KiB ahead: on a Zen 3 EPYC (one core, 128256 × 2560
 * head out of cache, 7 interleaved runs) 1 KiB streamed at 17.1-18.2 GB/s,
 * 4 KiB at 13.4-14.1, 2 KiB at 14.3-15.3. Each 64-byte line here holds only 4
 * columns of 16 rows, so lines are consumed 4x faster than I2_R16's, which
 * is best at 4 KiB on the same host (gemm_i2s_avx2.c). */
enum { TILE_T = 4, PREFETCH = 1024 };

/* y[row0 .. row0+8) ∩ [.., end) = (float)dot · (row_scale[r] / xs), the scalar
 * expression lane by lane (vdivps and vmulps round like the scalar ops). */
BN_INLINE BN_AVX2 void store8(float *y, __m256i dot, const float *row_scale, int32_t row0, int32_t end, float xs) {
    const int32_t valid = end - row0;
    if (valid <= 0) return;
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 scale = _mm256_div_ps(_mm256_maskload_ps(row_scale + row0, mask), _mm256_set1_ps(xs));
    _mm256_maskstore_ps(y + row0, mask, _mm256_mul_ps(_mm256_cvtepi32_ps(dot), scale));
}

/* One 16-row group × T activation rows. |w| of a chunk is computed once and
 * serves all T rows; each row's clamped broadcast word serves both 8-row
 * halves. The pmaddubsw pairs (≤ 32258) go straight to int32: two of them
 * could overflow int16. */
BN_INLINE BN_AVX2 void tile(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, float *y, int32_t ldy,
                            int32_t g, int32_t t0, const int T, int32_t end) {
    const int32_t k_pad = w->k_pad, chunks = k_pad / 4;
    const int8_t *p = w->data + (size_t)g * (size_t)k_pad * 16;
    const int8_t *xt = x + (size_t)t0 * (size_t)k_pad;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i lo[TILE_T], hi[TILE_T];
    for (int t = 0; t < T; t++) lo[t] = hi[t] = _mm256_setzero_si256();
    for (int32_t c = 0; c < chunks; c++) {
        _mm_prefetch((const char *)(p + (size_t)c * 64 + PREFETCH), _MM_HINT_T0);
        const __m256i wl = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64));
        const __m256i wh = _mm256_loadu_si256((const __m256i *)(p + (size_t)c * 64 + 32));
        const __m256i al = _mm256_abs_epi8(wl), ah = _mm256_abs_epi8(wh); /* = sign(w, w): |w| ≤ 127 */
#pragma clang loop unroll(full)
        for (int t = 0; t < T; t++) {
            const __m256i q = bcast_q(xt + (size_t)t * (size_t)k_pad + 4 * c);
            lo[t] = _mm256_add_epi32(lo[t], _mm256_madd_epi16(_mm256_maddubs_epi16(al, _mm256_sign_epi8(q, wl)), ones));
            hi[t] = _mm256_add_epi32(hi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(ah, _mm256_sign_epi8(q, wh)), ones));
        }
    }
    for (int t = 0; t < T; t++) {
        float *yt = y + (size_t)(t0 + t) * (size_t)ldy;
        store8(yt, lo[t], w->row_scale, g * 16, end, x_scale[t0 + t]);
        store8(yt, hi[t], w->row_scale, g * 16 + 8, end, x_scale[t0 + t]);
    }
}

// w: (m_pad, k_pad) Q8_R16, x: (n, k_pad) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
BN_AVX2 void bn_q8_gemm_avx2(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                             int32_t ldy, int32_t row_begin, int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m);
    const int32_t ntiles = (n + TILE_T - 1) / TILE_T; /* near-equal tiles, as in gemm_i2s_avx2.c */
    for (int32_t g = row_begin / 16; g * 16 < end; g++)
        for (int32_t i = 0, t0 = 0; i < ntiles; i++) {
            const int32_t T = (n - t0) / (ntiles - i) + ((n - t0) % (ntiles - i) != 0);
            switch (T) {
            case 4: tile(w, x, x_scale, y, ldy, g, t0, 4, end); break;
            case 3: tile(w, x, x_scale, y, ldy, g, t0, 3, end); break;
            case 2: tile(w, x, x_scale, y, ldy, g, t0, 2, end); break;
            default: tile(w, x, x_scale, y, ldy, g, t0, 1, end); break;
            }
            t0 += T;
        }
}
#endif
