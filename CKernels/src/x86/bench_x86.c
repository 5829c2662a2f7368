/* Micro-benchmarks that give the kernel benchmark its ceilings: streaming
 * read bandwidth and the int8 multiply-accumulate peak of one core. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "internal.h"
#include "stream_x86.h"
#include "amx_x86.h"

/* With the same software prefetches as the AVX-512 streaming kernels
 * (stream_x86.h): without them this probe read ~10% less than those kernels
 * stream on the 2-core AMX host, and a roofline must be what the hardware
 * gives, not what a plain loop gets. */
__attribute__((target("avx512f,avx512bw"))) static uint64_t read_avx512(const void *buf, size_t len) {
    const uint8_t *p = (const uint8_t *)buf;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= len; i += 256) { /* four independent accumulators keep loads in flight */
        bn_stream_prefetch128(p + i);
        bn_stream_prefetch128(p + i + 128);
        a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
        a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
    }
    const __m512i a = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(a);
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const void *buf, size_t len) {
    const uint8_t *p = (const uint8_t *)buf;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= len; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    const __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}

uint64_t bn_bench_read_x86(bn_isa isa, const void *buf, size_t len) {
    return isa >= BN_ISA_AVX512 ? read_avx512(buf, len) : read_avx2(buf, len);
}

/* 16 independent chains hide the instruction latency, so the loop runs at
 * the throughput limit. Each vpdpbusd zmm is 64 multiply-adds. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static uint64_t peak_vnni(uint64_t iters) {
    __m512i acc[16];
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]),
                         "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]));
    }
    __m512i s = acc[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_epi32(s, acc[i]);
    volatile int32_t sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    return iters * 16 * 64;
}

/* Without VNNI the fastest int8 multiply-accumulate is pmaddubsw with the
 * int16 products summed by paddw: that is the inner loop of the ternary
 * kernels (gemm_i2s_avx2.c), whose codes ≤ 3 keep int16 sums exact for many
 * steps, so one pmaddwd widening is amortized over a whole chunk run. Each
 * pmaddubsw is one multiply-add per byte lane.
 *
 * Written in asm on purpose: with constant operands, the intrinsic version
 * let the compiler hoist pmaddubsw out of the loop (its inputs never change),
 * so the probe timed only the adds and overstated the peak 2-4x. Eight
 * accumulators hide paddw's latency; every pmaddubsw is issued each pass. */
#define BN_PEAK_BODY(acc)                                                                      \
    "vpmaddubsw %[b], %[a], %[t0]\n\t"                                                         \
    "vpaddw %[t0], %[" #acc "], %[" #acc "]\n\t"

__attribute__((target("avx512f,avx512bw"))) static uint64_t peak_avx512bw(uint64_t iters) {
    __m512i c0 = _mm512_set1_epi16(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, t0;
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
    for (uint64_t it = 0; it < iters; it++)
        __asm__ volatile(BN_PEAK_BODY(c0) BN_PEAK_BODY(c1) BN_PEAK_BODY(c2) BN_PEAK_BODY(c3)
                         BN_PEAK_BODY(c4) BN_PEAK_BODY(c5) BN_PEAK_BODY(c6) BN_PEAK_BODY(c7)
                         : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3), [c4] "+v"(c4),
                           [c5] "+v"(c5), [c6] "+v"(c6), [c7] "+v"(c7), [t0] "=&v"(t0)
                         : [a] "v"(a), [b] "v"(b));
    __m512i s = _mm512_add_epi16(_mm512_add_epi16(_mm512_add_epi16(c0, c1), _mm512_add_epi16(c2, c3)),
                                 _mm512_add_epi16(_mm512_add_epi16(c4, c5), _mm512_add_epi16(c6, c7)));
    volatile int32_t sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    return iters * 8 * 64;
}

__attribute__((target("avx2"))) static uint64_t peak_avx2(uint64_t iters) {
    __m256i c0 = _mm256_set1_epi16(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, t0;
    const __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(1);
    for (uint64_t it = 0; it < iters; it++)
        __asm__ volatile(BN_PEAK_BODY(c0) BN_PEAK_BODY(c1) BN_PEAK_BODY(c2) BN_PEAK_BODY(c3)
                         BN_PEAK_BODY(c4) BN_PEAK_BODY(c5) BN_PEAK_BODY(c6) BN_PEAK_BODY(c7)
                         : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4),
                           [c5] "+x"(c5), [c6] "+x"(c6), [c7] "+x"(c7), [t0] "=&x"(t0)
                         : [a] "x"(a), [b] "x"(b));
    __m256i s = _mm256_add_epi16(_mm256_add_epi16(_mm256_add_epi16(c0, c1), _mm256_add_epi16(c2, c3)),
                                 _mm256_add_epi16(_mm256_add_epi16(c4, c5), _mm256_add_epi16(c6, c7)));
    volatile int32_t sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return iters * 8 * 32;
}
#undef BN_PEAK_BODY

/* Four TDPBSUDs per pass into four accumulator tiles from two A and two B
 * tiles: the 2×2 register blocking of gemm_i2s_amx.c, without its unpacking,
 * so this is the tile unit's own rate. Each TDPBSUD is 16·16·64 multiply-adds. */
__attribute__((target("amx-tile,amx-int8"))) static uint64_t peak_amx(uint64_t iters) {
    _Alignas(64) static const int8_t operand[16 * 64] = {1}; /* values do not change the rate */
    bn_amx_configure(16, 16);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, operand, 64);
    _tile_loadd(5, operand, 64);
    _tile_loadd(6, operand, 64);
    _tile_loadd(7, operand, 64);
    for (uint64_t it = 0; it < iters; it++) {
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(1, 4, 7);
        _tile_dpbsud(2, 5, 6);
        _tile_dpbsud(3, 5, 7);
    }
    _Alignas(64) int32_t out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    volatile int32_t sink = out[0];
    (void)sink;
    return iters * 4 * 16 * 16 * 64;
}

/* f32 FMA rate: 12 chains cover a 4-cycle latency at up to 3 FMAs per cycle;
 * the empty asm keeps the compiler from folding the constant operands. */
#define BN_FMA_PEAK(name, target_, vec, set1, fma, lanes, cons)                                       \
    __attribute__((target(target_))) static uint64_t name(uint64_t iters) {                           \
        vec acc[12];                                                                                  \
        vec a = set1(1.0f), b = set1(1e-9f);                                                          \
        for (int i = 0; i < 12; i++) acc[i] = set1((float)i);                                         \
        for (uint64_t it = 0; it < iters; it++) {                                                     \
            __asm__ volatile("" : "+" cons(a), "+" cons(b));                                          \
            for (int i = 0; i < 12; i++) acc[i] = fma(a, b, acc[i]);                                  \
        }                                                                                             \
        volatile float sink = 0;                                                                      \
        for (int i = 0; i < 12; i++) {                                                                \
            float t[lanes];                                                                           \
            memcpy(t, &acc[i], sizeof t);                                                             \
            sink += t[0];                                                                             \
        }                                                                                             \
        (void)sink;                                                                                   \
        return iters * 12 * lanes;                                                                    \
    }
BN_FMA_PEAK(fma_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16, "v")
BN_FMA_PEAK(fma_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8, "x")
#undef BN_FMA_PEAK

uint64_t bn_bench_f32_peak_x86(bn_isa isa, uint64_t iters) {
    return isa >= BN_ISA_AVX512 ? fma_avx512(iters) : fma_avx2(iters);
}

uint64_t bn_bench_int8_peak_x86(bn_isa isa, uint64_t iters) {
    if (isa == BN_ISA_AMX) return peak_amx(iters);
    if (isa == BN_ISA_AVX512_VNNI) return peak_vnni(iters);
    if (isa == BN_ISA_AVX512) return peak_avx512bw(iters);
    return peak_avx2(iters);
}
#endif
