/* Software prefetch for the AVX-512 kernels that stream a weight matrix once
 * per call (the decoding GEMVs, the F16 head): per 128 bytes read, requests
 * into L1 a little ahead and into L2 further ahead. The AVX2 kernels keep
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

enum { BN_STREAM_L1_AHEAD = 4096, BN_STREAM_L2_AHEAD = 32768 };

/* p: the next 128 bytes the kernel reads. */
static inline __attribute__((always_inline)) void bn_stream_prefetch128(const void *p) {
    const char *c = (const char *)p;
    _mm_prefetch(c + BN_STREAM_L1_AHEAD, _MM_HINT_T0);
    _mm_prefetch(c + BN_STREAM_L1_AHEAD + 64, _MM_HINT_T0);
    _mm_prefetch(c + BN_STREAM_L2_AHEAD, _MM_HINT_T1);
    _mm_prefetch(c + BN_STREAM_L2_AHEAD + 64, _MM_HINT_T1);
}

#endif
