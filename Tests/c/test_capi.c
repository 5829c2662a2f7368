/* The engine's C API from C: load, contexts, tokenize, eval, generate, errors, ABI.
 * Usage: test_capi MODEL.gguf (a model with a tokenizer, e.g. from bitnet synth --vocab). */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "bitnet.h"
#define HARNESS_SEED 1
#include "harness.h"

static int count_tokens(const char *text, int32_t token, void *user) {
    (void)text;
    (void)token;
    ++*(int *)user;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    char err[512] = {0};
    CHECK(bitnet_model_load("/nonexistent.gguf", NULL, err, sizeof err) == NULL, "missing file fails");
    CHECK(strstr(err, "/nonexistent.gguf") != NULL, "error names the file: %s", err);

    bitnet_model_params params = bitnet_model_default_params();
    CHECK(params.struct_size == sizeof params, "default params carry their size");
    params.threads = 2;
    params.context_length = 64;
    bitnet_model *m = bitnet_model_load(argv[1], &params, err, sizeof err);
    CHECK(m != NULL, "load: %s", err);
    if (!m) return 1;
    CHECK(bitnet_abi_version() == BITNET_ABI_VERSION, "ABI %d", bitnet_abi_version());
    const int32_t vocab = bitnet_vocab_size(m);
    CHECK(vocab > 0, "vocab");
    bitnet_context *ctx = bitnet_context_new(m, NULL, err, sizeof err);
    CHECK(ctx != NULL, "context: %s", err);
    if (!ctx) return 1;
    CHECK(bitnet_context_length(ctx) == 64, "context %d", bitnet_context_length(ctx));

    int32_t ids[16];
    const int32_t n = bitnet_tokenize(m, "Hello world", 1, ids, 16);
    CHECK(n == 3 && ids[0] == 128000 && ids[1] == 9906 && ids[2] == 1917, "tokenize: n=%d", n);
    CHECK(bitnet_tokenize(m, "Hello world", 1, NULL, 0) == 3, "tokenize count only");
    char piece[32];
    CHECK(bitnet_token_to_bytes(m, 9906, piece, sizeof piece) == 5 && strcmp(piece, "Hello") == 0, "piece %s", piece);

    float *logits = malloc(sizeof(float) * (size_t)vocab);
    CHECK(bitnet_eval(ctx, ids, n, logits, err, sizeof err) == 0, "eval: %s", err);
    CHECK(isfinite(logits[0]) && bitnet_cache_length(ctx) == 3, "logits finite, cache 3");
    int32_t bad = vocab + 5;
    CHECK(bitnet_eval(ctx, &bad, 1, logits, err, sizeof err) == -1 && strstr(err, "outside the vocabulary"), "bad id: %s", err);
    CHECK(bitnet_cache_length(ctx) == 3, "a refused eval leaves the cache as it was");

    /* two conversations on one model, interleaved, each equal to its run alone */
    bitnet_context_params cp = bitnet_context_default_params();
    cp.context_length = 16;
    bitnet_context *other = bitnet_context_new(m, &cp, err, sizeof err);
    CHECK(other != NULL && bitnet_context_length(other) == 16, "second context: %s", err);
    float *a = malloc(sizeof(float) * (size_t)vocab), *b = malloc(sizeof(float) * (size_t)vocab);
    int32_t seq_a[3] = {5, 6, 7}, seq_b[2] = {900, 901};
    bitnet_reset(ctx);
    CHECK(bitnet_eval(ctx, seq_a, 2, a, err, sizeof err) == 0, "a[0..1]: %s", err);
    CHECK(bitnet_eval(other, seq_b, 2, b, err, sizeof err) == 0, "b: %s", err);
    CHECK(bitnet_eval(ctx, seq_a + 2, 1, a, err, sizeof err) == 0, "a[2]: %s", err);
    bitnet_reset(ctx);
    CHECK(bitnet_eval(ctx, seq_a, 3, logits, err, sizeof err) == 0, "a alone: %s", err);
    CHECK(memcmp(a, logits, sizeof(float) * (size_t)vocab) == 0, "interleaved conversation == alone, bit for bit");
    /* an older caller's smaller struct: only the fields its size covers are read */
    bitnet_context_params old = {0};
    old.struct_size = (uint32_t)offsetof(bitnet_context_params, kv_f16);
    old.context_length = 8;
    old.kv_f16 = 12345; /* beyond struct_size: must be ignored */
    bitnet_context *small = bitnet_context_new(m, &old, err, sizeof err);
    CHECK(small != NULL && bitnet_context_length(small) == 8, "struct_size-limited params: %s", err);
    bitnet_context_free(small);
    free(a);
    free(b);
    bitnet_reset(ctx);

    int seen = 0;
    const int32_t generated = bitnet_generate(ctx, "Hello", 6, 0.0f, 1, count_tokens, &seen, err, sizeof err);
    CHECK(generated >= 1 && generated <= 6 && seen == generated, "generate %d tokens, callback saw %d (%s)", generated, seen, err);
    int32_t long_prompt[80];
    for (int i = 0; i < 80; i++) long_prompt[i] = 1;
    bitnet_reset(ctx);
    CHECK(bitnet_eval(ctx, long_prompt, 80, logits, err, sizeof err) == -1 && strstr(err, "context"), "overflow: %s", err);
    /* an f16 KV cache: the same model within the cache's rounding */
    bitnet_reset(ctx);
    CHECK(bitnet_eval(ctx, ids, n, logits, err, sizeof err) == 0, "eval: %s", err);
    cp.context_length = 0;
    cp.kv_f16 = 1;
    bitnet_context *h = bitnet_context_new(m, &cp, err, sizeof err);
    CHECK(h != NULL, "context with kv_f16: %s", err);
    if (h) {
        float *half_logits = malloc(sizeof(float) * (size_t)vocab);
        CHECK(bitnet_eval(h, ids, n, half_logits, err, sizeof err) == 0, "eval f16 cache: %s", err);
        double worst = 0, top = 0;
        for (int32_t i = 0; i < vocab; i++) {
            const double d = fabs((double)half_logits[i] - logits[i]);
            worst = d > worst ? d : worst;
            top = fabs(logits[i]) > top ? fabs(logits[i]) : top;
        }
        CHECK(worst <= 0.02 * top, "f16 cache logits within %.3g of f32 (top |logit| %.3g)", worst, top);
        free(half_logits);
        bitnet_context_free(h);
    }
    /* a context keeps its model alive after bitnet_model_free */
    bitnet_model_free(m);
    m = NULL;
    CHECK(bitnet_eval(other, seq_b, 1, b = malloc(sizeof(float) * (size_t)vocab), err, sizeof err) == 0,
          "context outlives the model handle: %s", err);
    free(b);
    bitnet_context_free(other);
    bitnet_context_free(ctx);
    free(logits);
    printf("%s: %d passed, %d failed\n", bitnet_version(), checks - failures, failures);
    return failures ? 1 : 0;
}
