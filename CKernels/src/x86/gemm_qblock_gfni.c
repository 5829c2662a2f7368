/* The AVX-512 VNNI block-head kernel built with GFNI: the same body
 * (gemm_qblock_x86.h) with the Q6_K block decoded by gf2p8affineqb on 512-bit
 * registers and its products packed two quarters per vpdpwssd (blk_q6_k_gfni).
 * Same exact integer sums, same float order: bit-identical to the scalar
 * spec. Reached through bn_qblock_gemm_avx512vnni when the CPU has GFNI. */
#if defined(__x86_64__) || defined(_M_X64)
#define QB_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni,gfni")))
#define QB_NAME bn_qblock_gemm_avx512gfni
#define QB_GFNI 1
#define QB_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "gemm_qblock_x86.h"
#endif
