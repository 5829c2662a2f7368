/* AVX2 twin of bn_qblock_gemm_scalar (src/scalar/gemm_qblock_scalar.c), also
 * used by the AVX-512 levels. Eight weight rows at a time: each row's block
 * gives a vector of int32 partial sums, a horizontal-add tree turns the eight
 * vectors into one vector of eight exact block sums (integer adds: order does
 * not matter), and the float update then runs lane by lane in the scalar
 * order (mul, mul, add; no fma), so every lane equals the scalar result bit
 * for bit. The eight rows' blocks are re-read from L1/L2 for each activation
 * row, so a batch streams the head from memory once. The driver prefetches
 * the next tile and has faster Q6_K / Q4_0 paths (gemm_qblock_x86.h). */
#if defined(__x86_64__) || defined(_M_X64)
#define QB_TARGET __attribute__((target("avx2,fma,f16c")))
#define QB_NAME bn_qblock_gemm_avx2
#define QB_DOT_U8S8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "gemm_qblock_x86.h"
#endif
