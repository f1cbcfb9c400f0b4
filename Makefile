# mezzo — build with `make`; `make check` runs every test (unit + system).
# Debian 12 packages only; ./setup installs them.

CC      ?= cc
PKGS    := sqlite3 libarchive openssl liburing libseccomp libcap libmnl libnftables
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wno-missing-field-initializers -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
           -fno-strict-aliasing -pthread
CFLAGS  += $(shell pkg-config --cflags $(PKGS))
# libarchive, libcrypto, libnftables and libmnl are dlopen'ed by the code that needs them
# (src/lib/dynlib.h says why): compiled against, never linked.
# SQLite, liburing and libseccomp are linked statically (Debian's own .a):
# relocating them at every start cost each mezzo command 0.2 ms (measured:
# an empty main() with SQLite 0.56 ms dynamic, 0.38 ms static), and every
# domain start is one.  A Debian update of them needs a rebuild of mezzo.
STATIC_LIBS := -Wl,-Bstatic -lsqlite3 -luring -lseccomp -Wl,-Bdynamic -lm -ldl
LINKED  := $(filter-out libarchive openssl libnftables sqlite3 liburing libseccomp libmnl,$(PKGS))
LDLIBS  += $(STATIC_LIBS) $(shell pkg-config --libs $(LINKED)) -pthread
TEST_LIBS := $(shell pkg-config --libs libarchive)

# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer build (in build-san/)
ifeq ($(SAN),1)
B       := build-san
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
B       := build
endif

LIB_SRC := $(wildcard src/lib/*.c src/store/*.c src/fs/*.c src/image/*.c src/domain/*.c src/net/*.c src/serve/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(B)/tests/helpers/%)
INIT_SRC := $(wildcard src/init/*.c)

# mezzo-init is pid 1 of every domain.  It is linked statically: it runs
# after pivot_root, where the host's dynamic loader is out of reach.  And
# against musl (Debian's musl-tools): a static glibc program spends ~0.3 ms
# of every start in its libc's setup, half of it (perf) in the functions
# that run CPUID for cache sizes and CPU features, each CPUID a trap to the
# hypervisor on a VM (5 us here); a static musl program asks nothing.
# Measured here, exec + exit of an empty main(): glibc 0.42-0.45 ms, musl
# 0.13-0.18.  Init needs only system calls and a little stdio, which musl
# has; INIT_CC=cc builds it with glibc as before.
INIT_CC ?= musl-gcc
INIT_BIN := $(if $(INIT_SRC),$(B)/mezzo-init)

all: $(B)/mezzo $(B)/mezzo-core $(INIT_BIN) $(UNIT_BIN) $(BENCH_BIN) $(HELPER_BIN)
	@ln -sf $(B)/mezzo mezzo

$(B)/libmezzo.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo '  AR     $@'; ar rcs $@ $^

# mezzo-core is the whole program.  `mezzo`, what users run, is a small
# static musl program (src/client/): it hands the command to `mezzo serve`
# when one listens, else execs mezzo-core (src/serve/protocol.h says why).
$(B)/mezzo-core: $(CLI_OBJ) $(B)/libmezzo.a
	@echo '  LD     $@'; $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/mezzo: src/client/mezzo.c src/serve/protocol.h Makefile
	@mkdir -p $(dir $@)
	@command -v $(INIT_CC) >/dev/null || { echo "mezzo is built with $(INIT_CC):" \
		"run ./setup --deps (Debian's musl-tools), or make INIT_CC=cc" >&2; exit 1; }
	@echo '  LD     $@ (static)'; $(INIT_CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -static -o $@ src/client/mezzo.c

$(B)/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo '  CC     $<'; $(CC) $(CFLAGS) -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(B)/libmezzo.a
	@mkdir -p $(dir $@)
	@echo '  TEST   $@'; $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libmezzo.a $(LDLIBS) $(TEST_LIBS) -lcmocka

$(B)/mezzo-init: $(INIT_SRC) $(wildcard src/init/*.h) Makefile
	@mkdir -p $(dir $@)
	@command -v $(INIT_CC) >/dev/null || { echo "mezzo-init is built with $(INIT_CC):" \
		"run ./setup --deps (Debian's musl-tools), or make INIT_CC=cc" >&2; exit 1; }
	@echo '  LD     $@ (static)'; $(INIT_CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -static -o $@ $(INIT_SRC)

$(B)/tests/helpers/%: tests/helpers/%.c $(B)/libmezzo.a
	@mkdir -p $(dir $@)
	@echo '  HELPER $@'; $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libmezzo.a $(LDLIBS)

$(B)/bench/%: bench/%.c $(B)/libmezzo.a
	@mkdir -p $(dir $@)
	@echo '  BENCH  $@'; $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libmezzo.a $(LDLIBS)

# The whole test suite: unit tests and system tests, under ASan+UBSan.
# The second pass runs the domains' and crash tests again with every command
# run by one `mezzo serve` (tests/system/conftest.py, MEZZO_TEST_SERVE).
SERVE_TESTS := test_domains.py test_crash.py
check:
	$(MAKE) SAN=1 all
	tests/run-unit build-san
	MEZZO=$(CURDIR)/build-san/mezzo tests/run-system
	MEZZO=$(CURDIR)/build-san/mezzo MEZZO_TEST_SERVE=1 tests/run-system -q $(SERVE_TESTS)

check-fast: all
	tests/run-unit build
	MEZZO=$(CURDIR)/build/mezzo tests/run-system
	MEZZO=$(CURDIR)/build/mezzo MEZZO_TEST_SERVE=1 tests/run-system -q $(SERVE_TESTS)

clean:
	rm -rf build build-san mezzo

.PHONY: all check check-fast clean
