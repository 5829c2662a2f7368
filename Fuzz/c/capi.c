/* Fuzz target `capi`: the C API (bitnet.h) as a C program uses it — load a model
 * from a file path, tokenize, token bytes, a context and one eval — on the bytes
 * of a tiny model file. Every failure must come back as NULL / -1 with a message
 * in the error buffer, never a crash. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bitnet.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    snprintf(path, sizeof path, "%s/bitnet-fuzz-capi-%d.gguf", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (int)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    close(fd);
    char error[512] = {0};
    bitnet_model_params mp = bitnet_model_default_params();
    mp.threads = 1;
    mp.context_length = 4;
    bitnet_model *model = bitnet_model_load(path, &mp, error, sizeof error);
    unlink(path);
    if (!model) {
        if (error[0] == 0) { fprintf(stderr, "bitnet_model_load failed without a message\n"); abort(); }
        return 0;
    }
    const int32_t vocab = bitnet_vocab_size(model);
    int32_t tokens[8];
    const int32_t n = bitnet_tokenize(model, "Hi <s> \xc3\xa9\xff", 1, tokens, 8);
    if (n >= 0) {
        for (int32_t i = 0; i < (n < 8 ? n : 8); i++)
            if (tokens[i] < 0 || tokens[i] >= vocab) { fprintf(stderr, "tokenize gave id %d (vocab %d)\n", tokens[i], vocab); abort(); }
    }
    char bytes[16];
    const int32_t probe[] = {-1, 0, vocab - 1, vocab, INT32_MAX};
    for (int i = 0; i < 5; i++) {
        memset(bytes, 0x7f, sizeof bytes);
        const int32_t got = bitnet_token_to_bytes(model, probe[i], bytes, 4);
        if ((probe[i] < 0 || probe[i] >= vocab) && got != -1) { fprintf(stderr, "token_to_bytes(%d) = %d\n", probe[i], got); abort(); }
        for (int j = 4; j < 16; j++) if (bytes[j] != 0x7f) { fprintf(stderr, "token_to_bytes wrote past capacity\n"); abort(); }
    }
    bitnet_context *ctx = bitnet_context_new(model, NULL, error, sizeof error);
    if (ctx) {
        float *logits = malloc(sizeof(float) * (size_t)(vocab > 0 ? vocab : 1));
        const int32_t one[] = {0};
        if (bitnet_eval(ctx, one, 1, logits, error, sizeof error) == 0 && bitnet_cache_length(ctx) != 1) abort();
        const int32_t bad[] = {vocab};
        error[0] = 0;
        if (bitnet_eval(ctx, bad, 1, logits, error, sizeof error) != -1 || error[0] == 0) {
            fprintf(stderr, "eval accepted id %d (vocab %d)\n", vocab, vocab);
            abort();
        }
        free(logits);
        bitnet_context_free(ctx);
    }
    bitnet_model_free(model);
    return 0;
}
