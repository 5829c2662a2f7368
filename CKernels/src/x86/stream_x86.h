/* Software prefetch shared by the x86 kernels. First, for the AVX-512 kernels
 * that stream a weight matrix once per call (the decoding GEMVs): per 128
 * bytes read, requests into L1 a little ahead and into L2 further ahead. (The
 * F16 head, which used it too, now reads 16-row panels as several streams and
 * requests each 1 KiB ahead itself: ops_avx512.c.) The AVX2 kernels keep
 * their own distances, tuned on AVX2-only hosts (see ops_avx2.c), where this
 * could not be measured.
 *
 * Why both: the L1 request alone (4 KiB ahead, what the kernels used first)
 * left the DRAM stream short of requests in flight on the 2-core AMX Xeon
 * host of this machine type: adding a request 16 or 32 KiB ahead into L2
 * read 13.6 → 15.5–15.8 GB/s (6912×2560), 13.1 → 15.3 (2560×6912) and
 * 14.3 → 16.4–16.5 (2560×2560) in the VNNI GEMV out of DRAM on one core
 * (best of 40 interleaved calls each); the L2 request alone gained about
 * half of that. On the AVX-512 EPYC (Zen 4) host the same requests slowed
 * those walks by 10–20%, its hardware prefetchers stream them faster alone,
 * so the kernels issue them only when bn_stream_prefetch() says so (by CPU
 * vendor; bn_dispatch.c has the figures). Prefetches are hints: past the end
 * of a buffer they never fault. */
#ifndef BN_STREAM_X86_H
#define BN_STREAM_X86_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

enum { BN_STREAM_L1_AHEAD = 4096, BN_STREAM_L2_AHEAD = 32768 };

/* p: the next 128 bytes the kernel reads. */
static inline __attribute__((always_inline)) void bn_stream_prefetch128(const void *p) {
    const char *c = (const char *)p;
    _mm_prefetch(c + BN_STREAM_L1_AHEAD, _MM_HINT_T0);
    _mm_prefetch(c + BN_STREAM_L1_AHEAD + 64, _MM_HINT_T0);
    _mm_prefetch(c + BN_STREAM_L2_AHEAD, _MM_HINT_T1);
    _mm_prefetch(c + BN_STREAM_L2_AHEAD + 64, _MM_HINT_T1);
}

/* Second, attention's KV cache (ops_avx2.c, ops_avx512.c): requests row r of one kv
 * head's "keys, then values" stream into L2 (r < T: key r, r < 2T: value
 * r - T, past that nothing); elements are f32, or halves when `half`; hd
 * elements per row at `stride` elements from row to row, the head's first at
 * `off`. Each attention call starts cold on a kv head's block of the cache
 * (out of L3 at depth), which the hardware prefetchers neither start early on
 * nor run far enough ahead of: with the first BN_ATTN_AHEAD_ROWS rows
 * requested up front, then the keys that many rows ahead and the values'
 * first rows while the last scores are computed, 8 rows × 30 layers × 5 kv
 * heads of a 2B4T-shaped cache at 346 positions (425 MB of f32 keys and
 * values) took 26–28 instead of 48–50 ms on one Zen 4 core and 15–20 instead
 * of 27–32 ms on two (2,000 positions: 135 vs 293 ms on one core; 64: 7.4 vs
 * 10.9 ms); the AVX2 kernel 47 → 35 and 25 → 20 ms. Into L1, 16 rows ahead
 * (the old requests), or whole value rows on the first column pass were slower. */
enum { BN_ATTN_AHEAD_ROWS = 48 };

static inline __attribute__((always_inline)) void bn_kv_request(const void *k, const void *v, size_t off, size_t stride,
                                                              int32_t r, int32_t T, int32_t hd, int half) {
    if (r >= 2 * T) return;
    const size_t elem = half ? 2 : 4;
    const char *row = (const char *)(r < T ? k : v) + ((size_t)(r < T ? r : r - T) * stride + off) * elem;
    for (size_t b = 0; b < (size_t)hd * elem; b += 64) _mm_prefetch(row + b, _MM_HINT_T1);
}

#endif
