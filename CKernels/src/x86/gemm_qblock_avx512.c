/* AVX-512 VNNI level of the block-head kernel: the AVX2 kernel's body
 * (gemm_qblock_x86.h) with the Q8_0 / Q4_0 products summed by vpdpbusd on
 * 256-bit registers (AVX512-VL), one instruction instead of pmaddubsw +
 * pmaddwd. Same exact integer sums, same float order: bit-identical to the
 * scalar spec. Its driver is the AVX2 level's (written on an AVX2-only host;
 * the older driver it replaced here read a Q6_K head 30% slower end to end
 * on an AVX-512 Xeon host: 2B4T, one thread, 12.3-13.0 -> 16.5-16.9 tok/s).
 * Where the CPU also has GFNI (Ice Lake and later, Zen 4), the level's entry
 * runs the GFNI build of the same body (gemm_qblock_gfni.c), which differs in
 * the Q6_K block only; bn_set_qblock_gfni lets tests run both. */
#if defined(__x86_64__) || defined(_M_X64)
#include "internal.h"

#define QB_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define QB_NAME bn_qblock_gemm_avx512vnni_plain
#define QB_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "gemm_qblock_x86.h"

void bn_qblock_gemm_avx512vnni(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                               int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end) {
    (bn_qblock_gfni() ? bn_qblock_gemm_avx512gfni : bn_qblock_gemm_avx512vnni_plain)(w, x, x_scale, x_bsum, n, y, ldy,
                                                                                      row_begin, row_end);
}
#endif
