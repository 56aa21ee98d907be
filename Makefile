# sharecount — PostgreSQL extension (PGXS) and the sharecount-bridge daemon.
#
# The extension part follows pgvector's Makefile: EXTENSION, MODULE_big, OBJS
# from src/*.c, DATA with every install/upgrade script, REGRESS from the test
# files in sql/ (everything that is not an install script), ISOLATION from
# test/specs/*.spec.  The bridge is a plain C program built next to it.
#
# Top-level commands (README.md): make run, make test, make bench, make install.

EXTENSION = sharecount
EXTVERSION = 1.1

MODULE_big = sharecount
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
HEADERS = $(wildcard src/*.h)

DATA = $(sort $(wildcard sql/$(EXTENSION)--*.sql))

TESTS = $(sort $(filter-out $(DATA),$(wildcard sql/*.sql)))
REGRESS = $(patsubst sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
EXTRA_CLEAN = results/ regression.diffs regression.out output_iso/ bridge/.build-flags \
	bridge/*.o bridge/sharecount-bridge test/unit/*.o test/unit/*.bin fuzz/build/

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(wildcard $(PGXS)),)
# A fresh machine has no PGXS yet: install the packages first, then re-run.
all install installcheck test run bench unit fuzz fuzz-replay soak:
	./test/deps.sh && $(MAKE) $@
.PHONY: all install installcheck test run bench unit fuzz fuzz-replay soak
else
include $(PGXS)

# ---------------------------------------------------------------- bridge ----

BRIDGE = bridge/sharecount-bridge
BRIDGE_SRCS = $(sort $(wildcard bridge/*.c))
BRIDGE_OBJS = $(BRIDGE_SRCS:.c=.o)
BRIDGE_LIB_OBJS = $(filter-out bridge/main.o,$(BRIDGE_OBJS))
BRIDGE_CC ?= cc
BRIDGE_CFLAGS ?= -O2 -g
BRIDGE_CFLAGS += -std=gnu11 -Wall -Wextra -Werror -pthread -I$(shell $(PG_CONFIG) --includedir) $(BRIDGE_SANITIZE)
BRIDGE_LDLIBS = -L$(shell $(PG_CONFIG) --libdir) -lpq -lrabbitmq -ljansson -lmicrohttpd -lwslay -lnettle -lpthread -lm $(BRIDGE_SANITIZE)
BRIDGE_VERSION = $(EXTVERSION).0

ifneq ($(wildcard bridge/main.c),)
all: $(BRIDGE)
install: install-bridge
endif

# The bridge's objects depend on its compiler and flags (a stamp file rewritten
# only when they change), so `BRIDGE_SANITIZE=-fsanitize=address make test`
# rebuilds it instead of reusing objects built without ASan, and back.
BRIDGE_FLAGS = $(BRIDGE_CC) $(BRIDGE_CFLAGS) $(BRIDGE_LDLIBS) $(BRIDGE_VERSION)
bridge/.build-flags: sc-always
	@printf '%s\n' '$(BRIDGE_FLAGS)' | cmp -s - $@ || printf '%s\n' '$(BRIDGE_FLAGS)' > $@
.PHONY: sc-always
sc-always:

bridge/%.o: bridge/%.c $(wildcard bridge/*.h) bridge/.build-flags
	$(BRIDGE_CC) $(BRIDGE_CFLAGS) -DSHARECOUNT_VERSION='"$(BRIDGE_VERSION)"' -c -o $@ $<

$(BRIDGE): $(BRIDGE_OBJS) bridge/.build-flags
	$(BRIDGE_CC) -o $@ $(BRIDGE_OBJS) $(BRIDGE_LDLIBS)

# Unit tests for the bridge's pure C (config, JSON, routing): one binary per
# test/unit/test_*.c, linked with every bridge object but main.o.
UNIT_SRCS = $(sort $(wildcard test/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:.c=.bin)
test/unit/%.bin: test/unit/%.c $(BRIDGE_LIB_OBJS) $(wildcard bridge/*.h) $(wildcard test/unit/*.h)
	$(BRIDGE_CC) $(BRIDGE_CFLAGS) -Ibridge -o $@ $< $(BRIDGE_LIB_OBJS) $(BRIDGE_LDLIBS)
unit: $(UNIT_BINS)

# The standalone WebSocket test server of docs/live.md (run by test/e2e/live_ws_echo.sh).
test/unit/ws_echo_server.bin: test/unit/ws_echo_server.c $(BRIDGE_LIB_OBJS) $(wildcard bridge/*.h)
	$(BRIDGE_CC) $(BRIDGE_CFLAGS) -Ibridge -o $@ $< $(BRIDGE_LIB_OBJS) $(BRIDGE_LDLIBS)

# libFuzzer harnesses (docs/fuzzing.md): fuzz/fuzz_*.c linked with the real
# bridge objects, rebuilt by clang with the sanitizers into fuzz/build/.
# `make fuzz` runs each for FUZZ_SECONDS; `make fuzz-replay` (run by make
# test) passes every corpus file through each harness once.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -g -O1 -std=gnu11 -Wall -Wextra -Werror -pthread -I$(shell $(PG_CONFIG) --includedir) \
	-iquote bridge $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_BINS = $(patsubst fuzz/%.c,fuzz/build/%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_BRIDGE_OBJS = $(patsubst bridge/%.o,fuzz/build/bridge/%.o,$(BRIDGE_LIB_OBJS))
fuzz/build/bridge/%.o: bridge/%.c $(wildcard bridge/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DSHARECOUNT_VERSION='"$(BRIDGE_VERSION)"' -c -o $@ $<
fuzz/build/fuzz_%: fuzz/fuzz_%.c $(FUZZ_BRIDGE_OBJS) $(wildcard fuzz/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BRIDGE_OBJS) \
		$(filter-out $(BRIDGE_SANITIZE),$(BRIDGE_LDLIBS))
fuzz-build: $(FUZZ_BINS)
fuzz: deps fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/run.sh run $(FUZZ_BINS)
fuzz-replay: fuzz-build
	@./fuzz/run.sh replay $(FUZZ_BINS)
.PHONY: fuzz fuzz-build fuzz-replay

# ------------------------------------------------------- install / deps ----

# The daemon goes to $(bridge_prefix)/bin (PGXS's own $(bindir) is PostgreSQL's
# private bin directory, no place for a service binary).
bridge_prefix ?= /usr/local
bindir_bridge = $(DESTDIR)$(bridge_prefix)/bin
unitdir = $(DESTDIR)/lib/systemd/system
confdir = $(DESTDIR)/etc/sharecount

install-bridge: $(BRIDGE)
	@if [ -f $(BRIDGE) ]; then \
	  install -d $(bindir_bridge) $(unitdir) $(confdir) && \
	  install -m 755 $(BRIDGE) $(bindir_bridge)/sharecount-bridge && \
	  sed 's|@BINDIR@|$(bridge_prefix)/bin|' bridge/sharecount-bridge.service > $(unitdir)/sharecount-bridge.service && \
	  chmod 644 $(unitdir)/sharecount-bridge.service && \
	  if [ ! -f $(confdir)/bridge.conf ]; then install -m 640 bridge/bridge.conf $(confdir)/bridge.conf; fi; \
	fi

test: deps
	@./test/run.sh

run: deps
	@./test/run-stack.sh

bench: deps
	@./bench/run.sh

# The chaos soak (docs/soak.md): SOAK_SECONDS (default 600), SOAK_SEED to replay.
soak: deps
	@./test/soak.sh

.PHONY: test run bench unit install-bridge soak
endif

deps:
	@./test/deps.sh
.PHONY: deps
