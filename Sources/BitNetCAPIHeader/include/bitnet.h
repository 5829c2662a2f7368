/*
 * bitnet.h — C API of the bitnet.swift engine (library libBitNetCAPI, pkg-config
 * `bitnet`). Load a GGUF model (bitnet.cpp's I2_S files, llama.cpp TQ1_0/TQ2_0,
 * or F16/F32 projections) once, then run any number of conversations on it,
 * each a bitnet_context with its own KV cache (llama.h's model / context split).
 *
 * Every function that can fail returns NULL or a negative value and, when
 * given an error buffer, writes a message naming the file, field or value.
 *
 * Threads: a model and its contexts may be used from any thread. Calls on
 * contexts of one model are serialized by the model (its worker pool runs one
 * step at a time); one context must not run two generations at once — the
 * second is refused with an error, never raced.
 *
 * ABI: the params structs start with struct_size. Fill them from the
 * *_default_params() functions, which set it; fields added in later versions
 * go at the end, and the library reads only the fields a caller's struct_size
 * covers, so programs built against this header keep working.
 */
#ifndef BITNET_H
#define BITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a function or struct changes incompatibly (the library's SONAME follows). */
#define BITNET_ABI_VERSION 2

typedef struct bitnet_model bitnet_model;
typedef struct bitnet_context bitnet_context;

typedef struct {
    uint32_t struct_size;    /* sizeof(bitnet_model_params) */
    int32_t threads;         /* 0: every online core */
    int32_t head_q8;         /* 1: int8 output head (faster, logits shift slightly) */
    int32_t context_length;  /* contexts' default length; 0: the model's, capped to fit memory */
    int32_t kv_f16;          /* contexts' default KV cache: 1 = f16 (half the memory; logits move by ~1e-3) */
} bitnet_model_params;

typedef struct {
    uint32_t struct_size;    /* sizeof(bitnet_context_params) */
    int32_t context_length;  /* 0: the model's default */
    int32_t kv_f16;          /* -1: the model's default, 0: f32, 1: f16 */
} bitnet_context_params;

/* "MAJOR.MINOR.PATCH" of the library, and the ABI version it implements. */
const char *bitnet_version(void);
int32_t bitnet_abi_version(void);

bitnet_model_params bitnet_model_default_params(void);
bitnet_context_params bitnet_context_default_params(void);

/* params may be NULL (defaults). */
bitnet_model *bitnet_model_load(const char *path, const bitnet_model_params *params, char *error, size_t error_size);
/* The model's memory is released once its last context is freed too. */
void bitnet_model_free(bitnet_model *model);

int32_t bitnet_vocab_size(const bitnet_model *model);

/* Writes up to `capacity` ids; returns the number of ids (which may exceed
 * capacity: call again with a larger buffer), or -1 when the model has no tokenizer. */
int32_t bitnet_tokenize(const bitnet_model *model, const char *text, int32_t add_bos, int32_t *tokens, int32_t capacity);

/* The UTF-8 bytes of one token (NUL-terminated when room); returns the byte count or -1. */
int32_t bitnet_token_to_bytes(const bitnet_model *model, int32_t token, char *buffer, int32_t capacity);

/* A new conversation on `model` (params may be NULL). */
bitnet_context *bitnet_context_new(bitnet_model *model, const bitnet_context_params *params, char *error,
                                   size_t error_size);
void bitnet_context_free(bitnet_context *context);

int32_t bitnet_context_length(const bitnet_context *context);
/* Positions in the KV cache; bitnet_reset empties it. */
int32_t bitnet_cache_length(const bitnet_context *context);
void bitnet_reset(bitnet_context *context);

/* Appends `tokens` to the context's cache and writes the last token's logits (vocab floats).
 * Returns 0, or -1 with a message (context full, id out of range, ...). */
int32_t bitnet_eval(bitnet_context *context, const int32_t *tokens, int32_t n, float *logits, char *error,
                    size_t error_size);

/* Called with each generated token's text (may be empty while a UTF-8
 * character is incomplete); return non-zero to stop. */
typedef int32_t (*bitnet_token_callback)(const char *text, int32_t token, void *user);

/* Tokenizes `prompt` (BOS added as the model asks), appends it to the context's cache and
 * generates up to max_tokens (temperature 0 = greedy). Returns the number of
 * generated tokens, or -1 with a message. */
int32_t bitnet_generate(bitnet_context *context, const char *prompt, int32_t max_tokens, float temperature,
                        uint64_t seed, bitnet_token_callback callback, void *user, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif
#endif /* BITNET_H */
