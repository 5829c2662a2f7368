/* The x86 block-head kernel, included by gemm_qblock_avx2.c and
 * gemm_qblock_avx512.c with QB_TARGET (function attribute), QB_NAME and
 * QB_DOT_U8S8(u, s) (Σ of each 4 adjacent u8·s8 products into int32 lanes:
 * pmaddubsw + pmaddwd, or vpdpbusd). Description in gemm_qblock_avx2.c. */
#include <immintrin.h>
#include <string.h>
#include "internal.h"

#define BN_INLINE static inline __attribute__((always_inline))
enum { TILE_R = 8 };

/* Σ over the 8 lanes of each v[i] → lane i (exact int32 adds). */
BN_INLINE QB_TARGET __m256i hsum8(const __m256i v[TILE_R]) {
    const __m256i s01 = _mm256_hadd_epi32(v[0], v[1]), s23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i s45 = _mm256_hadd_epi32(v[4], v[5]), s67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i a = _mm256_hadd_epi32(s01, s23), b = _mm256_hadd_epi32(s45, s67);
    /* a = [r0 r1 r2 r3 (low halves) | r0 r1 r2 r3 (high halves)], b likewise for r4..r7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* Σ_i w_i·q_i over 32 signed bytes (w ∈ [-128, 127], q ∈ [-127, 127]): |w|
 * times q with w's sign, pairs ≤ 2·128·127 = 32512 (no pmaddubsw saturation). */
BN_INLINE QB_TARGET __m256i dot_s8(__m256i w, __m256i q) {
    return QB_DOT_U8S8(_mm256_abs_epi8(w), _mm256_sign_epi8(q, w));
}

/* One Q8_0 block (34 bytes) · 32 activations. */
BN_INLINE QB_TARGET __m256i blk_q8_0(const uint8_t *blk, const int8_t *q) {
    return dot_s8(_mm256_loadu_si256((const __m256i *)(blk + 2)), _mm256_loadu_si256((const __m256i *)q));
}

/* One Q4_0 block (18 bytes): low nibbles are elements 0..15, high 16..31, value nibble - 8. */
BN_INLINE QB_TARGET __m256i blk_q4_0(const uint8_t *blk, const int8_t *q) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + 2));
    const __m128i m = _mm_set1_epi8(0xF);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
    return dot_s8(_mm256_sub_epi8(u, _mm256_set1_epi8(8)), _mm256_loadu_si256((const __m256i *)q));
}

/* One Q4_K block (144 bytes): Σ_j sc_j·Σ q4·q as int32 lanes, and in *mins the lanes of
 * Σ_j mn_j·Σ_32 q (from the activation's 32-sums as int16, |Σ| ≤ 32·127, shared by the rows).
 * The 12 scale bytes a = s[0..3], b = s[4..7], c = s[8..11] decode as whole words: per byte,
 * sc[0..3] = a & 63, sc[4..7] = (c & 15) | (a >> 6) << 4, mn[0..3] = b & 63,
 * mn[4..7] = (c >> 4) | (b >> 6) << 4. Nibble pairs ≤ 2·15·127 = 3810, times sc ≤ 63. */
BN_INLINE QB_TARGET __m256i blk_q4_k(const uint8_t *blk, const int8_t *q, __m128i sum32, __m256i *mins) {
    const __m256i m = _mm256_set1_epi8(0xF);
    uint32_t a, b, c;
    memcpy(&a, blk + 4, 4);
    memcpy(&b, blk + 8, 4);
    memcpy(&c, blk + 12, 4);
    const uint64_t sc = (uint64_t)(a & 0x3f3f3f3fu) | (uint64_t)((c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u)) << 32;
    const uint64_t mn = (uint64_t)(b & 0x3f3f3f3fu) | (uint64_t)(((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u)) << 32;
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    *mins = _mm256_castsi128_si256(_mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)), sum32));
    *mins = _mm256_inserti128_si256(*mins, _mm_setzero_si128(), 1);
    __m256i acc = _mm256_setzero_si256();
    for (int jj = 0; jj < 4; jj++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * jj));
        const __m256i lo = _mm256_and_si256(raw, m), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m);
        const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q + 64 * jj)));
        const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q + 64 * jj + 32)));
        /* int16 sub-scale 2jj (bytes 4jj, 4jj+1) and 2jj+1 broadcast to every lane */
        const __m256i s0 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((4 * jj) | (4 * jj + 1) << 8)));
        const __m256i s1 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((4 * jj + 2) | (4 * jj + 3) << 8)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, s0));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, s1));
    }
    return acc;
}

/* One Q6_K block (210 bytes): Σ_j sc_j·Σ_16 (q6 - 32)·q as int32 lanes (their sum is the
 * block's integer dot). u = q6 ∈ [0, 63] goes through pmaddubsw (pairs ≤ 2·63·127 = 16002),
 * then pmaddwd by the sub-scales (|sc| ≤ 128); the -32 is folded in as 32·Σ_j sc_j·bsum_j,
 * subtracted lane-wise (one pmaddwd of the scales with the activation's 16-sums, which fit
 * int16: |bsum| ≤ 16·127). Half h, quarter c of a block is the 32 elements 128h + 32c..:
 * low bits from ql[64h + 32(c&1) ..] (low nibble for c < 2), high bits from qh[32h ..] >> 2c.
 * bsum16: the block's 16 activation sums as int16. */
BN_INLINE QB_TARGET __m256i blk_q6_k(const uint8_t *blk, const int8_t *q, __m256i bsum16) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(blk + 192));
    /* 32·Σ sc_j·bsum_j spread over the lanes */
    __m256i acc = _mm256_sub_epi32(_mm256_setzero_si256(),
                                   _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bsum16), 5));
    for (int h = 0; h < 2; h++) {
        /* sub-scales 8h .. 8h+7 as int16 in both 128-bit halves */
        const __m256i sch = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(blk + 192 + 8 * h))));
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
        __m256i u[4];
        u[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
        u[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
        u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
        u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
        for (int c = 0; c < 4; c++) {
            /* low half: sub-scale 2c of this half (elements 0..15), high half: 2c+1 (16..31) */
            const __m256i pick = _mm256_setr_epi8(
                (char)(4 * c), (char)(4 * c + 1), (char)(4 * c), (char)(4 * c + 1), (char)(4 * c), (char)(4 * c + 1),
                (char)(4 * c), (char)(4 * c + 1), (char)(4 * c), (char)(4 * c + 1), (char)(4 * c), (char)(4 * c + 1),
                (char)(4 * c), (char)(4 * c + 1), (char)(4 * c), (char)(4 * c + 1), (char)(4 * c + 2), (char)(4 * c + 3),
                (char)(4 * c + 2), (char)(4 * c + 3), (char)(4 * c + 2), (char)(4 * c + 3), (char)(4 * c + 2),
                (char)(4 * c + 3), (char)(4 * c + 2), (char)(4 * c + 3), (char)(4 * c + 2), (char)(4 * c + 3),
                (char)(4 * c + 2), (char)(4 * c + 3), (char)(4 * c + 2), (char)(4 * c + 3));
            const __m256i p = _mm256_maddubs_epi16(u[c], _mm256_loadu_si256((const __m256i *)(q + 128 * h + 32 * c)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sch, pick)));
        }
    }
    return acc;
}

/* The f16 at byte `at` of block b of each of the 8 rows, as f32 (exact). */
BN_INLINE QB_TARGET __m256 scales8(const uint8_t *const rows[TILE_R], size_t b_off, int at) {
    uint16_t h[TILE_R];
    for (int i = 0; i < TILE_R; i++) memcpy(&h[i], rows[i] + b_off + at, 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* The driver of both x86 levels: the same exact block sums and the same float update as the
 * scalar spec, with
 *  - a software prefetch of the next tile of rows into L2 (its bytes in address order, spread over
 *    this tile's work at the pace it is read, first activation row only): the eight rows of a tile are
 *    eight short streams the hardware prefetcher does not follow, and without it the Q6_K head
 *    read about a third of the bandwidth a plain read gets;
 *  - Q6_K blocks decoded with fewer operations (blk_q6_k_eo; with GFNI, blk_q6_k_gfni);
 *  - Q4_0 computed a tile at a time, two rows per register (tile_q4_0). */

#if defined(QB_GFNI)
/* vpermw indices for half h of a block: int16 w of the packed 4-sums (128-bit lane L = w / 8,
 * j = w % 8) takes sub-scale 8h + L for j < 4 and 8h + 4 + L for j ≥ 4 (see blk_q6_k_gfni) */
static const uint16_t qb_scale_idx[2][32] __attribute__((aligned(64))) = {
#define QB_LANE(h, L) 8 * (h) + (L), 8 * (h) + (L), 8 * (h) + (L), 8 * (h) + (L), \
                      8 * (h) + 4 + (L), 8 * (h) + 4 + (L), 8 * (h) + 4 + (L), 8 * (h) + 4 + (L)
    {QB_LANE(0, 0), QB_LANE(0, 1), QB_LANE(0, 2), QB_LANE(0, 3)},
    {QB_LANE(1, 0), QB_LANE(1, 1), QB_LANE(1, 2), QB_LANE(1, 3)}};
#undef QB_LANE

/* GF(2) affine matrices (gf2p8affineqb: output bit i = parity(matrix byte 7-i & input byte))
 * that move bit fields within each byte: qh bits 0-1, 2-3, 4-5 or 6-7 to bits 4-5 (clearing the
 * rest), and ql's high nibble to the low one. Each replaces a shift and an and, on a pipe the
 * shifts do not use; the matrix is per 64-bit lane, so one instruction moves a different field
 * in each 256-bit half. */
#define QB_GF_QH01 0x01020000LL
#define QB_GF_QH23 0x04080000LL
#define QB_GF_QH45 0x10200000LL
#define QB_GF_QH67 0x40800000LL
#define QB_GF_HI4 0x1020408000000000LL

/* One Q6_K block, GFNI + VNNI form on 512-bit registers (the same exact block sum as the form
 * below). Half h of a block is 128 weights: ql's 64 bytes [l0 | l1] hold quarters 0, 1 in their
 * low nibbles and 2, 3 in their high ones, qh's 32 bytes (read into both 256-bit halves) the 2-bit
 * pieces. u01 = [q0 | q1] = ql's low nibbles | one gf2p8affineqb of qh (bits 0-1 in the low half,
 * 2-3 in the high), u23 = [q2 | q3] likewise from ql's high nibbles and bits 4-5 / 6-7. vpdpbusd
 * gives 4-sums of u·q ≤ 4·63·127 = 32004, which fit int16, so the two 4-sum vectors pack
 * (vpackssdw, exact) into one, and one vpdpwssd applies the sub-scales that one vpermw lays out
 * (128-bit lane L of the pack: sub-block 8h + L's four sums, then 8h + 4 + L's). The -32 is
 * folded in as 32·Σ sc_j·bsum_j (bsum16: the activation's 16-sums as int16, in order).
 * Zen 4 core, 128256 × 2560 head: the same pipe work as the 256-bit form it replaced (29 → 33–36
 * GB/s cache-resident, one activation row, against the form below) in half the instructions,
 * which is what counts when the core is shared: 25 → 27–30 GB/s in the host's slower hours
 * (equal, 35, in its fast ones); 8 activation rows 3.3 → 3.8 GB/s. */
BN_INLINE QB_TARGET __m256i blk_q6_k_gfni(const uint8_t *blk, const int8_t *q, __m256i bsum16) {
    const __m512i m4 = _mm512_set1_epi8(0xF), zero = _mm512_setzero_si512();
    const __m512i g0123 = _mm512_inserti64x4(_mm512_set1_epi64(QB_GF_QH01), _mm256_set1_epi64x(QB_GF_QH23), 1);
    const __m512i g4567 = _mm512_inserti64x4(_mm512_set1_epi64(QB_GF_QH45), _mm256_set1_epi64x(QB_GF_QH67), 1);
    const __m512i ghi = _mm512_set1_epi64(QB_GF_HI4);
    const uint16_t(*idx)[32] = qb_scale_idx;
    __asm__("" : "+r"(idx)); /* opaque, as in the form below */
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 192)));
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsum16), 5);
    const __m512i sc = _mm512_castsi256_si512(sc16); /* vpermw reads int16 0..15 only */
    __m512i acc = zero;
    for (int h = 0; h < 2; h++) {
        const __m512i l = _mm512_loadu_si512(blk + 64 * h);
        const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h)));
        /* ternlog 0xEC: (a & c) | b */
        const __m512i u01 = _mm512_ternarylogic_epi32(l, _mm512_gf2p8affine_epi64_epi8(hb, g0123, 0), m4, 0xEC);
        const __m512i u23 = _mm512_or_si512(_mm512_gf2p8affine_epi64_epi8(l, ghi, 0), _mm512_gf2p8affine_epi64_epi8(hb, g4567, 0));
        const __m512i d0 = _mm512_dpbusd_epi32(zero, u01, _mm512_loadu_si512(q + 128 * h));
        const __m512i d1 = _mm512_dpbusd_epi32(zero, u23, _mm512_loadu_si512(q + 128 * h + 64));
        const __m512i s = _mm512_permutexvar_epi16(_mm512_load_si512(idx[h]), sc);
        acc = _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(d0, d1), s);
    }
    const __m256i a = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
    return _mm256_sub_epi32(a, corr);
}
#else
/* A Q6_K block's 16 sub-scales as int16 held even/odd, [sc0 sc2 .. sc14 | sc1 sc3 .. sc15], and
 * in *corr the 32·Σ sc_j·bsum_j blk_q6_k_eo subtracts (bsum16eo: the activation's
 * 16-sums as int16 in the same order; one pmaddwd). */
BN_INLINE QB_TARGET __m256i q6k_scales(const uint8_t *blk, __m256i bsum16eo, __m256i *corr) {
    const __m128i eo = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk + 192)), eo));
    *corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsum16eo), 5);
    return sc16;
}

/* pshufb controls picking int16 j of each 128-bit half into all of its lanes, j = 0..7 */
static const uint16_t qb_pick16[8][16] __attribute__((aligned(32))) = {
#define QB_PICK4(j) (2 * (j) | (2 * (j) + 1) << 8), (2 * (j) | (2 * (j) + 1) << 8), (2 * (j) | (2 * (j) + 1) << 8), \
                    (2 * (j) | (2 * (j) + 1) << 8)
#define QB_PICK(j) {QB_PICK4(j), QB_PICK4(j), QB_PICK4(j), QB_PICK4(j)}
    QB_PICK(0), QB_PICK(1), QB_PICK(2), QB_PICK(3), QB_PICK(4), QB_PICK(5), QB_PICK(6), QB_PICK(7)};
#undef QB_PICK
#undef QB_PICK4

/* One Q6_K block (210 bytes): Σ_j sc_j·Σ_16 (q6 - 32)·q as int32 lanes, as blk_q6_k but with
 * the sub-scales held even/odd, sc16 = [sc0 sc2 .. sc14 | sc1 sc3 .. sc15] as int16: quarter c
 * of half h (sub-block 8h + 2c in the low 128 bits, 8h + 2c + 1 in the high) takes int16 4h + c
 * of both halves, one pshufb. bsum16eo: the activation's 16-sums as int16 in the same even/odd
 * order, so one pmaddwd gives the 32·Σ sc_j·bsum_j to subtract. The 2-bit pieces of qh reach
 * bits 4..5 by one 16-bit shift each (left 4, left 2, none, right 2; the kept bits never cross
 * a byte) and an and with 0x30. u = q6 ∈ [0, 63]: pmaddubsw pairs ≤ 2·63·127 = 16002. */
BN_INLINE QB_TARGET __m256i blk_q6_k_eo(const uint8_t *blk, const int8_t *q, __m256i bsum16eo) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    const uint16_t(*pick)[16] = qb_pick16;
    __asm__("" : "+r"(pick)); /* opaque: clang would rewrite each pshufb as pshuflw + pshufd */
    __m256i corr;
    const __m256i sc16 = q6k_scales(blk, bsum16eo, &corr);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
        __m256i u[4];
        u[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
        u[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
        u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
        u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
        for (int c = 0; c < 4; c++) {
            const __m256i s = _mm256_shuffle_epi8(sc16, _mm256_load_si256((const __m256i *)pick[4 * h + c]));
            const __m256i p = _mm256_maddubs_epi16(u[c], _mm256_loadu_si256((const __m256i *)(q + 128 * h + 32 * c)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
        }
    }
    return _mm256_sub_epi32(acc, corr);
}
#endif

/* Q4_0, one block of each of the 8 rows: the 8 exact block sums in row order, and *d the rows'
 * f16 scales as f32. Rows i and i + 4 share a register (low and high 128 bits); both halves
 * see the same 16 activations, so with u = nibble ∈ [0, 15]:
 * v_i = pmaddubsw(lo, q0..15) + pmaddubsw(hi, q16..31) - c, c = the same with u = 8, is in
 * each int16 lane Σ over 4 elements of (u - 8)·q, |v| ≤ 4·8·127 = 4064 (the partial sums
 * before subtracting c ≤ 4·15·127 = 7620). Two phaddw levels (sums of 16 ≤ 16256) and a
 * pmaddwd by 1 leave [r0 r1 r2 r3 | r4 r5 r6 r7] as int32. */
BN_INLINE QB_TARGET __m256i tile_q4_0(const uint8_t *const rows[TILE_R], size_t off, const int8_t *q, __m256 *d) {
    const __m256i m4 = _mm256_set1_epi8(0xF), e8 = _mm256_set1_epi8(8);
    const __m256i q0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q));
    const __m256i q1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(q + 16)));
    const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(e8, q0), _mm256_maddubs_epi16(e8, q1));
    __m256i v[4];
    for (int i = 0; i < 4; i++) {
        const __m256i raw = _mm256_loadu2_m128i((const __m128i *)(rows[i + 4] + off + 2), (const __m128i *)(rows[i] + off + 2));
        const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        v[i] = _mm256_sub_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, q0), _mm256_maddubs_epi16(hi, q1)), c);
    }
    uint64_t d03 = 0, d47 = 0; /* gathered in general registers: the vector ports are the busy ones */
    for (int i = 0; i < 4; i++) {
        uint16_t a, b;
        memcpy(&a, rows[i] + off, 2);
        memcpy(&b, rows[i + 4] + off, 2);
        d03 |= (uint64_t)a << (16 * i);
        d47 |= (uint64_t)b << (16 * i);
    }
    *d = _mm256_cvtph_ps(_mm_set_epi64x((long long)d47, (long long)d03));
    const __m256i s = _mm256_hadd_epi16(_mm256_hadd_epi16(v[0], v[1]), _mm256_hadd_epi16(v[2], v[3]));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* Prefetches [p, p + len) into L2, len a constant (unrolled): points 64 bytes apart touch every
 * line. Into L2, not L1: a Q6_K tile is 8 × 2100 bytes at k = 2560, so the tile being read and
 * the next one together overflow a 32 KiB L1. Zen 4 core, Q6_K head 128256 × 2560 from DRAM,
 * one activation row: 21.6–22.0 GB/s with L1 requests, 23.4–23.9 with L2 ones (both levels). */
BN_INLINE QB_TARGET void prefetch_span(const uint8_t *p, int len) {
    for (int o = 0; o < len; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T1);
}

// w: (m, row_bytes) blocks, x: (n, k) int8 → y: (n, ldy) f32 rows [row_begin, min(row_end, m))
QB_TARGET void QB_NAME(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale,
                                 const int32_t *x_bsum, int32_t n, float *y, int32_t ldy, int32_t row_begin,
                                 int32_t row_end) {
    const int32_t end = bn_min_i32(row_end, w->m), k = w->k, type = w->type;
    const int32_t B = bn_qblock_size(type), nb = k / B, bytes = bn_qblock_bytes(type);
    const int32_t scale_at = type == BN_QBLOCK_Q6_K ? 208 : 0;
    for (int32_t r0 = row_begin; r0 < end; r0 += TILE_R) {
        const int32_t valid = bn_min_i32(TILE_R, end - r0);
        const uint8_t *rows[TILE_R]; /* rows past the range repeat the last one: read, never stored */
        for (int i = 0; i < TILE_R; i++)
            rows[i] = w->data + (size_t)(r0 + (i < valid ? i : valid - 1)) * (size_t)w->row_bytes;
        /* the next tile's bytes (past the range or the matrix: a prefetch never faults) */
        const uint8_t *next = rows[0] + (size_t)TILE_R * (size_t)w->row_bytes;
        for (int32_t t = 0; t < n; t++) {
            const int8_t *xt = x + (size_t)t * (size_t)k;
            const float *xs = x_scale + (size_t)t * (size_t)nb; /* one activation scale per weight block */
            const int32_t *bs = x_bsum ? x_bsum + (size_t)t * (size_t)(k / 16) : NULL;
            __m256 acc = _mm256_setzero_ps();
            if (type == BN_QBLOCK_Q4_0) { /* its own loop: the per-block overhead is a large share here */
                for (int32_t b = 0; b < nb; b++) {
                    const size_t off = (size_t)b * 18;
                    if (t == 0) prefetch_span(next + (size_t)TILE_R * off, TILE_R * 18);
                    __m256 d;
                    const __m256i isum = tile_q4_0(rows, off, xt + (size_t)b * 32, &d);
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[b])), _mm256_cvtepi32_ps(isum)));
                }
            }
            for (int32_t b = type == BN_QBLOCK_Q4_0 ? nb : 0; b < nb; b++) { /* the other types */
                const size_t off = (size_t)b * (size_t)bytes;
                const int8_t *q = xt + (size_t)b * (size_t)B;
                /* this block's share of the next tile, in address order: TILE_R·bytes from here */
                const uint8_t *pf = t == 0 ? next + (size_t)TILE_R * off : NULL;
                __m256i part[TILE_R];
                __m256i msum = _mm256_setzero_si256(); /* Q4_K: Σ mn·q per row */
                switch (type) {
                case BN_QBLOCK_Q8_0:
                    if (pf) prefetch_span(pf, TILE_R * 34);
                    for (int i = 0; i < TILE_R; i++) part[i] = blk_q8_0(rows[i] + off, q);
                    break;
                case BN_QBLOCK_Q4_K: { /* the 8 sums of 32 as int16, shared by the 8 rows */
                    const __m256i s0 = _mm256_loadu_si256((const __m256i *)(bs + 16 * b));
                    const __m256i s1 = _mm256_loadu_si256((const __m256i *)(bs + 16 * b + 8));
                    const __m256i pairs = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s0, s1), 0xD8); /* 8 × int32 */
                    const __m128i sum32 = _mm_packs_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
                    __m256i mins[TILE_R];
                    for (int i = 0; i < TILE_R; i++) {
                        if (pf) prefetch_span(pf + 144 * i, 144); /* spread over the rows: a burst is slower */
                        part[i] = blk_q4_k(rows[i] + off, q, sum32, &mins[i]);
                    }
                    msum = hsum8(mins);
                    break;
                }
                default: { /* BN_QBLOCK_Q6_K: the 16 sums as int16 (|bsum| ≤ 2032), in order (GFNI) or even then odd */
                    const __m256i s0 = _mm256_loadu_si256((const __m256i *)(bs + 16 * b));
                    const __m256i s1 = _mm256_loadu_si256((const __m256i *)(bs + 16 * b + 8));
                    __m256i b16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(s0, s1), 0xD8); /* 0..7 | 8..15 */
#if defined(QB_GFNI)
                    for (int i = 0; i < TILE_R; i++) {
                        if (pf) prefetch_span(pf + 210 * i, 210); /* spread over the rows: a burst is slower */
                        part[i] = blk_q6_k_gfni(rows[i] + off, q, b16);
                    }
#else
                    b16 = _mm256_shuffle_epi8(b16, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                                                    0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
                    b16 = _mm256_permute4x64_epi64(b16, 0xD8); /* 0 2 .. 14 | 1 3 .. 15 */
                    for (int i = 0; i < TILE_R; i++) {
                        if (pf) prefetch_span(pf + 210 * i, 210); /* spread over the rows: a burst is slower */
                        part[i] = blk_q6_k_eo(rows[i] + off, q, b16);
                    }
#endif
                    break;
                }
                }
                __m256i isum = hsum8(part);
                const __m256 xd = _mm256_set1_ps(xs[b]);
                const __m256 a = _mm256_mul_ps(scales8(rows, off, scale_at), xd);
                acc = _mm256_add_ps(acc, _mm256_mul_ps(a, _mm256_cvtepi32_ps(isum)));
                if (type == BN_QBLOCK_Q4_K) {
                    const __m256 am = _mm256_mul_ps(scales8(rows, off, 2), xd);
                    acc = _mm256_sub_ps(acc, _mm256_mul_ps(am, _mm256_cvtepi32_ps(msum)));
                }
            }
            float out[TILE_R];
            _mm256_storeu_ps(out, acc);
            memcpy(y + (size_t)t * (size_t)ldy + (size_t)r0, out, (size_t)valid * sizeof(float));
        }
    }
}

