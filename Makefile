# bitnet.swift — build, test and benchmark.
#   make            release build (.build/release/bitnet)
#   make test       installs what is missing (libopenblas-dev; qemu + arm64 cross libc
#                   for the NEON run), then the C kernel harness (x86 and arm64 under
#                   qemu) and `swift test`
#   make bench      kernel benchmark (release)
#   make sanitize   C harness under ASan+UBSan, swift test under ASan, the concurrent tests under TSan
SHELL := /bin/bash
SWIFT ?= swift
CC := $(shell command -v clang 2>/dev/null || echo cc)
BUILD_DIR := build
KERNEL_SRCS := $(wildcard CKernels/src/*.c CKernels/src/*/*.c)
KERNEL_HDRS := $(wildcard CKernels/include/*.h CKernels/src/*.h) Tests/c/harness.h
CFLAGS_TEST := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -ICKernels/include -ICKernels/src
ARM_CROSS := --target=aarch64-linux-gnu -static -fuse-ld=lld -isystem /usr/aarch64-linux-gnu/include \
	-B/usr/aarch64-linux-gnu/lib -B/usr/lib/gcc-cross/aarch64-linux-gnu/12 \
	-L/usr/aarch64-linux-gnu/lib -L/usr/lib/gcc-cross/aarch64-linux-gnu/12

.PHONY: all build deps deps-arm64 test test-c test-arm64 test-swift test-capi test-golden demo sanitize bench install clean
PREFIX ?= /usr/local
SWIFT_RUNTIME := $(shell $(SWIFT) -print-target-info 2>/dev/null | sed -n '/runtimeLibraryPaths/{n;s/[ ",]//g;p;}')

all: build

build: deps
	$(SWIFT) build -c release --product bitnet

# OpenBLAS is the fp32 baseline the benchmark compares against; the CLI links it.
deps:
	@if ! pkg-config --exists openblas 2>/dev/null; then \
		echo "installing libopenblas-dev and pkg-config (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas-dev pkg-config >/dev/null; \
	fi

# Optional: the arm64 kernels run under qemu-user when these install; otherwise skipped with a note.
deps-arm64:
	@if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libc.a ] \
		|| [ ! -d /usr/lib/gcc-cross/aarch64-linux-gnu/12 ]; then \
		echo "installing qemu-user and the arm64 cross libc (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq qemu-user libc6-dev-arm64-cross \
			libgcc-12-dev-arm64-cross >/dev/null) || echo "note: arm64 tools unavailable"; \
	fi

$(BUILD_DIR)/test_kernels: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_kernels.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O2 -g $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_kernels.c -lm -lpthread -o $@

$(BUILD_DIR)/test_kernels_asan: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_kernels.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
		$(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_kernels.c -lm -lpthread -o $@

$(BUILD_DIR)/test_kernels_arm64: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_kernels.c
	@mkdir -p $(BUILD_DIR)
	$(CC) $(ARM_CROSS) -O2 $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_kernels.c -lm -lpthread -o $@

$(BUILD_DIR)/test_ops: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_ops.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O2 -g $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_ops.c -lm -lpthread -o $@

$(BUILD_DIR)/test_ops_asan: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_ops.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
		$(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_ops.c -lm -lpthread -o $@

$(BUILD_DIR)/test_ops_arm64: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_ops.c
	@mkdir -p $(BUILD_DIR)
	$(CC) $(ARM_CROSS) -O2 $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_ops.c -lm -lpthread -o $@

$(BUILD_DIR)/test_tl: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_tl.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O2 -g $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_tl.c -lm -lpthread -o $@

$(BUILD_DIR)/test_tl_asan: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_tl.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
		$(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_tl.c -lm -lpthread -o $@

$(BUILD_DIR)/test_tl_arm64: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_tl.c
	@mkdir -p $(BUILD_DIR)
	$(CC) $(ARM_CROSS) -O2 $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_tl.c -lm -lpthread -o $@

test-c: $(BUILD_DIR)/test_kernels $(BUILD_DIR)/test_ops $(BUILD_DIR)/test_tl
	$(BUILD_DIR)/test_kernels
	$(BUILD_DIR)/test_ops
	$(BUILD_DIR)/test_tl

# Cross-compiles the C harness for arm64 (NEON and dotprod kernels) and runs it under qemu.
test-arm64: deps-arm64
	@if command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/libc.a ]; then \
		$(MAKE) --no-print-directory $(BUILD_DIR)/test_kernels_arm64 $(BUILD_DIR)/test_ops_arm64 $(BUILD_DIR)/test_tl_arm64 && \
		qemu-aarch64 $(BUILD_DIR)/test_kernels_arm64 && qemu-aarch64 $(BUILD_DIR)/test_ops_arm64 && \
		qemu-aarch64 $(BUILD_DIR)/test_tl_arm64; \
	else echo "skipping arm64 kernel run: qemu-user / arm64 libc not available"; fi

# XCTest only (the suite has no swift-testing tests), with a plain closing count line.
test-swift: deps
	$(SWIFT) build --build-tests
	@mkdir -p $(BUILD_DIR)
	set -o pipefail; $(SWIFT) test --skip-build --disable-swift-testing 2>&1 | tee $(BUILD_DIR)/swift-test.log
	@grep -E "Test Suite 'All tests' (passed|failed)" -A1 $(BUILD_DIR)/swift-test.log | \
		sed -nE 's/.*Executed ([0-9]+) tests?, with (([0-9]+) tests? skipped and )?([0-9]+) failures?.*/\1 \3 \4/p' | \
		tail -1 | awk '{ s = ($$2 == "" ? 0 : $$2); if (NF == 2) { f = $$2; s = 0 } else f = $$3; \
			print "swift test: " ($$1 - s - f) " passed, " f " failed, " s " skipped" }'

# The engine's C API from a C program, on a tiny synthetic model with the Llama-3 tokenizer.
test-capi: deps
	$(SWIFT) build --product BitNetCAPI
	$(SWIFT) build --product bitnet
	@mkdir -p $(BUILD_DIR)
	.build/debug/bitnet synth --arch bitnet-b1.58 --hidden 128 --layers 2 --heads 4 --kv-heads 2 --ffn 256 \
		--vocab-size 128256 --ctx 64 --vocab Tests/BitNetTests/Fixtures/tokenizers/ggml-vocab-llama-bpe.gguf \
		-o $(BUILD_DIR)/capi-model.gguf
	$(CC) -O1 -g -std=c11 -Wall -Wextra -Werror -ISources/BitNetCAPIHeader/include Tests/c/test_capi.c \
		-L.build/debug -lBitNetCAPI -Wl,-rpath,$(CURDIR)/.build/debug -Wl,-rpath,$(SWIFT_RUNTIME) -lm \
		-o $(BUILD_DIR)/test_capi
	$(BUILD_DIR)/test_capi $(BUILD_DIR)/capi-model.gguf

# The shipped model's whole held-out perplexity (release CLI) against the reference's golden value.
test-golden: deps
	$(SWIFT) build -c release --product bitnet
	tools/check_golden_perplexity.sh .build/release/bitnet
	tools/check_bitnetcpp_tl.sh .build/release/bitnet

# The README's first command: generate with the embedded default model.
demo: build
	.build/release/bitnet generate -p "KING HENRY." -n 120 --temp 0.8 --seed 7

test: deps test-c test-arm64 test-capi test-golden test-swift

sanitize: deps $(BUILD_DIR)/test_kernels_asan $(BUILD_DIR)/test_ops_asan $(BUILD_DIR)/test_tl_asan
	$(BUILD_DIR)/test_kernels_asan
	$(BUILD_DIR)/test_ops_asan
	$(BUILD_DIR)/test_tl_asan
	# Memory errors only: the Swift runtime never frees weak-reference side tables, so
	# LeakSanitizer would report every XCTest case object; the C harnesses above check leaks.
	ASAN_OPTIONS=detect_leaks=0 BITNET_SANITIZER=address \
		$(SWIFT) test --sanitize=address --scratch-path .build-asan
	# Data races: the model's step lock, sessions from many threads, the batch scheduler's
	# thread and the server's connection threads.
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --disable-swift-testing \
		--filter 'SessionTests|BatchSchedulerTests|ServerTests'

bench: build
	.build/release/bitnet bench kernels

# Installs the C API: libBitNetCAPI.so (engine), libbitnet_kernels.a (kernels), the headers and
# bitnet.pc (pkg-config). The library needs the Swift runtime at $(SWIFT_RUNTIME) (rpath).
install: deps
	$(SWIFT) build -c release --product BitNetCAPI
	@mkdir -p $(BUILD_DIR)/kernels-obj $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	for f in $(KERNEL_SRCS); do $(CC) -O2 -fPIC -std=c11 -D_GNU_SOURCE -ICKernels/include -ICKernels/src \
		-c $$f -o $(BUILD_DIR)/kernels-obj/$$(echo $$f | tr / _).o || exit 1; done
	ar rcs $(BUILD_DIR)/libbitnet_kernels.a $(BUILD_DIR)/kernels-obj/*.o
	install -m 644 $(BUILD_DIR)/libbitnet_kernels.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 .build/release/libBitNetCAPI.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 Sources/BitNetCAPIHeader/include/bitnet.h CKernels/include/bitnet_kernels.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|; s|-Wl,-rpath,$${libdir}|-Wl,-rpath,$${libdir} -Wl,-rpath,$(SWIFT_RUNTIME)|' \
		Sources/BitNetC/bitnet.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/bitnet.pc

clean:
	rm -rf $(BUILD_DIR) .build .build-asan .build-tsan
