# Thin entry points: everything real is in meson.build and scripts/.
BUILD ?= build
ASAN  ?= build-asan

.PHONY: all build run test unit fuzz integration bench clean

all: build

build:
	scripts/deps.sh
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --buildtype=release -Dtests=false
	ninja -C $(BUILD)

run: build
	scripts/run.sh

test:
	scripts/deps.sh test
	@[ -f $(ASAN)/build.ninja ] || meson setup $(ASAN) -Db_sanitize=address,undefined
	ninja -C $(ASAN)
	scripts/test.sh

bench: build
	scripts/deps.sh bench
	bench/run.sh
	bench/shield.sh
	bench/tls.sh
	bench/slo.sh
	bench/monitors.sh

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
