# AdapLeR-C.  `make deps` (as root) installs the Debian packages, and every build runs it
# once first; `make` builds bin/adapler;
# `make test` runs the test suite; `make bench` the benchmarks.  See README.md.

CC      ?= gcc
BLASDIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
PKGS    := libcjson libutf8proc sqlite3
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O3 -fno-math-errno -g -fopenmp -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-format-truncation \
	-Iengine -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas \
	$(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcjson -lutf8proc -lsqlite3) -lm -fopenmp

# Build flavours: the default one into build/release and bin/, the sanitizer one
# (make SAN=1 ...) into build/asan with -fsanitize=address,undefined.
ifeq ($(SAN),1)
  BUILD   := build/asan
  BINDIR  := build/asan/bin
  CFLAGS  := $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else
  BUILD   := build/release
  BINDIR  := bin
  CFLAGS  := $(CFLAGS_BASE)
endif
CFLAGS += $(EXTRA_CFLAGS)

LIB_SRC  := $(filter-out engine/main.c,$(wildcard engine/*.c eraser/*.c baselines/*.c experiments/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/engine/main.d

.PHONY: all test test-asan bench deps clean demo data
all: $(BINDIR)/adapler $(BINDIR)/tests

$(BUILD)/%.o: %.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Every build runs the deps step once first (stamp in the build directory), so that `make
# demo` and `make test` work on a fresh machine as root; without root and with packages
# missing it names them and stops.
$(BUILD)/.deps-ok:
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(dir $@) && touch $@

# experiments/results_db.c embeds results/schema.sql (.incbin), which -MMD cannot see.
$(BUILD)/experiments/results_db.o: results/schema.sql

$(BUILD)/libadapler.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BINDIR)/adapler: $(BUILD)/engine/main.o $(BUILD)/libadapler.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests link the whole library (--whole-archive is not needed: tests call into it).
$(BINDIR)/tests: $(TEST_OBJ) $(BUILD)/libadapler.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# `make test`: every test, one line each, ending with "N passed, N failed".
# T=substring runs a subset; V=1 prints what each test compared.
test: $(BINDIR)/adapler $(BINDIR)/tests
	ADAPLER_BIN=$(abspath $(BINDIR)/adapler) $(BINDIR)/tests $(if $(V),-v) $(T)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	$(MAKE) SAN=1 test

# `make data`: link ../shared/data/NAME into data/ when present, else download from the
# sources named in each PROVENANCE.md; sha256 against experiments/data.sha256 either way.
data:
	sh experiments/fetch_data.sh

bench: $(BINDIR)/adapler
	/usr/bin/python3 tests/bench.py --adapler $(abspath $(BINDIR)/adapler)
	/usr/bin/python3 tests/bench_train.py --adapler $(abspath $(BINDIR)/adapler)

# Debian packages the build, the tests and the figures need.
DEB_PKGS := build-essential pkg-config libopenblas-openmp-dev libcjson-dev libutf8proc-dev \
	libsqlite3-dev sqlite3 gnuplot-nox python3 python3-torch python3-numpy python3-sklearn
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: run as root: apt-get install -y $$missing"; exit 1; fi

clean:
	rm -rf build bin

# ---- Trained models (README "Training").  Long runs, nice'd; each writes its log into its
# directory under models/ (not in git).  `make models/small-pretrained` pretrains the small
# backbone with MLM on the datasets' train text; `make models/DATASET-small` fine-tunes it on
# DATASET; `make models/DATASET-small-scratch` trains the same shape from random weights with
# the same vocabulary.  A run is done when its pretrain.json / train.json exists. ----
NPROC         := $(shell nproc 2>/dev/null || echo 1)
TRAIN_THREADS ?= 2
# The backbone's pretraining runs alone (every model waits for it): every core.
PRETRAIN_THREADS ?= $(NPROC)
# Passive OpenMP waiting: on a shared machine, threads spinning at barriers while a peer is
# descheduled made training 3x slower; results do not change (static schedules).
TRAIN_NICE    ?= OMP_WAIT_POLICY=PASSIVE nice -n 10
PRETRAIN_ARGS ?= --config small --epochs 12 --batch-tokens 4096
FT_ARGS_sst2          := --epochs 3 --max-len 128 --lr 3e-4
FT_ARGS_agnews        := --epochs 5 --max-len 128 --lr 3e-4
FT_ARGS_hatexplain    := --epochs 5 --max-len 128 --lr 3e-4
FT_ARGS_eraser_movies := --epochs 10 --max-len 512 --batch 16 --lr 1e-4
FT_DATASETS := sst2 agnews hatexplain eraser_movies
# Where each fine-tune starts: the pretrained backbone, except the movie reviews, which start
# from the SST-2 classifier (an intermediate task of the same domain: 1,600 long reviews are
# too few to learn sentiment from our weak backbone; README "Training").
# models/DATASET-small-direct is the same run from the backbone, for comparison.
FT_INIT_eraser_movies := models/sst2-small
ft_init = $(or $(FT_INIT_$(1)),models/small-pretrained)

.PHONY: models/small-pretrained $(FT_DATASETS:%=models/%-small) $(FT_DATASETS:%=models/%-small-scratch) \
	$(FT_DATASETS:%=models/%-small-direct)
models/small-pretrained: models/small-pretrained/pretrain.json
models/small-pretrained/pretrain.json: | $(BINDIR)/adapler
	@mkdir -p $(@D)
	$(TRAIN_NICE) $(BINDIR)/adapler pretrain --out $(@D) $(PRETRAIN_ARGS) --threads $(PRETRAIN_THREADS) 2> $(@D)/log.txt

$(FT_DATASETS:%=models/%-small): models/%-small: models/%-small/train.json
models/%-small/train.json: models/small-pretrained/pretrain.json | $(BINDIR)/adapler
	@mkdir -p $(@D)
	$(TRAIN_NICE) $(BINDIR)/adapler train --dataset $* --out $(@D) --init $(call ft_init,$*) $(FT_ARGS_$*) \
		--threads $(TRAIN_THREADS) 2> $(@D)/log.txt
models/eraser_movies-small/train.json: models/sst2-small/train.json

$(FT_DATASETS:%=models/%-small-direct): models/%-small-direct: models/%-small-direct/train.json
models/%-small-direct/train.json: models/small-pretrained/pretrain.json | $(BINDIR)/adapler
	@mkdir -p $(@D)
	$(TRAIN_NICE) $(BINDIR)/adapler train --dataset $* --out $(@D) --init models/small-pretrained $(FT_ARGS_$*) \
		--threads $(TRAIN_THREADS) 2> $(@D)/log.txt

$(FT_DATASETS:%=models/%-small-scratch): models/%-small-scratch: models/%-small-scratch/train.json
models/%-small-scratch/train.json: models/small-pretrained/pretrain.json | $(BINDIR)/adapler
	@mkdir -p $(@D)
	$(TRAIN_NICE) $(BINDIR)/adapler train --dataset $* --out $(@D) --config small \
		--vocab models/small-pretrained/vocab.txt $(FT_ARGS_$*) --threads $(TRAIN_THREADS) 2> $(@D)/log.txt

# ---- Sweeps, the results database and figures (experiments/README.md) ----
# `make sweep SWEEP=NAME` builds the models experiments/NAME.sweep needs (Makefile rules
# generated from its model lines: a model is rebuilt only if missing, if its command
# changed, or if a model it starts from was rebuilt), then runs the sweep's pending cells
# into $(DB) with $(JOBS) parallel jobs.  `make paper`: the paper, eraser and latency
# sweeps, then the figures.  `make figures`: every figure of plots/ from $(DB) into
# $(FIGDIR).  `make demo`: the whole pipeline on the planted task (results/demo.db).
SWEEP       ?= demo
DB          ?= results/results.db
JOBS        ?= 2
SWEEP_FLAGS ?=
FIGDIR      ?= plots/out
# A sweep's models build $(JOBS) at a time, each on cores / JOBS threads (OMP_NUM_THREADS
# for `adapler train`, TRAIN_THREADS for the fine-tunes above), waiting passively: two
# one-thread trainings side by side use 2 cores better than one two-thread training after
# the other, and threads spinning while a peer is descheduled waste them.  Models that
# another make builds (the fine-tunes) run one after another (adapler sweep --emit make).
BUILD_THREADS ?= $(shell n=$$(( $(NPROC) / $(JOBS) )); [ $$n -gt 0 ] && echo $$n || echo 1)
.PHONY: sweep paper figures
sweep: $(BINDIR)/adapler
	@mkdir -p $(BUILD)/sweeps $(dir $(DB))
	$(BINDIR)/adapler sweep experiments/$(SWEEP).sweep $(SWEEP_FLAGS) --emit make \
		--out $(BUILD)/sweeps/$(SWEEP).mk --recipes $(BUILD)/sweeps/recipes
	OMP_NUM_THREADS=$(BUILD_THREADS) OMP_WAIT_POLICY=PASSIVE $(MAKE) -j$(JOBS) -f $(BUILD)/sweeps/$(SWEEP).mk \
		ADAPLER=$(abspath $(BINDIR)/adapler) TRAIN_THREADS=$(BUILD_THREADS) models
	$(BINDIR)/adapler sweep experiments/$(SWEEP).sweep --jobs $(JOBS) --db $(DB) $(SWEEP_FLAGS)

paper: $(BINDIR)/adapler
	$(MAKE) sweep SWEEP=paper
	$(MAKE) sweep SWEEP=eraser
	$(MAKE) sweep SWEEP=latency
	$(MAKE) figures

figures:
	sh plots/make_figures.sh $(DB) $(FIGDIR)

demo: $(BINDIR)/adapler
	$(MAKE) sweep SWEEP=demo DB=results/demo.db SWEEP_FLAGS=--per-example
	$(MAKE) figures DB=results/demo.db FIGDIR=plots/out/demo
	@sqlite3 -header -column results/demo.db < experiments/summary.sql

-include $(DEPS)
