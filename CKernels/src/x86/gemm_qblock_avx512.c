/* AVX-512 VNNI level of the block-head kernel: the AVX2 kernel's body
 * (gemm_qblock_x86.h) with the Q8_0 / Q4_0 products summed by vpdpbusd on
 * 256-bit registers (AVX512-VL), one instruction instead of pmaddubsw +
 * pmaddwd. Same exact integer sums, same float order: bit-identical to the
 * scalar spec. Its driver is the AVX2 level's (written on an AVX2-only host;
 * the older driver it replaced here read a Q6_K head 30% slower end to end
 * on an AVX-512 Xeon host: 2B4T, one thread, 12.3-13.0 -> 16.5-16.9 tok/s). */
#if defined(__x86_64__) || defined(_M_X64)
#define QB_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define QB_NAME bn_qblock_gemm_avx512vnni
#define QB_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "gemm_qblock_x86.h"
#endif
