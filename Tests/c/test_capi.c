/* The engine's C API from C: load, tokenize, eval, generate, errors.
 * Usage: test_capi MODEL.gguf (a model with a tokenizer, e.g. from bitnet synth --vocab). */
#include <math.h>
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

    bitnet_params params = {0};
    params.threads = 2;
    params.context_length = 64;
    bitnet_model *m = bitnet_model_load(argv[1], &params, err, sizeof err);
    CHECK(m != NULL, "load: %s", err);
    if (!m) return 1;
    CHECK(bitnet_context_length(m) == 64, "context %d", bitnet_context_length(m));
    const int32_t vocab = bitnet_vocab_size(m);
    CHECK(vocab > 0, "vocab");

    int32_t ids[16];
    const int32_t n = bitnet_tokenize(m, "Hello world", 1, ids, 16);
    CHECK(n == 3 && ids[0] == 128000 && ids[1] == 9906 && ids[2] == 1917, "tokenize: n=%d", n);
    CHECK(bitnet_tokenize(m, "Hello world", 1, NULL, 0) == 3, "tokenize count only");
    char piece[32];
    CHECK(bitnet_token_to_bytes(m, 9906, piece, sizeof piece) == 5 && strcmp(piece, "Hello") == 0, "piece %s", piece);

    float *logits = malloc(sizeof(float) * (size_t)vocab);
    CHECK(bitnet_eval(m, ids, n, logits, err, sizeof err) == 0, "eval: %s", err);
    CHECK(isfinite(logits[0]) && bitnet_cache_length(m) == 3, "logits finite, cache 3");
    int32_t bad = vocab + 5;
    CHECK(bitnet_eval(m, &bad, 1, logits, err, sizeof err) == -1 && strstr(err, "outside the vocabulary"), "bad id: %s", err);
    bitnet_reset(m);
    CHECK(bitnet_cache_length(m) == 0, "reset");

    int seen = 0;
    const int32_t generated = bitnet_generate(m, "Hello", 6, 0.0f, 1, count_tokens, &seen, err, sizeof err);
    CHECK(generated >= 1 && generated <= 6 && seen == generated, "generate %d tokens, callback saw %d (%s)", generated, seen, err);
    int32_t long_prompt[80];
    for (int i = 0; i < 80; i++) long_prompt[i] = 1;
    bitnet_reset(m);
    CHECK(bitnet_eval(m, long_prompt, 80, logits, err, sizeof err) == -1 && strstr(err, "context"), "overflow: %s", err);
    /* an f16 KV cache: the same model within the cache's rounding */
    bitnet_reset(m);
    CHECK(bitnet_eval(m, ids, n, logits, err, sizeof err) == 0, "eval: %s", err);
    params.kv_f16 = 1;
    bitnet_model *h = bitnet_model_load(argv[1], &params, err, sizeof err);
    CHECK(h != NULL, "load with kv_f16: %s", err);
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
        bitnet_model_free(h);
    }
    free(logits);
    bitnet_model_free(m);
    printf("%s: %d passed, %d failed\n", bitnet_version(), checks - failures, failures);
    return failures ? 1 : 0;
}
