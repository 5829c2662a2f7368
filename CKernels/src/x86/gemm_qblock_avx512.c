/* AVX-512 VNNI level of the block-head kernel: the AVX2 kernel's body
 * (gemm_qblock_x86.h) with the Q8_0 / Q4_0 products summed by vpdpbusd on
 * 256-bit registers (AVX512-VL), one instruction instead of pmaddubsw +
 * pmaddwd. Same exact integer sums, same float order: bit-identical to the
 * scalar spec. Compiled here, never run: this machine has no AVX-512. */
#if defined(__x86_64__) || defined(_M_X64)
#define QB_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define QB_NAME bn_qblock_gemm_avx512vnni
#define QB_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "gemm_qblock_x86.h"
#endif
