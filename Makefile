# berth — plain make + pkg-config. `make run` and `make test` are the two commands a newcomer types.
PKGS     := libmicrohttpd openssl jansson sqlite3 yaml-0.1 libcurl
# libcurl is compiled against but loaded at run time by the client (src/client/curl_dl.c).
LINK_PKGS := libmicrohttpd libcrypto jansson sqlite3 yaml-0.1
CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
CSTD     := -std=c11 -D_GNU_SOURCE
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null) -lcrypt -lpthread

RELEASE_FLAGS := -O2 -g
ASAN_FLAGS    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

LIB_SRC  := $(wildcard src/core/*.c) $(wildcard src/http/*.c) $(wildcard src/client/*.c) \
	    $(wildcard src/mirror/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
HDRS     := $(wildcard src/*/*.h) $(wildcard tests/unit/*.h)

R := build/release
A := build/asan

LIB_OBJ_R  := $(LIB_SRC:%.c=$(R)/%.o)
CLI_OBJ_R  := $(CLI_SRC:%.c=$(R)/%.o)
LIB_OBJ_A  := $(LIB_SRC:%.c=$(A)/%.o)
CLI_OBJ_A  := $(CLI_SRC:%.c=$(A)/%.o)
UNIT_BIN_A := $(UNIT_SRC:tests/unit/%.c=$(A)/tests/%)

.PHONY: all deps build asan unit run test e2e bench fuzz fuzz-build clean format

all: build

deps:
	@bash scripts/deps.sh

build: $(R)/berth
asan: $(A)/berth $(UNIT_BIN_A)

$(R)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CSTD) $(WARN) $(RELEASE_FLAGS) $(PKG_CFLAGS) -c $< -o $@

$(A)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC/asan $<"
	@$(CC) $(CSTD) $(WARN) $(ASAN_FLAGS) $(PKG_CFLAGS) -c $< -o $@

$(R)/libberth.a: $(LIB_OBJ_R)
	@ar rcs $@ $^
$(A)/libberth.a: $(LIB_OBJ_A)
	@ar rcs $@ $^

$(R)/berth: $(CLI_OBJ_R) $(R)/libberth.a
	$(CC) $(RELEASE_FLAGS) -o $@ $(CLI_OBJ_R) $(R)/libberth.a $(PKG_LIBS)
$(A)/berth: $(CLI_OBJ_A) $(A)/libberth.a
	$(CC) $(ASAN_FLAGS) -o $@ $(CLI_OBJ_A) $(A)/libberth.a $(PKG_LIBS)

$(A)/tests/%: $(A)/tests/unit/%.o $(A)/libberth.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) -o $@ $< $(A)/libberth.a $(PKG_LIBS)

# Starts a registry on 127.0.0.1:5000 with storage in ./data (override with a config file:
# make run CONFIG=path/to/config.yml).
run: deps
	@$(MAKE) --no-print-directory build
	exec ./$(R)/berth serve $(CONFIG)

# Every test: unit tests (ASan+UBSan), the HTTP suite against the release and the ASan build,
# real clients (skopeo, podman, umoci), the crash test. Ends with "N passed, N failed".
test:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory build asan
	@bash scripts/run-tests.sh

bench:
	@bash scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@QUICK=$(QUICK) bash bench/run.sh

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), built with clang straight from the parsers'
# sources, instrumented, and each run for FUZZ_SECONDS on a scratch copy of its seed corpus.
# tests/fuzz/run.sh checks the toolchain, builds (fuzz-build) and runs; any crash fails it.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined
F            := build/fuzz
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(F)/fuzz_%)
# The sources each target links: only the parser under test and what it calls.
fuzz_src_name          := src/core/ref.c src/core/digest.c
fuzz_src_tag           := src/core/ref.c src/core/digest.c
fuzz_src_ref           := src/core/ref.c src/core/digest.c
fuzz_src_digest        := src/core/digest.c
fuzz_src_manifest      := src/core/manifest.c src/core/digest.c
fuzz_src_range         := src/http/range.c
fuzz_src_content_range := src/http/range.c
fuzz_src_route         := src/http/router.c src/core/ref.c src/core/digest.c
fuzz_src_config        := src/core/config.c src/core/log.c src/core/err.c src/core/ref.c \
			  src/core/digest.c src/core/semver.c
fuzz_src_auth_header   := src/core/auth.c src/core/pattern.c src/core/log.c src/core/err.c
fuzz_src_htpasswd      := src/core/auth.c src/core/pattern.c src/core/log.c src/core/err.c
fuzz_src_jwt           := src/core/auth.c src/core/pattern.c src/core/log.c src/core/err.c
fuzz_src_challenge     := src/client/transport.c src/client/creds.c src/client/curl_dl.c src/core/ref.c src/core/digest.c

fuzz:
	@bash scripts/deps.sh fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

fuzz-build: $(FUZZ_BINS)

.SECONDEXPANSION:
$(F)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $$(fuzz_src_$$*) $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@$(FUZZ_CC) $(CSTD) $(WARN) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $< $(fuzz_src_$*) $(PKG_LIBS)

clean:
	rm -rf build

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h)
