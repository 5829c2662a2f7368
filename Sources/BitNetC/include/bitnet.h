/*
 * bitnet.h — C API of the bitnet.swift engine (library libBitNetCAPI, pkg-config
 * `bitnet`). Load a GGUF model (bitnet.cpp's I2_S files, llama.cpp TQ1_0/TQ2_0,
 * or F16/F32 projections), tokenize, evaluate logits, generate text.
 *
 * Every function that can fail returns NULL or a negative value and, when
 * given an error buffer, writes a message naming the file, field or value.
 * A model is not thread-safe: use one model per thread (each has its own
 * KV cache and worker pool).
 */
#ifndef BITNET_H
#define BITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bitnet_model bitnet_model;

/* Zero-initialize for the defaults: bitnet_params p = {0}; */
typedef struct {
    int32_t threads;         /* 0: every online core */
    int32_t context_length;  /* 0: the model's, capped to fit memory */
    int32_t head_q8;         /* 1: int8 output head (faster, logits shift slightly) */
    int32_t kv_f16;          /* 1: f16 KV cache (half the memory; logits move by ~1e-3) */
} bitnet_params;

const char *bitnet_version(void);

/* params may be NULL (defaults). */
bitnet_model *bitnet_model_load(const char *path, const bitnet_params *params, char *error, size_t error_size);
void bitnet_model_free(bitnet_model *model);

int32_t bitnet_vocab_size(const bitnet_model *model);
int32_t bitnet_context_length(const bitnet_model *model);
/* Positions in the KV cache; bitnet_reset empties it. */
int32_t bitnet_cache_length(const bitnet_model *model);
void bitnet_reset(bitnet_model *model);

/* Writes up to `capacity` ids; returns the number of ids (which may exceed
 * capacity: call again with a larger buffer), or -1 when the model has no tokenizer. */
int32_t bitnet_tokenize(const bitnet_model *model, const char *text, int32_t add_bos, int32_t *tokens, int32_t capacity);

/* The UTF-8 bytes of one token (NUL-terminated when room); returns the byte count or -1. */
int32_t bitnet_token_to_bytes(const bitnet_model *model, int32_t token, char *buffer, int32_t capacity);

/* Appends `tokens` to the cache and writes the last token's logits (vocab floats).
 * Returns 0, or -1 with a message (context full, id out of range, ...). */
int32_t bitnet_eval(bitnet_model *model, const int32_t *tokens, int32_t n, float *logits, char *error, size_t error_size);

/* Called with each generated token's text (may be empty while a UTF-8
 * character is incomplete); return non-zero to stop. */
typedef int32_t (*bitnet_token_callback)(const char *text, int32_t token, void *user);

/* Tokenizes `prompt` (BOS added as the model asks), appends it to the cache and
 * generates up to max_tokens (temperature 0 = greedy). Returns the number of
 * generated tokens, or -1 with a message. */
int32_t bitnet_generate(bitnet_model *model, const char *prompt, int32_t max_tokens, float temperature,
                        uint64_t seed, bitnet_token_callback callback, void *user, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif
#endif /* BITNET_H */
