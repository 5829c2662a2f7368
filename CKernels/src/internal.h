/*
 * internal.h — private declarations shared by the CKernels sources.
 * Each ISA's functions live in src/<isa>/<op>_<isa>.c and are reached only
 * through the tables in bn_dispatch.c; the scalar versions are the spec.
 */
#ifndef BN_INTERNAL_H
#define BN_INTERNAL_H

#include "bitnet_kernels.h"

/* Largest k_pad the kernels accept: the AVX-512 VNNI GEMV keeps plane 3
 * of the I2_R16 chunk at 64× its value, so one int32 lane gathers at most
 * k_pad/8 products of |192·128| (code 3 read from a malformed file):
 * 2^18/8 · 24576 = 805,306,368 < 2^31. */
#define BN_I2S_MAX_K (1 << 18)

/* Packed-chunk geometry, checked once here so a change to the header fails the build. */
_Static_assert(BN_I2R16_ROWS * BN_I2R16_CHUNK_COLS / 4 == BN_I2R16_CHUNK_BYTES, "chunk geometry");
_Static_assert(BN_ROW_ALIGN % BN_I2R16_ROWS == 0, "row alignment must hold whole groups");
_Static_assert(BN_COL_ALIGN % (2 * BN_I2R16_CHUNK_COLS) == 0, "kernels unroll two chunks");

/* Byte offset of row group g's chunk c in an I2_R16 matrix with k_pad columns. */
static inline size_t bn_i2r16_chunk_offset(int32_t k_pad, int32_t g, int32_t c) {
    return ((size_t)g * (size_t)(k_pad / BN_I2R16_CHUNK_COLS) + (size_t)c) * BN_I2R16_CHUNK_BYTES;
}

static inline int32_t bn_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t bn_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

/* The F16 panel GEMM's walk (bn_f16_gemm_fn), shared by its SIMD twins: the
 * activation rows in groups of at most group_max (sizes within one of each
 * other), the rows [row_begin, row_end) in passes of `panels` 16-row panels
 * (fewer at the end), each pass over every group in turn, so the first
 * group brings the pass's panels from memory and the others find them in L2.
 * pass(w16 at the pass's first panel, k, x of the group, y at the pass's first
 * row, ldy, panels of this pass, rows of the group, rows [r0, r1) of the pass
 * to store, request) computes one pass; request is set for the first group. */
typedef void (*bn_f16_pass_fn)(const uint16_t *w16, int32_t k, const float *x, float *y, size_t ldy, int32_t panels,
                               int32_t rows, int32_t r0, int32_t r1, int request);

/* Rows in the widest group when n activation rows are split into groups of at most group_max. */
static inline int32_t bn_f16_widest_group(int32_t n, int32_t group_max) {
    const int32_t groups = (n + group_max - 1) / group_max;
    return (n + groups - 1) / groups;
}

static inline void bn_f16_panel_walk(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                                     int32_t row_begin, int32_t row_end, int32_t group_max, int32_t panels,
                                     int request, bn_f16_pass_fn pass) {
    if (n <= 0 || row_end <= row_begin) return;
    const int32_t groups = (n + group_max - 1) / group_max;
    const int32_t last = (row_end + 15) / 16; /* one past the last panel */
    for (int32_t p0 = row_begin / 16, np; p0 < last; p0 += np) {
        const int32_t left = last - p0;
        np = bn_min_i32(panels, left);
        const int32_t r0 = row_begin - 16 * p0, r1 = bn_min_i32(row_end - 16 * p0, 16 * np);
        const uint16_t *wp = w16 + (size_t)p0 * (size_t)k * 16u;
        for (int32_t g = 0; g < groups; g++) {
            const int32_t ta = n * g / groups, tb = n * (g + 1) / groups;
            pass(wp, k, x + (size_t)ta * (size_t)k, y + (size_t)ta * (size_t)ldy + 16 * p0, (size_t)ldy, np, tb - ta,
                 r0, r1, request && g == 0);
        }
    }
}

/* scalar: the executable specification */
void bn_quantize_scalar(const float *x, int32_t n, int32_t k, int32_t ldx,
                        int8_t *q, int32_t k_pad, float *scale, int32_t *sum);
void bn_i2s_gemm_scalar(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                        const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end);
void bn_rmsnorm_scalar(const float *x, const float *w, float eps, int32_t n, float *y);
void bn_f16_gemm_scalar(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end);
void bn_f16_to_f32_scalar(const uint16_t *src, float *dst, int32_t n);
float bn_dot_scalar(const float *a, const float *b, int32_t n);
void bn_axpy_scalar(float a, const float *x, float *y, int32_t n);
void bn_add_scalar(const float *x, float *y, int32_t n);
void bn_softmax_scalar(float *x, int32_t n);
void bn_gate_relu2_scalar(float *g, const float *u, int32_t n);
void bn_gate_silu_scalar(float *g, const float *u, int32_t n);
void bn_rope_scalar(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin, int32_t neox);
void bn_attention_scalar(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                         int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                         float *out, int32_t head_begin, int32_t head_end, int32_t flags);
void bn_attention_f16_scalar(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                        int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores, float *out,
                        int32_t head_begin, int32_t head_end, int32_t flags);

void bn_q8_gemm_scalar(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                       int32_t ldy, int32_t row_begin, int32_t row_end);
float bn_qblock_half(uint16_t h); /* exact f16 → f32 */
void bn_qblock_gemm_scalar(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                           int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);
#if defined(__x86_64__) || defined(_M_X64)
void bn_qblock_gemm_avx2(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                         int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);
void bn_qblock_gemm_avx512vnni(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale,
                               const int32_t *x_bsum, int32_t n, float *y, int32_t ldy, int32_t row_begin,
                               int32_t row_end);
/* the two builds bn_qblock_gemm_avx512vnni chooses between (bn_qblock_gfni) */
void bn_qblock_gemm_avx512vnni_plain(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale,
                                     const int32_t *x_bsum, int32_t n, float *y, int32_t ldy, int32_t row_begin,
                                     int32_t row_end);
void bn_qblock_gemm_avx512gfni(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale,
                               const int32_t *x_bsum, int32_t n, float *y, int32_t ldy, int32_t row_begin,
                               int32_t row_end);
#endif
#if defined(__aarch64__)
void bn_qblock_gemm_neon(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                         int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);
#endif

#if defined(__x86_64__) || defined(_M_X64)
void bn_q8_gemm_avx2(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                     int32_t ldy, int32_t row_begin, int32_t row_end);
void bn_q8_gemm_avx512vnni(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                           int32_t ldy, int32_t row_begin, int32_t row_end);
void bn_quantize_avx2(const float *x, int32_t n, int32_t k, int32_t ldx,
                      int8_t *q, int32_t k_pad, float *scale, int32_t *sum);
void bn_i2s_gemv_avx2(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                      const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                      int32_t row_begin, int32_t row_end);
void bn_i2s_gemm_avx2(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                      const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                      int32_t row_begin, int32_t row_end);
void bn_quantize_avx512(const float *x, int32_t n, int32_t k, int32_t ldx,
                        int8_t *q, int32_t k_pad, float *scale, int32_t *sum);
void bn_i2s_gemv_avx512(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                        const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end);
void bn_i2s_gemm_avx512(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                        const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end);
void bn_i2s_gemv_avx512vnni(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                            const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                            int32_t row_begin, int32_t row_end);
void bn_i2s_gemm_avx512vnni(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                            const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                            int32_t row_begin, int32_t row_end);
/* AMX-INT8 tiles (gemm_i2s_amx.c); the caller has the process's AMX permission */
void bn_i2s_gemm_amx(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                     const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                     int32_t row_begin, int32_t row_end);
void bn_q8_gemm_amx(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                    int32_t ldy, int32_t row_begin, int32_t row_end);
uint64_t bn_bench_read_x86(bn_isa isa, const void *buf, size_t len);
uint64_t bn_bench_int8_peak_x86(bn_isa isa, uint64_t iters);
uint64_t bn_bench_f32_peak_x86(bn_isa isa, uint64_t iters);
/* float ops: AVX2 + FMA + F16C, and AVX-512 (shared by the avx512 and avx512vnni tables) */
void bn_rmsnorm_avx2(const float *x, const float *w, float eps, int32_t n, float *y);
void bn_f16_gemm_avx2(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                      int32_t row_begin, int32_t row_end);
void bn_f16_to_f32_avx2(const uint16_t *src, float *dst, int32_t n);
float bn_dot_avx2(const float *a, const float *b, int32_t n);
void bn_axpy_avx2(float a, const float *x, float *y, int32_t n);
void bn_add_avx2(const float *x, float *y, int32_t n);
void bn_softmax_avx2(float *x, int32_t n);
void bn_gate_relu2_avx2(float *g, const float *u, int32_t n);
void bn_gate_silu_avx2(float *g, const float *u, int32_t n);
void bn_rope_avx2(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin, int32_t neox);
void bn_attention_avx2(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                       int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                       float *out, int32_t head_begin, int32_t head_end, int32_t flags);
void bn_attention_f16_avx2(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                        int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores, float *out,
                        int32_t head_begin, int32_t head_end, int32_t flags);
void bn_rmsnorm_avx512(const float *x, const float *w, float eps, int32_t n, float *y);
void bn_f16_gemm_avx512(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                        int32_t row_begin, int32_t row_end);
void bn_f16_to_f32_avx512(const uint16_t *src, float *dst, int32_t n);
float bn_dot_avx512(const float *a, const float *b, int32_t n);
void bn_axpy_avx512(float a, const float *x, float *y, int32_t n);
void bn_add_avx512(const float *x, float *y, int32_t n);
void bn_softmax_avx512(float *x, int32_t n);
void bn_gate_relu2_avx512(float *g, const float *u, int32_t n);
void bn_gate_silu_avx512(float *g, const float *u, int32_t n);
void bn_rope_avx512(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin, int32_t neox);
void bn_attention_avx512(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                         int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                         float *out, int32_t head_begin, int32_t head_end, int32_t flags);
void bn_attention_f16_avx512(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                        int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores, float *out,
                        int32_t head_begin, int32_t head_end, int32_t flags);
#endif

#if defined(__aarch64__)
void bn_q8_gemm_neon(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n, float *y,
                     int32_t ldy, int32_t row_begin, int32_t row_end);
void bn_quantize_neon(const float *x, int32_t n, int32_t k, int32_t ldx,
                      int8_t *q, int32_t k_pad, float *scale, int32_t *sum);
void bn_i2s_gemm_neon(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                      const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                      int32_t row_begin, int32_t row_end);
void bn_i2s_gemm_neon_dotprod(const bn_i2s_matrix *w, const int8_t *x, const float *x_scale,
                              const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end);
uint64_t bn_bench_read_arm(bn_isa isa, const void *buf, size_t len);
uint64_t bn_bench_int8_peak_arm(bn_isa isa, uint64_t iters);
uint64_t bn_bench_f32_peak_arm(bn_isa isa, uint64_t iters);
/* float ops (shared by the neon and dotprod tables) */
void bn_rmsnorm_neon(const float *x, const float *w, float eps, int32_t n, float *y);
void bn_f16_gemm_neon(const uint16_t *w16, int32_t k, const float *x, int32_t n, float *y, int32_t ldy,
                      int32_t row_begin, int32_t row_end);
void bn_f16_to_f32_neon(const uint16_t *src, float *dst, int32_t n);
float bn_dot_neon(const float *a, const float *b, int32_t n);
void bn_axpy_neon(float a, const float *x, float *y, int32_t n);
void bn_add_neon(const float *x, float *y, int32_t n);
void bn_softmax_neon(float *x, int32_t n);
void bn_gate_relu2_neon(float *g, const float *u, int32_t n);
void bn_gate_silu_neon(float *g, const float *u, int32_t n);
void bn_rope_neon(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin, int32_t neox);
void bn_attention_neon(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                       int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                       float *out, int32_t head_begin, int32_t head_end, int32_t flags);
void bn_attention_f16_neon(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride, int32_t T,
                           int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores, float *out,
                           int32_t head_begin, int32_t head_end, int32_t flags);
#endif


/* ---- TL1 / TL2 (layout in bitnet_kernels.h) -------------------------------- */

/* One ISA's pieces of the LUT kernels; bn_tl_drive (bn_formats_tl.c) does
 * the tiling, the stack buffers and the epilogue for all of them.
 *   build: tables of slots [s0, s0+ns) of one activation row into lut, in
 *          this ISA's format (lut_slot_bytes per slot);
 *   tile:  adds the dot products of one 32-row tile over slots [s0, s0+ns)
 *          (s0, ns multiples of 8) to acc[0..31] (int32, natural row order).
 *   xor_sign: the tile adds ~T for negative TL2 slots (bn_tl_drive then adds
 *          the stored per-row counts). */
typedef struct {
    int32_t lut_slot_bytes;
    int32_t xor_sign;
    void (*build)(uint8_t *lut, const int8_t *x, int32_t k_pad, int32_t s0, int32_t ns, int32_t type);
    void (*tile)(const uint8_t *tile, int32_t s0, int32_t ns, const uint8_t *lut, int32_t *acc, int32_t type);
} bn_tl_ops;

enum {
    BN_TL_LUT_STACK = 144 * 1024, /* bytes of tables on the stack (GEMV: one block for K ≤ 9216 at 32 B/slot) */
    BN_TL_ACC_STACK = 4096       /* int32 partial sums on the stack */
};

void bn_tl_drive(const bn_tl_ops *ops, const bn_tl_matrix *w, const int8_t *x, const float *x_scale, int32_t n,
                 float *y, int32_t ldy, int32_t row_begin, int32_t row_end);

/* Balanced-ternary digits of table entry i (TL2) or pair entry i (TL1). */
static inline void bn_tl_digits(int32_t type, int32_t i, int32_t d[3]) {
    if (type == 1) {
        d[0] = i < 9 ? i / 3 - 1 : 0;
        d[1] = i < 9 ? i % 3 - 1 : 0;
        d[2] = 0;
        return;
    }
    if (i > 13) { d[0] = d[1] = d[2] = 0; return; }
    int32_t v = i;
    d[2] = ((v + 1) % 3) - 1; v = (v - d[2]) / 3;
    d[1] = ((v + 1) % 3) - 1; v = (v - d[1]) / 3;
    d[0] = v;
}

/* Activation c of a row of k_pad columns, 0 past the end (short last slot). */
static inline int32_t bn_tl_act(const int8_t *x, int32_t k_pad, int32_t c) { return c < k_pad ? x[c] : 0; }

static inline int32_t bn_tl_group_bytes(int32_t type) { return type == 1 ? BN_TL1_GROUP_BYTES : BN_TL2_GROUP_BYTES; }
/* Byte of a group holding the index nibble (shift 4·(j&1)) of slot j (0..7), tile row r (0..31). */
static inline int32_t bn_tl_index_byte(int32_t j, int32_t r) {
    const int32_t p = j >> 1;
    return (p >> 1) * 64 + (r >> 4) * 32 + (p & 1) * 16 + (r & 15);
}
/* Bit of a TL2 group (counted from its first byte) holding the sign of slot j, tile row r. */
static inline int32_t bn_tl_sign_bit(int32_t j, int32_t r) {
    return 8 * (128 + 16 * (j >> 2) + 8 * (j & 1)) + 16 * (2 * (r >> 4) + ((j >> 1) & 1)) + (r & 15);
}

void bn_tl1_gemm_scalar(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);
void bn_tl2_gemm_scalar(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);
#define BN_TL_DECL(isa)                                                                                         \
    void bn_tl1_gemm_##isa(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum, \
                           int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);               \
    void bn_tl2_gemm_##isa(const bn_tl_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_sum, \
                           int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);
#if defined(__x86_64__) || defined(_M_X64)
/* the x86 table format, shared by the AVX2 and AVX-512 TL kernels */
void bn_tl_x86_build(uint8_t *lut, const int8_t *x, int32_t k_pad, int32_t s0, int32_t ns, int32_t type);
BN_TL_DECL(avx2)
BN_TL_DECL(avx512)
#endif
#if defined(__aarch64__)
BN_TL_DECL(neon)
#endif

#endif /* BN_INTERNAL_H */
