/* A C program on the installed library:
 *   cc generate.c $(pkg-config --cflags --libs bitnet) -o generate && ./generate MODEL.gguf "prompt"
 * Loads a model, tokenizes, runs two conversations (contexts) on it and generates. */
#include <stdio.h>
#include <stdlib.h>
#include <bitnet.h>

static int32_t print_piece(const char *text, int32_t token, void *user) {
    (void)token;
    fputs(text, stdout);
    ++*(int *)user;
    return 0; /* non-zero would stop */
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT\n", argv[0]);
        return 2;
    }
    char err[512];
    bitnet_model_params mp = bitnet_model_default_params();
    mp.threads = 2;
    mp.context_length = 256;
    bitnet_model *model = bitnet_model_load(argv[1], &mp, err, sizeof err);
    if (!model) {
        fprintf(stderr, "load failed: %s\n", err);
        return 1;
    }
    int32_t ids[64];
    const int32_t n = bitnet_tokenize(model, argv[2], 1, ids, 64);
    printf("bitnet %s (ABI %d): %d prompt tokens\n", bitnet_version(), bitnet_abi_version(), n);

    bitnet_context *first = bitnet_context_new(model, NULL, err, sizeof err);
    bitnet_context *second = bitnet_context_new(model, NULL, err, sizeof err);
    if (!first || !second) {
        fprintf(stderr, "context failed: %s\n", err);
        return 1;
    }
    int pieces = 0;
    const int32_t a = bitnet_generate(first, argv[2], 24, 0.0f, 1, print_piece, &pieces, err, sizeof err);
    printf("\n");
    const int32_t b = bitnet_generate(second, argv[2], 24, 0.0f, 1, NULL, NULL, err, sizeof err);
    if (a < 0 || b < 0) {
        fprintf(stderr, "generate failed: %s\n", err);
        return 1;
    }
    /* greedy, same prompt: both conversations generate the same number of tokens */
    printf("generated %d and %d tokens; %d positions cached in the first context\n", a, b, bitnet_cache_length(first));
    bitnet_context_free(first);
    bitnet_context_free(second);
    bitnet_model_free(model);
    return a == b && pieces == a ? 0 : 1;
}
