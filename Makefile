# bitnet.swift — build, test and benchmark.
#   make            release build (.build/release/bitnet, and bitnet-server beside it)
#   make test       installs what is missing (libopenblas-dev; qemu + arm64 cross libc
#                   for the NEON run), then the C kernel harness (x86 and arm64 under
#                   qemu), `swift test` and the server package's tests (test-server), the
#                   official `openai` Python client against bitnet-server (test-openai) and a
#                   30 s loopback load test with slow-loris connections (test-load-short)
#   make test-load  the load test for 2 minutes (32 clients, half streaming; RSS, p50/p99)
#   make test-scale 2 bitnet-server replicas behind nginx (installed if missing), one killed mid-run
#   make check-api  the public API of BitNet, BitNetConvert, BitNetJSON against docs/api (in make test)
#   make docs       the DocC catalog (Sources/BitNet/BitNet.docc) into build/docs, warnings fail (in make test)
#   make bench      kernel benchmark (release)
#   make sanitize   C harness under ASan+UBSan, swift test under ASan, the concurrent tests under TSan
SHELL := /bin/bash
SWIFT ?= swift
CC := $(shell command -v clang 2>/dev/null || echo cc)
BUILD_DIR := build
KERNEL_SRCS := $(wildcard CKernels/src/*.c CKernels/src/*/*.c)
KERNEL_HDRS := $(wildcard CKernels/include/*.h CKernels/src/*.h CKernels/src/*/*.h) Tests/c/harness.h
CFLAGS_TEST := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -ICKernels/include -ICKernels/src
ARM_CROSS := --target=aarch64-linux-gnu -static -fuse-ld=lld -isystem /usr/aarch64-linux-gnu/include \
	-B/usr/aarch64-linux-gnu/lib -B/usr/lib/gcc-cross/aarch64-linux-gnu/12 \
	-L/usr/aarch64-linux-gnu/lib -L/usr/lib/gcc-cross/aarch64-linux-gnu/12

.PHONY: all build build-server deps deps-arm64 test test-c test-arm64 test-swift test-server build-server-debug test-openai test-load-short test-load test-scale test-capi test-golden test-examples check-api api-baseline docs demo sanitize bench install clean
PREFIX ?= /usr/local
SWIFT_RUNTIME := $(shell $(SWIFT) -print-target-info 2>/dev/null | sed -n '/runtimeLibraryPaths/{n;s/[ ",]//g;p;}')

all: build

build: deps build-server
	$(SWIFT) build -c release --product bitnet

# `bitnet serve` runs bitnet-server, its own package (Server/: Hummingbird, SwiftNIO) so the
# library never links NIO. Copied (not linked) beside bitnet, so it survives a clean of Server/.build.
build-server: deps
	$(SWIFT) build -c release --package-path Server --product bitnet-server
	@mkdir -p .build/release
	install -m 755 Server/.build/release/bitnet-server .build/release/bitnet-server

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

$(BUILD_DIR)/test_qblock: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_qblock.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O2 -g $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_qblock.c -lm -lpthread -o $@

$(BUILD_DIR)/test_qblock_asan: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_qblock.c
	@mkdir -p $(BUILD_DIR)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
		$(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_qblock.c -lm -lpthread -o $@

$(BUILD_DIR)/test_qblock_arm64: $(KERNEL_SRCS) $(KERNEL_HDRS) Tests/c/test_qblock.c
	@mkdir -p $(BUILD_DIR)
	$(CC) $(ARM_CROSS) -O2 $(CFLAGS_TEST) $(KERNEL_SRCS) Tests/c/test_qblock.c -lm -lpthread -o $@

test-c: $(BUILD_DIR)/test_kernels $(BUILD_DIR)/test_ops $(BUILD_DIR)/test_tl $(BUILD_DIR)/test_qblock
	$(BUILD_DIR)/test_kernels
	$(BUILD_DIR)/test_ops
	$(BUILD_DIR)/test_tl
	$(BUILD_DIR)/test_qblock

# Cross-compiles the C harness for arm64 (NEON and dotprod kernels) and runs it under qemu.
test-arm64: deps-arm64
	@if command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/libc.a ]; then \
		$(MAKE) --no-print-directory $(BUILD_DIR)/test_kernels_arm64 $(BUILD_DIR)/test_ops_arm64 $(BUILD_DIR)/test_tl_arm64 $(BUILD_DIR)/test_qblock_arm64 && \
		qemu-aarch64 $(BUILD_DIR)/test_kernels_arm64 && qemu-aarch64 $(BUILD_DIR)/test_ops_arm64 && \
		qemu-aarch64 $(BUILD_DIR)/test_tl_arm64 && qemu-aarch64 $(BUILD_DIR)/test_qblock_arm64; \
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

# The server package's tests (Hummingbird, in-process on 127.0.0.1): one debug build.
test-server: deps
	$(SWIFT) build --package-path Server --build-tests
	@mkdir -p $(BUILD_DIR)
	set -o pipefail; $(SWIFT) test --package-path Server --skip-build --disable-swift-testing 2>&1 | tee $(BUILD_DIR)/server-test.log
	@grep -E "Test Suite 'All tests' (passed|failed)" -A1 $(BUILD_DIR)/server-test.log | sed -n 's/^[[:space:]]*//;2p'

# The server from outside, driven from Python (tools/): the official `openai` client on every
# route (test-openai), a loopback load test — 32 keep-alive clients, half streaming, 0 errors,
# flat RSS, then 64 slow-loris connections that must not delay a request by 100 ms — short in
# `make test` (test-load-short, ~30 s) or for 2 minutes (test-load), and 2 replicas behind
# nginx with one killed mid-run (test-scale; not in `make test`, it installs nginx). They run
# the debug bitnet-server test-server builds (BITNET_SERVER=path for another); the openai
# client comes from PyPI into a venv made once.
VENV_OPENAI := .build/venv-openai
$(VENV_OPENAI)/.installed:
	python3 -m venv $(VENV_OPENAI)
	$(VENV_OPENAI)/bin/pip install -q openai
	touch $@

build-server-debug: deps
	$(SWIFT) build --package-path Server --product bitnet-server

test-openai: $(VENV_OPENAI)/.installed build-server-debug
	timeout 300 $(VENV_OPENAI)/bin/python tools/test_openai_client.py

test-load-short: build-server-debug
	timeout 120 python3 tools/load_test.py --warmup 5 --duration 12

test-load: build-server-debug
	timeout 600 python3 tools/load_test.py --warmup 15 --duration 120

test-scale: $(VENV_OPENAI)/.installed build-server-debug
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "installing nginx (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nginx >/dev/null; }
	timeout 300 $(VENV_OPENAI)/bin/python tools/scale_test.py

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

# The three ways in for an app (Examples/): a Swift package depending on this one by path
# (streams with the async API), a C program built with pkg-config against `make install`
# into a temporary prefix, and Python ctypes on the installed shared library.
EXAMPLES_PREFIX := $(CURDIR)/$(BUILD_DIR)/examples-prefix
SHIPPED_MODEL := Sources/BitNetCLI/Resources/bitnet-shakespeare-i2_s.gguf
test-examples: deps
	$(MAKE) --no-print-directory install PREFIX=$(EXAMPLES_PREFIX)
	cd Examples/swift-stream && $(SWIFT) build --scratch-path $(CURDIR)/.build-examples
	.build-examples/debug/StreamExample $(SHIPPED_MODEL) "KING HENRY." 24
	$(CC) -std=c11 -Wall -Wextra -Werror Examples/c/generate.c \
		$$(PKG_CONFIG_PATH=$(EXAMPLES_PREFIX)/lib/pkgconfig pkg-config --cflags --libs bitnet) -o $(BUILD_DIR)/example-c
	$(BUILD_DIR)/example-c $(SHIPPED_MODEL) "KING HENRY."
	python3 Examples/python/generate.py $(EXAMPLES_PREFIX)/lib/libBitNetCAPI.so $(SHIPPED_MODEL) "KING HENRY."

# The shipped model's whole held-out perplexity (release CLI) against the reference's golden value.
test-golden: deps
	$(SWIFT) build -c release --product bitnet
	tools/check_golden_perplexity.sh .build/release/bitnet
	tools/check_bitnetcpp_tl.sh .build/release/bitnet

# The public API of each library product, one declaration per line (tools/api/public_surface.py
# over swift-symbolgraph-extract), must equal docs/api/<module>.txt: the surface grows or changes
# only by a reviewed commit of that file (`make api-baseline` rewrites it).
API_MODULES := BitNet BitNetConvert BitNetJSON
SWIFT_TRIPLE := $(shell $(SWIFT) -print-target-info 2>/dev/null | sed -n 's/.*"triple": "\(.*\)".*/\1/p' | head -1)
define extract_api
	$(SWIFT) build --target BitNetConvert
	@rm -rf $(BUILD_DIR)/api && mkdir -p $(BUILD_DIR)/api
	for m in $(API_MODULES); do swift-symbolgraph-extract -module-name $$m -target $(SWIFT_TRIPLE) \
		-I .build/debug/Modules -I CKernels/include -minimum-access-level public -output-dir $(BUILD_DIR)/api \
		&& python3 tools/api/public_surface.py $(BUILD_DIR)/api/$$m.symbols.json > $(BUILD_DIR)/api/$$m.txt || exit 1; done
endef
check-api: deps
	$(extract_api)
	@for m in $(API_MODULES); do diff -u docs/api/$$m.txt $(BUILD_DIR)/api/$$m.txt || \
		{ echo "the public API of $$m changed: review it, then run make api-baseline and commit docs/api"; exit 1; }; done
	@echo "public API: $$(cat $(addprefix docs/api/,$(addsuffix .txt,$(API_MODULES))) | wc -l) declarations, as in docs/api"

api-baseline: deps
	$(extract_api)
	@mkdir -p docs/api && for m in $(API_MODULES); do cp $(BUILD_DIR)/api/$$m.txt docs/api/$$m.txt; done

# The DocC catalog (Sources/BitNet/BitNet.docc) over the library's public symbols, built with the
# toolchain's docc directly: the swift-docc-plugin would be a package dependency that every app
# depending on BitNet fetches. Warnings fail the build. Output: build/docs (a static site).
docs: deps
	$(SWIFT) build --target BitNet
	@rm -rf $(BUILD_DIR)/docs-symbols $(BUILD_DIR)/docs && mkdir -p $(BUILD_DIR)/docs-symbols
	swift-symbolgraph-extract -module-name BitNet -target $(SWIFT_TRIPLE) -I .build/debug/Modules -I CKernels/include \
		-minimum-access-level public -output-dir $(BUILD_DIR)/docs-symbols
	docc convert Sources/BitNet/BitNet.docc --additional-symbol-graph-dir $(BUILD_DIR)/docs-symbols \
		--fallback-display-name BitNet --fallback-bundle-identifier org.bitnet-swift.BitNet \
		--output-dir $(BUILD_DIR)/docs --warnings-as-errors --transform-for-static-hosting

# The README's first command: generate with the embedded default model.
demo: build
	.build/release/bitnet generate -p "KING HENRY." -n 120 --temp 0.8 --seed 7

test: deps test-c test-arm64 test-capi test-golden test-examples test-swift check-api docs test-server test-openai test-load-short

sanitize: deps $(BUILD_DIR)/test_kernels_asan $(BUILD_DIR)/test_ops_asan $(BUILD_DIR)/test_tl_asan $(BUILD_DIR)/test_qblock_asan
	$(BUILD_DIR)/test_kernels_asan
	$(BUILD_DIR)/test_ops_asan
	$(BUILD_DIR)/test_tl_asan
	$(BUILD_DIR)/test_qblock_asan
	# Memory errors only: the Swift runtime never frees weak-reference side tables, so
	# LeakSanitizer would report every XCTest case object; the C harnesses above check leaks.
	ASAN_OPTIONS=detect_leaks=0 BITNET_SANITIZER=address \
		$(SWIFT) test --sanitize=address --scratch-path .build-asan
	# Data races: the model's step lock, sessions from many threads, the batch scheduler's thread.
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --disable-swift-testing \
		--filter 'SessionTests|BatchSchedulerTests'

bench: build
	.build/release/bitnet bench kernels

# Installs the C API: libBitNetCAPI.so (engine), libbitnet_kernels.a (kernels), the headers and
# bitnet.pc (pkg-config). The library needs the Swift runtime at $(SWIFT_RUNTIME) (rpath).
# The shared library gets an SONAME carrying the C ABI version (bitnet.h's BITNET_ABI_VERSION):
# programs linked against it load only a compatible one. SwiftPM has no portable way to set it
# (linker flags would be unsafeFlags), so patchelf does it on the installed copy.
ABI_VERSION := $(shell sed -n 's/^\#define BITNET_ABI_VERSION //p' Sources/BitNetCAPIHeader/include/bitnet.h)
LIB_VERSION := $(shell sed -n 's/.*static let string = "\(.*\)"/\1/p' Sources/BitNet/Support/LibraryVersion.swift)
install: deps
	@command -v patchelf >/dev/null || { echo "installing patchelf (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq patchelf >/dev/null; }
	$(SWIFT) build -c release --product BitNetCAPI
	@mkdir -p $(BUILD_DIR)/kernels-obj $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	for f in $(KERNEL_SRCS); do $(CC) -O2 -fPIC -std=c11 -D_GNU_SOURCE -ICKernels/include -ICKernels/src \
		-c $$f -o $(BUILD_DIR)/kernels-obj/$$(echo $$f | tr / _).o || exit 1; done
	ar rcs $(BUILD_DIR)/libbitnet_kernels.a $(BUILD_DIR)/kernels-obj/*.o
	install -m 644 $(BUILD_DIR)/libbitnet_kernels.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 .build/release/libBitNetCAPI.so $(DESTDIR)$(PREFIX)/lib/libBitNetCAPI.so.$(LIB_VERSION)
	patchelf --set-soname libBitNetCAPI.so.$(ABI_VERSION) $(DESTDIR)$(PREFIX)/lib/libBitNetCAPI.so.$(LIB_VERSION)
	ln -sf libBitNetCAPI.so.$(LIB_VERSION) $(DESTDIR)$(PREFIX)/lib/libBitNetCAPI.so.$(ABI_VERSION)
	ln -sf libBitNetCAPI.so.$(ABI_VERSION) $(DESTDIR)$(PREFIX)/lib/libBitNetCAPI.so
	install -m 644 Sources/BitNetCAPIHeader/include/bitnet.h CKernels/include/bitnet_kernels.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(LIB_VERSION)|; s|-Wl,-rpath,$${libdir}|-Wl,-rpath,$${libdir} -Wl,-rpath,$(SWIFT_RUNTIME)|' \
		Sources/BitNetC/bitnet.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/bitnet.pc

clean:
	rm -rf $(BUILD_DIR) .build .build-asan .build-tsan Server/.build .build-examples

# ---- Fuzzing (Fuzz/README.md) ---------------------------------------------------------------
# libFuzzer targets, built outside SwiftPM so the package needs no unsafeFlags: the BitNet
# sources are compiled once into a coverage-instrumented, ASan-checked static library (with
# -enable-testing, so harnesses reach internal parsers), the C kernels likewise with clang,
# and each harness links against both.
#   make fuzz             every target for FUZZ_SECONDS (default 60) on Fuzz/corpus/<target>
#   make fuzz-long        FUZZ_SECONDS (default 1800) per target, growing build/fuzz/corpus/<target>
#   make fuzz-<target>    one target; FUZZ_TARGETS="gguf chat" limits the set
#   make fuzz-seeds       regenerate the committed seed corpus (each target writes its own)
#   make fuzz-replay-rss  every corpus input once, without ASan, one process each: peak RSS per input
SWIFTC ?= swiftc
FUZZ_DIR := $(BUILD_DIR)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SWIFT_TARGETS := gguf gguf_model safetensors hf_config hf_tokenizer chat tokenizer request
FUZZ_C_TARGETS := kernels capi
FUZZ_TARGETS ?= $(FUZZ_SWIFT_TARGETS) $(FUZZ_C_TARGETS)
FUZZ_BITNET_SRCS := $(shell find Sources/BitNet -name '*.swift')
FUZZ_JSON_SRCS := $(shell find Sources/BitNetJSON -name '*.swift')
FUZZ_CONVERT_SRCS := $(shell find Sources/BitNetConvert -name '*.swift')
FUZZ_SWIFT_LIBS := $(FUZZ_DIR)/libBitNetConvert.a $(FUZZ_DIR)/libBitNet.a $(FUZZ_DIR)/libBitNetJSON.a
# The sanitizers: fuzz-replay-rss rebuilds everything with coverage only (no ASan shadow, so RSS is the code's own).
FUZZ_SAN_SWIFT ?= fuzzer,address
FUZZ_SAN_C ?= address,fuzzer-no-link
FUZZ_SAN_KERNELS ?= fuzzer,address,undefined
FUZZ_SWIFTFLAGS := -sanitize=$(FUZZ_SAN_SWIFT) -parse-as-library -O -g -use-ld=lld -package-name bitnet \
	-I CKernels/include -Xcc -D_GNU_SOURCE
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -fno-omit-frame-pointer -ICKernels/include -ICKernels/src
# The server's request parser (Server/): the files that need neither Hummingbird nor NIO.
FUZZ_SERVER_SRCS := $(addprefix Server/Sources/BitNetServer/,ServerError.swift RequestFields.swift \
	CompletionRequest.swift StopStringMatcher.swift)
FUZZ_KERNEL_OBJS := $(patsubst CKernels/src/%.c,$(FUZZ_DIR)/kernels-obj/%.o,$(KERNEL_SRCS))

.PHONY: fuzz fuzz-long fuzz-build fuzz-seeds fuzz-replay-rss $(addprefix fuzz-,$(FUZZ_SWIFT_TARGETS) $(FUZZ_C_TARGETS))

# The kernels with ASan and coverage but without libFuzzer's main (the harness brings it).
$(FUZZ_DIR)/kernels-obj/%.o: CKernels/src/%.c $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -fsanitize=$(FUZZ_SAN_C) -c $< -o $@

$(FUZZ_DIR)/libkernels.a: $(FUZZ_KERNEL_OBJS)
	rm -f $@ && ar rcs $@ $^

# One static library per module, as SwiftPM builds them (the same imports and `package` access).
# `swiftc -emit-library -static` adds to an existing archive, so each is removed first: a file
# moved to another module would otherwise stay behind in the old one (duplicate/undefined symbols).
$(FUZZ_DIR)/libBitNetJSON.a: $(FUZZ_JSON_SRCS)
	@mkdir -p $(FUZZ_DIR)/mod
	rm -f $@
	$(SWIFTC) -emit-library -static -module-name BitNetJSON -enable-testing -wmo -num-threads 2 $(FUZZ_SWIFTFLAGS) \
		-emit-module -emit-module-path $(FUZZ_DIR)/mod/BitNetJSON.swiftmodule $(FUZZ_JSON_SRCS) -o $@

$(FUZZ_DIR)/libBitNet.a: $(FUZZ_BITNET_SRCS)
	@mkdir -p $(FUZZ_DIR)/mod
	rm -f $@
	$(SWIFTC) -emit-library -static -module-name BitNet -enable-testing -wmo -num-threads 2 $(FUZZ_SWIFTFLAGS) \
		-emit-module -emit-module-path $(FUZZ_DIR)/mod/BitNet.swiftmodule $(FUZZ_BITNET_SRCS) -o $@

$(FUZZ_DIR)/libBitNetConvert.a: $(FUZZ_CONVERT_SRCS) $(FUZZ_DIR)/libBitNet.a $(FUZZ_DIR)/libBitNetJSON.a
	rm -f $@
	$(SWIFTC) -emit-library -static -module-name BitNetConvert -enable-testing -wmo -num-threads 2 $(FUZZ_SWIFTFLAGS) \
		-I $(FUZZ_DIR)/mod -emit-module -emit-module-path $(FUZZ_DIR)/mod/BitNetConvert.swiftmodule \
		$(FUZZ_CONVERT_SRCS) -o $@

$(FUZZ_DIR)/%: Fuzz/swift/%.swift Fuzz/swift/FuzzSupport.swift $(FUZZ_SWIFT_LIBS) $(FUZZ_DIR)/libkernels.a
	$(SWIFTC) $(FUZZ_SWIFTFLAGS) -module-name fuzz_$* -I $(FUZZ_DIR)/mod Fuzz/swift/FuzzSupport.swift $< \
		$(FUZZ_SWIFT_LIBS) $(FUZZ_DIR)/libkernels.a -lm -o $@

# The request parser is not in a library of this package: its files are compiled into the harness.
$(FUZZ_DIR)/request: Fuzz/swift/request.swift Fuzz/swift/FuzzSupport.swift $(FUZZ_SERVER_SRCS) $(FUZZ_SWIFT_LIBS) \
		$(FUZZ_DIR)/libkernels.a
	$(SWIFTC) $(FUZZ_SWIFTFLAGS) -module-name fuzz_request -I $(FUZZ_DIR)/mod Fuzz/swift/FuzzSupport.swift $< \
		$(FUZZ_SERVER_SRCS) $(FUZZ_SWIFT_LIBS) $(FUZZ_DIR)/libkernels.a -lm -o $@

# C kernels' format entry points: plain C, UBSan as well.
$(FUZZ_DIR)/kernels: Fuzz/c/kernels.c $(KERNEL_SRCS) $(KERNEL_HDRS)
	@mkdir -p $(FUZZ_DIR)
	$(CC) $(FUZZ_CFLAGS) -fsanitize=$(FUZZ_SAN_KERNELS) -fno-sanitize-recover=all -fuse-ld=lld \
		$(KERNEL_SRCS) $< \
		-lm -lpthread -o $@

# The C API from C: bitnet.h's functions (Sources/BitNetC) over the instrumented library.
$(FUZZ_DIR)/capi: Fuzz/c/capi.c Sources/BitNetC/BitNetCAPI.swift Sources/BitNetCAPIHeader/bitnet_params.c \
		$(FUZZ_SWIFT_LIBS) $(FUZZ_DIR)/libkernels.a
	@mkdir -p $(FUZZ_DIR)/capi-obj
	printf 'module BitNetCAPIHeader {\n header "%s/Sources/BitNetCAPIHeader/include/bitnet.h"\n export *\n}\n' \
		"$(CURDIR)" > $(FUZZ_DIR)/capi-obj/module.modulemap
	$(CC) $(FUZZ_CFLAGS) -fsanitize=$(FUZZ_SAN_C) -ISources/BitNetCAPIHeader/include -c Fuzz/c/capi.c \
		-o $(FUZZ_DIR)/capi-obj/capi.o
	$(CC) $(FUZZ_CFLAGS) -fsanitize=$(FUZZ_SAN_C) -ISources/BitNetCAPIHeader/include \
		-c Sources/BitNetCAPIHeader/bitnet_params.c -o $(FUZZ_DIR)/capi-obj/bitnet_params.o
	$(SWIFTC) $(FUZZ_SWIFTFLAGS) -module-name BitNetC -I $(FUZZ_DIR)/mod -I $(FUZZ_DIR)/capi-obj \
		Sources/BitNetC/BitNetCAPI.swift $(FUZZ_DIR)/capi-obj/capi.o $(FUZZ_DIR)/capi-obj/bitnet_params.o \
		$(FUZZ_SWIFT_LIBS) $(FUZZ_DIR)/libkernels.a -lm -o $@

fuzz-build: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))

# Each target: its committed seeds (read-only) plus a working corpus under build/fuzz.
fuzz: fuzz-build
	Fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_DIR)/corpus-short $(FUZZ_TARGETS)

fuzz-long: FUZZ_SECONDS := $(if $(filter command line environment,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),1800)
fuzz-long: fuzz-build
	Fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_DIR)/corpus $(FUZZ_TARGETS)

$(addprefix fuzz-,$(FUZZ_SWIFT_TARGETS) $(FUZZ_C_TARGETS)): fuzz-%: $(FUZZ_DIR)/%
	Fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_DIR)/corpus $*

fuzz-seeds: fuzz-build
	for t in $(FUZZ_SWIFT_TARGETS); do rm -rf Fuzz/corpus/$$t && \
		BITNET_FUZZ_WRITE_SEEDS=Fuzz/corpus/$$t $(FUZZ_DIR)/$$t || exit 1; done
	Fuzz/c/make_seeds.sh Fuzz/corpus $(FUZZ_DIR)

# Issue 13's memory bound, measured without ASan (whose shadow and quarantine would be most
# of the figure): every build/fuzz-noasan harness (coverage only) runs each input of
# Fuzz/corpus/<t>, Fuzz/regressions/<t> and build/fuzz/corpus/<t> in a process of its own; the
# script prints per target the inputs, the largest peak RSS and its input, and fails when an
# input's peak RSS exceeds 256 MB + the input's size, or a harness fails on it.
FUZZ_NOASAN_DIR := $(BUILD_DIR)/fuzz-noasan
FUZZ_REPLAY_JOBS ?= 1
fuzz-replay-rss:
	$(MAKE) --no-print-directory FUZZ_DIR=$(FUZZ_NOASAN_DIR) FUZZ_SAN_SWIFT=fuzzer FUZZ_SAN_C=fuzzer-no-link \
		FUZZ_SAN_KERNELS=fuzzer FUZZ_TARGETS="$(FUZZ_TARGETS)" fuzz-build
	Fuzz/replay_rss.py --build $(FUZZ_NOASAN_DIR) --jobs $(FUZZ_REPLAY_JOBS) \
		--corpus Fuzz/corpus --corpus Fuzz/regressions --corpus $(FUZZ_DIR)/corpus $(FUZZ_TARGETS)
