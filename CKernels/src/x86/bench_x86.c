/* Micro-benchmarks that give the kernel benchmark its ceilings: streaming
 * read bandwidth and the int8 multiply-accumulate peak of one core. */
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include "internal.h"

__attribute__((target("avx512f,avx512bw"))) static uint64_t read_avx512(const void *buf, size_t len) {
    const uint8_t *p = (const uint8_t *)buf;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= len; i += 256) { /* four independent accumulators keep loads in flight */
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

/* pmaddubsw + pmaddwd + paddd: the same work as one vpdpbusd, for CPUs without VNNI. */
__attribute__((target("avx512f,avx512bw"))) static uint64_t peak_avx512bw(uint64_t iters) {
    __m512i acc[8];
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1), ones = _mm512_set1_epi16(1);
    for (int i = 0; i < 8; i++) acc[i] = _mm512_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 8; i++)
            acc[i] = _mm512_add_epi32(acc[i], _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), ones));
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
    }
    __m512i s = acc[0];
    for (int i = 1; i < 8; i++) s = _mm512_add_epi32(s, acc[i]);
    volatile int32_t sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    return iters * 8 * 64;
}

__attribute__((target("avx2"))) static uint64_t peak_avx2(uint64_t iters) {
    __m256i acc[8];
    const __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
    for (int i = 0; i < 8; i++) acc[i] = _mm256_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 8; i++)
            acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
        __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
    }
    __m256i s = acc[0];
    for (int i = 1; i < 8; i++) s = _mm256_add_epi32(s, acc[i]);
    volatile int32_t sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return iters * 8 * 32;
}

uint64_t bn_bench_int8_peak_x86(bn_isa isa, uint64_t iters) {
    if (isa == BN_ISA_AVX512_VNNI) return peak_vnni(iters);
    if (isa == BN_ISA_AVX512) return peak_avx512bw(iters);
    return peak_avx2(iters);
}
#endif
