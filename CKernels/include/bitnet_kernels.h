/*
 * bitnet_kernels.h — the only public header of CKernels.
 *
 * Stateless hot loops over raw pointers for 1.58-bit (ternary) LLM inference.
 * Kernels never allocate, read files or report errors: callers (the Swift
 * library, or C/C++ code) validate shapes first. The only state is the
 * dispatch table, filled once, and worker pools, which allocate only in
 * bn_pool_create.
 *
 * ---------------------------------------------------------------------------
 * Ternary weights: the internal "I2_R16" layout
 * ---------------------------------------------------------------------------
 * The file format I2_S (bitnet.cpp) blocks the flattened M×K matrix in
 * 128-element groups of 32 bytes, with element j of a block at byte j%32,
 * bit shift 6-2*(j/32), codes 0/1/2 = -1/0/+1 and one f32 scale per tensor.
 * That layout needs a horizontal sum per row and cannot serve rows whose K
 * is not a multiple of 128. At load time it is repacked once into I2_R16:
 *
 *   rows are padded to m_pad = roundup(M, 32), columns to k_pad = roundup(K, 32);
 *   padding weights are code 1 (weight 0), so padded rows yield 0.
 *   The matrix is cut into row groups of 16 rows; a group is k_pad/16
 *   consecutive 64-byte chunks; a chunk holds 16 rows × 16 columns:
 *
 *     byte b (0..63) of chunk c of group g, bits 2s..2s+1 (s = 0..3) =
 *       code of row 16g + b/4, column 16c + 4s + b%4.
 *
 *   So masking (or shifting) a 64-byte chunk by plane s gives 16 rows × 4
 *   consecutive columns as unsigned bytes, which is exactly the operand
 *   shape of vpdpbusd / pmaddubsw (u8 × s8, 4 adjacent products per int32
 *   lane) and of sdot on arm64: one broadcast 4-byte activation word serves
 *   16 rows, each int32 lane ends as one row's dot product (no horizontal
 *   sums), and in a GEMM one unpacked chunk serves many activation rows.
 *   The group stride is k_pad*4 bytes; total size m_pad*k_pad/4 bytes.
 *
 * Integer arithmetic: the kernels compute acc = Σ code·q over k_pad columns
 * (padding activations are 0), then dot = acc - Σq = Σ w·q exactly. Bounds
 * relied on: |q| ≤ 128, code ≤ 2, so |acc| ≤ 256·k_pad and |Σq| ≤ 128·k_pad;
 * int32 never wraps for k_pad ≤ 2^22 (4,194,304 columns; bn_i2s_max_k).
 * Every partial sum in every ISA is kept in int32 or is a pmaddubsw pair
 * (|2·128 + 2·128| = 512, far from the int16 limit), so results are exact
 * and identical across ISAs.
 *
 * Output: y[t*ldy + r] = (float)dot(t, r) * (w_scale / x_scale[t]), with the
 * factor computed once per activation row in f32 (identical in every ISA, so
 * SIMD and scalar outputs are bit-identical).
 *
 * ---------------------------------------------------------------------------
 * Activations
 * ---------------------------------------------------------------------------
 * BitNet b1.58 per-token absmax quantization: s = 127 / max(max|x|, 1e-5),
 * q = clamp(round_half_even(x·s), -128, 127), computed in f32. Rows are
 * written with k_pad columns (zero padded) together with s and Σq.
 */
#ifndef BITNET_KERNELS_H
#define BITNET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ISA levels, ordered within each architecture: forcing may only lower. */
typedef enum {
    BN_ISA_SCALAR = 0,
    BN_ISA_AVX2 = 1,          /* x86-64: AVX2 + FMA + F16C */
    BN_ISA_AVX512 = 2,        /* + AVX-512 F/BW/VL/DQ (pmaddubsw path) */
    BN_ISA_AVX512_VNNI = 3,   /* + AVX-512 VNNI (vpdpbusd) */
    BN_ISA_NEON = 4,          /* arm64 baseline */
    BN_ISA_NEON_DOTPROD = 5,  /* arm64 + sdot */
    BN_ISA_AMX = 6,           /* x86-64 above AVX-512 VNNI: + AMX-INT8 tiles (I2_S GEMM, int8 head) */
    BN_ISA_COUNT = 7
} bn_isa;

enum {
    BN_I2R16_ROWS = 16,       /* rows per group */
    BN_I2R16_CHUNK_COLS = 16, /* columns per 64-byte chunk */
    BN_I2R16_CHUNK_BYTES = 64,
    BN_ROW_ALIGN = 32,        /* m_pad multiple; row ranges start on it */
    BN_COL_ALIGN = 32,        /* k_pad multiple */
    BN_I2S_BLOCK = 128,       /* canonical I2_S block, elements */
    BN_I2S_BLOCK_BYTES = 32
};

/* A repacked ternary matrix (weights of one BitLinear). */
typedef struct {
    const uint8_t *data; /* (m_pad/16, k_pad/16, 64) I2_R16 packed */
    int32_t m, k;        /* logical rows (outputs) and columns (inputs) */
    int32_t m_pad, k_pad;
    float scale;         /* per-tensor weight scale s_w */
} bn_i2s_matrix;

/* ---- kernel signatures (every ISA has one of each) ---------------------- */

/* x: (n, ldx) f32 rows of k values → q: (n, k_pad) int8, scale: (n,), sum: (n,) */
typedef void (*bn_quantize_fn)(const float *x, int32_t n, int32_t k, int32_t ldx,
                               int8_t *q, int32_t k_pad, float *scale, int32_t *sum);

/* y: (n, ldy) f32, rows [row_begin, min(row_end, m)) of each activation row;
 * x: (n, k_pad) int8, x_scale/x_sum: (n,). row_begin % 32 == 0. */
typedef void (*bn_i2s_gemm_fn)(const bn_i2s_matrix *w, const int8_t *x,
                               const float *x_scale, const int32_t *x_sum, int32_t n,
                               float *y, int32_t ldy, int32_t row_begin, int32_t row_end);

/* ---- float ops (the model graph around the ternary matrices) ------------- *
 * All f32, computed in f32 (sums may use several partial accumulators, so
 * SIMD and scalar agree to rounding, not bit for bit; tests state the
 * tolerances). Buffers may alias only where noted.
 * add, axpy, f16_to_f32, rope and gate_relu2 are elementwise with every
 * product rounded before it is added (never fused), so they are bit-identical
 * in every ISA; softmax and gate_silu use a polynomial exp within 2^-23
 * relative of the exact value in the SIMD kernels (expf in scalar). Tolerances:
 * Tests/c/test_ops.c. */

/* y = x / sqrt(mean(x²) + eps) ⊙ w;  x, w, y: (n,); y may alias x */
typedef void (*bn_rmsnorm_fn)(const float *x, const float *w, float eps, int32_t n, float *y);

/* F16 matrix × f32 activations (the F16 output head), the matrix in 16-row
 * panels (bn_f16_panels): w16[(p*k + c)*16 + i] = w[16p + i][c], rows past m
 * zero. x: (n, k) f32 → y: (n, ldy) f32, rows [row_begin, row_end) (any range,
 * row_end ≤ m): y[t*ldy + r] is the single chain s = fma(f32(w[r][c]), x[t*k + c], s)
 * for c = 0 … k-1 from s = 0 — one fused multiply-add per weight in column
 * order, so every ISA gives the same bits as the scalar twin, whatever n is and
 * wherever row t sits in the call: batched decoding gives every sequence the
 * logits it gets alone (Tests/c/test_ops.c). Why panels: a converted weight
 * vector holds 16 rows of one column, so it meets each activation row by one
 * broadcast FMA (no horizontal sums, no partial sums saved between column
 * blocks), and 8 activation rows share each conversion. */
typedef void (*bn_f16_gemm_fn)(const uint16_t *w16, int32_t k, const float *x, int32_t n,
                               float *y, int32_t ldy, int32_t row_begin, int32_t row_end);

/* dst[i] = f32(src[i]) (embedding rows); src: (n,) half, dst: (n,) f32 */
typedef void (*bn_f16_to_f32_fn)(const uint16_t *src, float *dst, int32_t n);

/* Σ a[i]·b[i];  a, b: (n,) */
typedef float (*bn_dot_fn)(const float *a, const float *b, int32_t n);

/* y[i] += a·x[i];  x, y: (n,) */
typedef void (*bn_axpy_fn)(float a, const float *x, float *y, int32_t n);

/* y[i] += x[i];  x, y: (n,) (residual connections) */
typedef void (*bn_add_fn)(const float *x, float *y, int32_t n);

/* In place: x[i] = exp(x[i] - max) / Σ exp(x[j] - max);  x: (n,), n ≥ 1 */
typedef void (*bn_softmax_fn)(float *x, int32_t n);

/* Gated activations, in place on g: g[i] = act(g[i]) · u[i];  g, u: (n,)
 * relu2: act(v) = max(v, 0)²  (BitNet b1.58 2B4T);  silu: act(v) = v / (1 + exp(-v)) */
typedef void (*bn_gate_fn)(float *g, const float *u, int32_t n);

/* Rotary embedding in place on x: (heads, head_dim) for one position, with
 * cos/sin: (head_dim/2,) precomputed for that position (cos(pos·θ_i)).
 * neox != 0: dimension i pairs with i + head_dim/2 (rotate-half, NeoX/HF);
 * neox == 0: dimension 2i pairs with 2i+1 (Llama GGUF, Q/K rows permuted).
 * Pair (a, b) becomes (a·cos_i − b·sin_i, a·sin_i + b·cos_i). */
typedef void (*bn_rope_fn)(float *x, int32_t heads, int32_t head_dim, const float *cos, const float *sin,
                           int32_t neox);

/* Causal attention of one query position over T ≥ 1 cached positions, for
 * query heads [head_begin, head_end):
 *   q: (n_heads, hd); k, v: (T, kv_stride) with head g at offset g·hd;
 *   query head h reads kv head h / (n_heads / n_kv_heads) (GQA);
 *   out[h] = Σ_t softmax_t(scale · q[h]·k[t]) · v[t];  out: (n_heads, hd)
 *   scores: scratch of ≥ BN_ATTN_GROUP·T floats owned by the calling thread
 *   (the query heads of one kv head are computed together, up to BN_ATTN_GROUP
 *   at a time, so the cache is read once per group).
 *   flags: 0, or BN_ATTN_RESIDENT when the positions were just read by the
 *   caller's previous call (a prompt's rows, one after another over the same kv
 *   head): the kernel then requests nothing ahead — a decoding row streams its
 *   cache from memory and the requests pay off, but on cached rows each one
 *   costs a load slot. Flags never change a result. */
enum { BN_ATTN_GROUP = 8, BN_ATTN_RESIDENT = 1 };
typedef void (*bn_attention_fn)(const float *q, const float *k, const float *v, int32_t kv_stride, int32_t T,
                                int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale, float *scores,
                                float *out, int32_t head_begin, int32_t head_end, int32_t flags);
/* The same over an f16 KV cache (k, v as IEEE half, half the bytes to read):
 * every value is converted exactly and then goes through the f32 kernel's
 * arithmetic, so the result equals `attention` on the cache's values as floats
 * (bit for bit, every ISA). */
typedef void (*bn_attention_f16_fn)(const float *q, const uint16_t *k, const uint16_t *v, int32_t kv_stride,
                                    int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t hd, float scale,
                                    float *scores, float *out, int32_t head_begin, int32_t head_end, int32_t flags);

/* ---- int8 head (opt-in `--head q8`) ---------------------------------------- *
 * The F16 output head is over half the bytes a 2B4T token reads. Requantized
 * at load to int8 with one f32 scale per row (d_r = max|w_r| / 127), it is
 * half the size. Layout Q8_R16: rows padded to 16, columns to k_pad (a
 * multiple of 32, as bn_quantize pads activations); 16-row groups of 64-byte
 * chunks, each 16 rows × 4 columns: byte b of chunk c of group g is row
 * 16g + b/4, column 4c + b%4 (group stride 16·k_pad bytes). Activations come
 * from bn_quantize and are clamped to [-127, 127] (so sign tricks are exact);
 * y[t*ldy + r] = (float)Σ w·q · (row_scale[r] / x_scale[t]). */
typedef struct {
    const int8_t *data;       /* (m_pad/16, k_pad/4, 64) Q8_R16 */
    const float *row_scale;   /* (m,) */
    const int32_t *row_sum;   /* (m_pad,) Σ_c w[r][c], for the unsigned-activation VNNI form */
    int32_t m, k, m_pad, k_pad;
} bn_q8_matrix;

/* y: (n, ldy), rows [row_begin, min(row_end, m)), row_begin % 16 == 0; x: (n, k_pad) int8 */
typedef void (*bn_q8_gemm_fn)(const bn_q8_matrix *w, const int8_t *x, const float *x_scale, int32_t n,
                              float *y, int32_t ldy, int32_t row_begin, int32_t row_end);

size_t bn_q8r16_bytes(int32_t m, int32_t k);
/* w: (m, k) int8 → dst: bn_q8r16_bytes(m, k) bytes, row_sum: (roundup(m, 16),) */
void bn_q8r16_pack(const int8_t *w, int32_t m, int32_t k, int8_t *dst, int32_t *row_sum);


/* ---- block-quantized heads (the file's llama.cpp blocks, used natively) ----- *
 * An output head stored as Q8_0, Q4_0, Q4_K or Q6_K is read in its file
 * layout (docs/FORMATS.md, "Block types"): each row is k/B blocks (B = 32 for
 * Q8_0/Q4_0, 256 for the K types), rows are row_bytes = (k/B)·block_bytes
 * apart. Activations come from bn_qblock_quantize: int8 in per-block groups of
 * bn_qblock_act_block(type) values (32 for Q8_0/Q4_0, 256 for the K types, as
 * ggml's Q8_0 / Q8_K), one f32 scale per group, q ∈ [-127, 127], and for the
 * K types the sum of every 16 consecutive q's.
 *
 * Output rule (every ISA, bit for bit): per activation row t and weight row r,
 *   acc = 0; for each weight block b in order:
 *     i_b = exact integer Σ over the block of (integer weight code)·q, with the
 *           block's integer sub-scales folded in (Q6_K: Σ_j sc_j·Σ_16 (q6-32)·q;
 *           Q4_K: Σ_j sc_j·Σ_32 q4·q, and m_b = Σ_j mn_j·Σ_32 q);
 *     acc = acc + (d_b · xd_b) · (float)i_b        (two roundings, no fma)
 *     Q4_K only: acc = acc - (dmin_b · xd_b) · (float)m_b
 *   y[t*ldy + r] = acc
 * where d_b, dmin_b are the block's f16 scales as f32 and xd_b the activation
 * group's scale (a K block has one group; Q8_0/Q4_0 blocks one each). Integer
 * sums fit int32 for any bytes (largest: Q6_K, 16·16·32·128·128 < 2^31). */
enum {
    BN_QBLOCK_Q4_0 = 2, /* ggml type ids */
    BN_QBLOCK_Q8_0 = 8,
    BN_QBLOCK_Q4_K = 12,
    BN_QBLOCK_Q6_K = 14
};

typedef struct {
    const uint8_t *data; /* (m, row_bytes) blocks, any alignment */
    int32_t type;        /* BN_QBLOCK_* */
    int32_t m, k;        /* k a multiple of the type's block size */
    int32_t row_bytes;   /* (k / B) · block bytes */
} bn_qblock_matrix;

/* x: (n, k) int8; x_scale: (n, k/act_block) f32; x_bsum: (n, k/16) int32
 * (K types only, may be NULL otherwise) → y: (n, ldy) f32, rows
 * [row_begin, min(row_end, m)) (any row_begin; other rows untouched). */
typedef void (*bn_qblock_gemm_fn)(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale,
                                  const int32_t *x_bsum, int32_t n, float *y, int32_t ldy,
                                  int32_t row_begin, int32_t row_end);

/* Block size B (weights per block) and bytes per block; 0 for other types. */
int32_t bn_qblock_size(int32_t type);
int32_t bn_qblock_bytes(int32_t type);
/* Values per activation scale: 32 (Q8_0, Q4_0) or 256 (Q4_K, Q6_K); 0 otherwise. */
int32_t bn_qblock_act_block(int32_t type);
/* x: (n, ldx) f32, k columns (k % act_block == 0) → q: (n, k) int8,
 * scale: (n, k/act_block), bsum: (n, k/16) (may be NULL). Per group:
 * d = max|x| / 127, q = round-half-away(x / d) clamped to [-127, 127]
 * (0 for a zero or non-finite group). Scalar: O(n·k), cheap beside the head. */
void bn_qblock_quantize(int32_t type, const float *x, int32_t n, int32_t k, int32_t ldx, int8_t *q, float *scale,
                        int32_t *bsum);
/* Row r of a block matrix as f32 (dst: (k,)): the dequantization the kernels
 * compute against, for embedding lookups and references. */
void bn_qblock_dequantize_row(const bn_qblock_matrix *w, int32_t r, float *dst);
/* The scalar kernel, whatever the dispatch level (tests, references). */
void bn_qblock_gemm_ref(const bn_qblock_matrix *w, const int8_t *x, const float *x_scale, const int32_t *x_bsum,
                        int32_t n, float *y, int32_t ldy, int32_t row_begin, int32_t row_end);


/* ---- lookup-table kernels (TL1, TL2) -------------------------------------- *
 * Our own layouts (not bitnet.cpp's: no per-shape code generation, any M and
 * K). A "slot" is a run of w consecutive columns, w = 2 (TL1) or 3 (TL2):
 * slot s covers columns w·s .. w·s+w-1; weights past K are 0, and the table
 * builder reads activations past k_pad as 0 (those past K are already 0),
 * so a last slot that holds 1 or 2 real columns (K not a multiple of w) is
 * the "short tail": same index format, a table built from fewer activations.
 * s_pad = roundup(ceil(K/w), 8) slots; rows are padded to m_pad = roundup(M, 32)
 * (same row alignment as I2_R16, so the same row ranges serve both).
 *
 *   TL1 index of a slot (w0, w1):     i = 3(w0+1) + (w1+1) ∈ 0..8,
 *       table T1[i] = (i/3 - 1)·a0 + (i%3 - 1)·a1 (a = the slot's activations).
 *   TL2 value of a slot (w0, w1, w2): v = 9w0 + 3w1 + w2 ∈ [-13, 13];
 *       stored as magnitude |v| (4 bits) and sign bit (v < 0);
 *       table T2[i] = d0·a0 + d1·a1 + d2·a2 for i = 9d0 + 3d1 + d2 read in
 *       balanced ternary (i ∈ 0..13, leading digit ≥ 0); the slot adds
 *       ±T2[|v|]. Entries 14, 15 (and 9..15 of T1) are 0.
 *
 * Byte layout: 32-row tiles, each a run of s_pad/8 groups of 8 slots; in a
 * group, slot j (0..7) of tile row r (0..31) is in pair p = j/2:
 *   index byte (p/2)·64 + (r/16)·32 + (p%2)·16 + r%16, low nibble for even j,
 *   high nibble for odd j (so a 64-byte half of the group is 16-byte lanes
 *   [pair 2h rows 0-15 | pair 2h+1 rows 0-15 | pair 2h rows 16-31 | pair
 *   2h+1 rows 16-31]: every 16-byte lane indexes a single slot's table, the
 *   shape of pshufb / vqtbl1q).
 *   TL1 group: those 128 bytes. TL2 group (160 bytes): the 128 magnitude
 *   bytes, then 32 bytes of sign bits: bit 16·(2·(r/16) + (j/2)%2) + r%16 of
 *   the 8 bytes at 128 + 16·(j/4) + 8·(j%2) (little endian), i.e. one 64-bit
 *   word per nibble vector of a 64-byte half, bit b = byte b's row/slot.
 *   TL2 only, after the last tile: m_pad int32 row counts of negative slots
 *   (SIMD kernels add ~T = -T - 1 for a negative slot: a byte-wise NOT or
 *   masked 255 - b on both planes instead of a 16-bit negation; the count
 *   restores the +1s).
 *   Tile stride: TL1 16·s_pad bytes (2 bits/weight); TL2 20·s_pad bytes
 *   (5 bits per 3 weights, 1.67 bits/weight: 0.84× the bytes of I2_R16 for
 *   the 2B4T shapes).
 *
 * Tables are built per activation row and per block of slots (the "K block")
 * from bn_quantize output, int16 entries split into a low-byte and a
 * high-byte plane for byte-shuffle lookups (pshufb, vqtbl1q). Bounds relied
 * on: |q| ≤ 128, so |T1| ≤ 256, |T2| ≤ 384 and |~T2| ≤ 385; lookups are
 * summed in int16 over at most 64 slots per row (≤ 24,640 < 32,767) and then
 * widened to int32; the int32 total is |Σ w·q| ≤ 128·K, exact for
 * K ≤ bn_i2s_max_k(). Output: y = (float)Σ w·q · (w_scale / x_scale[t]), the
 * I2_S rule, so TL results are bit-identical to the I2_S kernels' (x_sum is
 * not needed and may be NULL).
 *
 * Tiling is run-time data (bn_tl_tiling in the descriptor, defaults from the
 * cache sizes): slots per K block, 32-row tiles per pass, activation rows
 * per table batch; it changes speed only, never the layout or the answer.
 * The kernels keep their tables (≤ 144 KiB) and int32 partial sums (16 KiB)
 * on the stack: call them from threads with at least 256 KiB of stack. */
enum {
    BN_TL_ROWS = 32,        /* rows per tile (= BN_ROW_ALIGN) */
    BN_TL_GROUP_SLOTS = 8,  /* s_pad multiple */
    BN_TL1_GROUP_BYTES = 128,
    BN_TL2_GROUP_BYTES = 160
};

typedef struct {
    int32_t block_slots; /* slots per K block (multiple of 8; the tables of one block stay in L1) */
    int32_t chunk_tiles; /* 32-row tiles per pass over a block (int32 partial sums on the stack) */
    int32_t token_block; /* activation rows whose tables are built together (GEMM) */
} bn_tl_tiling;

typedef struct {
    const uint8_t *data; /* bn_tl_bytes(type, m, k) bytes, 4-byte aligned */
    int32_t type;        /* 1 = TL1, 2 = TL2 */
    int32_t m, k;
    int32_t m_pad, k_pad; /* roundup(m, 32); k_pad = bn_pad_cols(k), the activation row length */
    int32_t slots;        /* s_pad */
    float scale;
    bn_tl_tiling tiling;
} bn_tl_matrix;

/* Same contract as bn_i2s_gemm_fn (row_begin % 32 == 0, rows past m untouched). */
typedef void (*bn_tl_gemm_fn)(const bn_tl_matrix *w, const int8_t *x, const float *x_scale,
                              const int32_t *x_sum, int32_t n, float *y, int32_t ldy,
                              int32_t row_begin, int32_t row_end);

typedef struct {
    bn_isa isa;
    const char *name;
    bn_quantize_fn quantize;
    bn_i2s_gemm_fn i2s_gemv; /* n must be 1: decoding */
    bn_i2s_gemm_fn i2s_gemm; /* any n ≥ 1: prompt batches */
    bn_rmsnorm_fn rmsnorm;
    bn_f16_gemm_fn f16_gemm;
    bn_f16_to_f32_fn f16_to_f32;
    bn_dot_fn dot;
    bn_axpy_fn axpy;
    bn_add_fn add;
    bn_softmax_fn softmax;
    bn_gate_fn gate_relu2;
    bn_gate_fn gate_silu;
    bn_rope_fn rope;
    bn_attention_fn attention;
    bn_attention_f16_fn attention_f16;
    bn_q8_gemm_fn q8_gemm;
    bn_qblock_gemm_fn qblock_gemm; /* any n ≥ 1 */
    bn_tl_gemm_fn tl1_gemv; /* n must be 1 */
    bn_tl_gemm_fn tl1_gemm;
    bn_tl_gemm_fn tl2_gemv; /* n must be 1 */
    bn_tl_gemm_fn tl2_gemm;
} bn_kernels;

/* ---- dispatch ------------------------------------------------------------ */

/* Best supported ISA, lowered by BITNET_ISA=scalar|avx2|avx512|avx512vnni|amx|neon|dotprod
 * when set (an unknown or unsupported value is ignored, see bn_dispatch_report). */
const bn_kernels *bn_kernels_best(void);
/* Table for one ISA, or NULL when this CPU/OS or build cannot run it. */
const bn_kernels *bn_kernels_for(bn_isa isa);
int bn_isa_supported(bn_isa isa);
bn_isa bn_isa_detected(void);   /* best the CPU and OS support, ignoring BITNET_ISA */
const char *bn_isa_name(bn_isa isa);
/* Parses "scalar", "avx2", ... ; returns -1 when unknown. */
int bn_isa_parse(const char *name);
/* Whether the streaming x86 kernels (the AVX-512 decoding GEMVs and F16
 * head) issue their own software prefetches: 1 on, 0 off. Chosen once per
 * process from the CPU vendor (off on AMD, where the hardware prefetchers
 * stream these walks faster alone), overridden by BITNET_STREAM_PREFETCH=0|1,
 * or by bn_set_stream_prefetch (-1 returns to that choice). Results do not
 * depend on it; only speed does. */
int bn_stream_prefetch(void);
void bn_set_stream_prefetch(int on);
/* Whether the AVX-512 VNNI block-head kernel runs its GFNI build (a cheaper
 * Q6_K block; bit-identical results): 1 where the CPU has GFNI, else 0.
 * bn_set_qblock_gfni(0) turns it off, 1 turns it back on where the CPU has
 * GFNI (ignored elsewhere), -1 returns to detection; for tests and benchmarks. */
int bn_qblock_gfni(void);
void bn_set_qblock_gfni(int on);
/* Human-readable lines on what was detected and chosen and why; returns the
 * length it needed (snprintf-style, always NUL-terminated when cap > 0). */
size_t bn_dispatch_report(char *buf, size_t cap);

/* ---- I2_S formats ---------------------------------------------------------- */

size_t bn_i2s_max_k(void);
int32_t bn_pad_rows(int32_t m);  /* roundup(m, 32) */
int32_t bn_pad_cols(int32_t k);  /* roundup(k, 32) */
size_t bn_i2r16_bytes(int32_t m, int32_t k);          /* m_pad*k_pad/4 */
size_t bn_i2s_canonical_bytes(int32_t m, int32_t k);  /* ceil(m*k/128)*32, no scale tail */

/* ---- F16 panels (the F16 head's layout, see bn_f16_gemm_fn) ----------------- */

size_t bn_f16_panels_bytes(int32_t m, int32_t k);  /* ceil(m/16)*16*k*2 */
/* Row-major F16 w: (m, k) → panels [panel_begin, panel_end) of dst (bn_f16_panels_bytes(m, k)
 * bytes in all; panel p covers rows [16p, 16p + 16), the rows past m zeroed). Panels are
 * independent, so threads may write disjoint ranges and the caller may release each range
 * of w once its panels are written. */
void bn_f16_panels(const uint16_t *w, int32_t m, int32_t k, int32_t panel_begin, int32_t panel_end, uint16_t *dst);
/* Row r of the row-major matrix back out of its panels: row[c] = w[r][c], c < k. A tied
 * embedding whose file pages were released once its panels were made reads its rows
 * here instead of faulting them back in from the page cache (or the disk). */
void bn_f16_panels_row(const uint16_t *panels, int32_t k, int32_t r, uint16_t *row);

/* Canonical I2_S (m*k codes, flattened blocks, may straddle rows) → I2_R16.
 * src: canonical_bytes(m,k) bytes; dst: i2r16_bytes(m,k) bytes. Code 3 is read as 3. */
void bn_i2s_repack_canonical(const uint8_t *src, int32_t m, int32_t k, uint8_t *dst);
/* Codes equal to 3 (invalid: no ternary value) in I2_R16 bytes; loading refuses a matrix with any. */
int64_t bn_i2r16_count_code3(const uint8_t *data, size_t bytes);
/* Ternary values w: (m, k) in {-1,0,1} → I2_R16 dst. */
void bn_i2r16_pack(const int8_t *w, int32_t m, int32_t k, uint8_t *dst);
/* I2_R16 → ternary values w: (m, k) row-major (the inverse of bn_i2r16_pack;
 * the invalid code 3 reads as +1, as the kernels compute it). */
void bn_i2r16_unpack(const uint8_t *i2r16, int32_t m, int32_t k, int8_t *w);
/* Ternary values → canonical I2_S bytes (no scale tail); codes past m*k in the
 * last block are 1 (weight 0). */
void bn_i2s_canonical_pack(const int8_t *w, int32_t m, int32_t k, uint8_t *dst);
/* Code of element (r, c) in each layout: 0..3 (weight = code - 1). */
int bn_i2s_canonical_code(const uint8_t *src, int32_t k, int32_t r, int32_t c);
int bn_i2r16_code(const uint8_t *dst, int32_t k_pad, int32_t r, int32_t c);

/* Reference GEMM reading the canonical file layout directly (scalar; the
 * executable spec of what the repack must preserve). Same output rule. */
void bn_i2s_canonical_gemm_ref(const uint8_t *src, int32_t m, int32_t k, float w_scale,
                               const int8_t *x, int32_t k_pad, const float *x_scale,
                               const int32_t *x_sum, int32_t n, float *y, int32_t ldy);

/* ---- worker pool ---------------------------------------------------------- */

typedef struct bn_pool bn_pool;
/* fn runs once on each of the pool's threads: ith in 0..nth-1 (0 = caller). */
typedef void (*bn_task_fn)(void *ctx, int32_t ith, int32_t nth);

/* nthreads ≥ 1 (the caller counts as one); NULL when threads cannot start. */
bn_pool *bn_pool_create(int32_t nthreads);
void bn_pool_destroy(bn_pool *pool);
int32_t bn_pool_threads(const bn_pool *pool);
/* Runs fn on every thread and returns when all have finished. Workers spin
 * briefly between calls (a decode step makes hundreds), then sleep. */
void bn_pool_run(bn_pool *pool, bn_task_fn fn, void *ctx);
/* Like bn_pool_run with at most nth threads. */
void bn_pool_run_n(bn_pool *pool, bn_task_fn fn, void *ctx, int32_t nth);
/* Atomically adds n to *counter and returns the value before: tasks that
 * split work dynamically claim units with it, so a thread that starts late
 * (a worker waking up) or runs slow (a shared core) takes fewer units instead
 * of leaving the others idle at the end of a static split. */
int32_t bn_pool_claim(int32_t *counter, int32_t n);

/* Splits rows (in units of 32) over the pool and runs k->i2s_gemv (n == 1)
 * or k->i2s_gemm. */
void bn_i2s_matmul(bn_pool *pool, const bn_kernels *k, const bn_i2s_matrix *w,
                   const int8_t *x, const float *x_scale, const int32_t *x_sum,
                   int32_t n, float *y, int32_t ldy);
/* bn_i2s_matmul of count matrices with the same columns on one input, as one
 * dispatch (their row units split over the pool together); y[i] (n, ldy[i])
 * receives w[i]'s rows. Results equal count separate bn_i2s_matmul calls. */
void bn_i2s_matmul_many(bn_pool *pool, const bn_kernels *k, const bn_i2s_matrix *const *w, int32_t count,
                        const int8_t *x, const float *x_scale, const int32_t *x_sum, int32_t n,
                        float *const *y, const int32_t *ldy);


/* ---- TL1 / TL2 formats ------------------------------------------------------ */

int32_t bn_tl_slots(int32_t type, int32_t k);       /* s_pad */
size_t bn_tl_bytes(int32_t type, int32_t m, int32_t k);
/* Ternary values w: (m, k) in {-1,0,1} → dst: bn_tl_bytes(type, m, k) bytes. */
void bn_tl_pack(int32_t type, const int8_t *w, int32_t m, int32_t k, uint8_t *dst);
/* I2_R16 (bn_i2s_matrix data) → TL. Code 3 (invalid) is read as weight +1;
 * returns how many were seen (0 for a well-formed matrix). */
int64_t bn_tl_from_i2r16(int32_t type, const uint8_t *i2r16, int32_t m, int32_t k, uint8_t *dst);
/* TL → I2_R16 (dst: bn_i2r16_bytes(m, k)), e.g. to load a TL file. An index
 * no packer writes (TL1 > 8, TL2 > 13) is read as weights 0; returns how many
 * were seen (0 for a well-formed matrix). Padding slots and rows are ignored. */
int64_t bn_tl_to_i2r16(int32_t type, const uint8_t *data, int32_t m, int32_t k, uint8_t *dst);
/* Copies TL data made by a packer (e.g. a file checked by bn_tl_to_i2r16)
 * into dst, recomputing TL2's per-row negative-slot counts from the sign
 * bits instead of trusting the source's. */
void bn_tl_adopt(int32_t type, const uint8_t *src, int32_t m, int32_t k, uint8_t *dst);
/* Checks TL data for running in place (no copy): counts index nibbles no packer
 * writes (TL1 > 8, TL2 > 13) in every tile, padding included, and for TL2 the
 * rows whose stored negative-slot count differs from their sign bits. 0: the
 * kernels give the I2_S answer on it; reads exactly bn_tl_bytes(type, m, k). */
int64_t bn_tl_check(int32_t type, const uint8_t *data, int32_t m, int32_t k);
/* Weight (-1, 0, 1) of element (r, c) in a TL matrix. */
int bn_tl_weight(int32_t type, const uint8_t *data, int32_t m, int32_t k, int32_t r, int32_t c);
/* Default tiling for this machine's caches and the shape (n = activation rows). */
bn_tl_tiling bn_tl_default_tiling(int32_t type, int32_t m, int32_t k, int32_t n);
/* Fills a descriptor (data, shape, scale, default tiling for n = 1). */
bn_tl_matrix bn_tl_matrix_make(int32_t type, const uint8_t *data, int32_t m, int32_t k, float scale);

/* Splits rows (in units of 32) over the pool and runs the kernel for w->type. */
void bn_tl_matmul(bn_pool *pool, const bn_kernels *k, const bn_tl_matrix *w, const int8_t *x,
                  const float *x_scale, int32_t n, float *y, int32_t ldy);
/* The same split as a pool task (for callers that own a pool wrapper):
 * ctx is a bn_tl_job. */
typedef struct {
    bn_tl_gemm_fn kernel;
    const bn_tl_matrix *w;
    const int8_t *x;
    const float *x_scale;
    int32_t n, ldy;
    float *y;
} bn_tl_job;
void bn_tl_matmul_task(void *ctx, int32_t ith, int32_t nth);

/* ---- micro-benchmarks (used by `bitnet bench kernels`) ------------------- */

/* Streams bytes [0, len) once with the widest loads of isa; returns a checksum. */
uint64_t bn_bench_read(bn_isa isa, const void *buf, size_t len);
/* Runs iters × 64 independent int8 multiply-accumulate instructions of the
 * widest kind isa has (vpdpbusd zmm, pmaddubsw, sdot); returns the number of
 * int8 multiply-adds performed (ops = 2 × that). */
uint64_t bn_bench_int8_peak(bn_isa isa, uint64_t iters);
/* Runs iters × 12 independent f32 fused multiply-adds of isa's widest vector
 * (the F16 head's operation); returns the number of f32 multiply-adds (one
 * per lane; FLOPs = 2 × that), 0 for the scalar level. */
uint64_t bn_bench_f32_peak(bn_isa isa, uint64_t iters);

#ifdef __cplusplus
}
#endif
#endif /* BITNET_KERNELS_H */
