# hainit — see README.md. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

TARGET  := x86_64-unknown-linux-musl
BIN     := target/$(TARGET)/release/hainit
# Under `sudo make lab`, cargo and rustup run as the user who called sudo: their toolchain, and
# target/ stays theirs.
ifneq ($(filter-out root,$(SUDO_USER)),)
AS_USER := sudo -u $(SUDO_USER) -H env PATH=$(shell getent passwd $(SUDO_USER) | cut -d: -f6)/.cargo/bin:$$PATH
endif
CARGO   ?= $(AS_USER) cargo
# Every shell script in the repository, found by its shebang.
SCRIPTS := $(shell for f in $$(find scripts images cloud-init .ci -type f 2>/dev/null); do \
             head -n1 "$$f" | grep -qE '^\#!.*[/ ](ba)?sh$$' && echo "$$f"; done)

.PHONY: print-scripts deps build test lint fmt unit golden bench install clean check-static
.PHONY: lab lab-all lab-down lab-image lab-clean lab-check azure-image check-azure-image
FAKE_IMDS := target/release/examples/fake-imds

## build: stripped static musl binary (adds the rustup target when missing)
build: $(BIN)
	@$(MAKE) --no-print-directory check-static
$(BIN): Cargo.toml Cargo.lock $(shell find src -name '*.rs')
	@$(AS_USER) rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || $(AS_USER) rustup target add $(TARGET)
	$(CARGO) build --release --locked --target $(TARGET)

check-static:
	@out=$$(file $(BIN)); echo "$$out"; \
	  grep -q 'statically linked' <<<"$$out" || { echo "$(BIN) is not statically linked" >&2; exit 1; }
	@size=$$(stat -c %s $(BIN)); echo "size: $$size bytes"; \
	  [ $$size -lt $$((8 * 1024 * 1024)) ] || { echo "$(BIN) is $$size bytes, over 8 MiB" >&2; exit 1; }

## deps: every Debian package, the Rust target and components the tests and the lab need (scripts/deps.sh)
deps:
	scripts/deps.sh

## test: deps, lint, every cargo test (units, fake IMDS, golden plans, real-tool checks), static build, quick bench
test: deps lint unit build lab-check
	@$(MAKE) --no-print-directory bench BENCH_ARGS=--quick

unit:
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	@if [ -n "$(SCRIPTS)" ]; then shellcheck -x $(SCRIPTS); fi
	pyflakes3 scripts/lab scripts/bench.py scripts/azure images tests/fixtures/azure/fake-az tests/fixtures/azure/fake-wordpress \
	  tests/fixtures/azure/fake-azcopy

fmt:
	$(CARGO) fmt --all

## golden: rewrite tests/golden/ from the current output (review the diff!)
golden:
	UPDATE_GOLDEN=1 $(CARGO) test --locked
	git status --short tests/golden

## bench: discover and the db/web plans' wall time (median/min/max), peak RSS, binary size (docs/development.md)
bench: build $(FAKE_IMDS)
	python3 scripts/bench.py --hainit $(BIN) --fake-imds $(FAKE_IMDS) $(BENCH_ARGS)

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)/usr/local/sbin/hainit

clean:
	$(CARGO) clean

## azure-image: the Debian 12 image for Azure, target/images/hainit-debian12.vhd + .sha256 (root; cached by input hash)
azure-image: build
	images/azure/build.sh

## check-azure-image: judge the built VHD (footer, GPT/ESP, kernel modules, cloud-init, hainit, WordPress pin)
check-azure-image:
	python3 images/azure/check-image.py target/images/hainit-debian12.vhd --hainit $(BIN) --versions

## lab-image: the lab's layer over that VHD, a qcow2 overlay (images/lab/build.sh; the VHD stays untouched)
lab-image: azure-image
	images/lab/build.sh

$(FAKE_IMDS): Cargo.toml Cargo.lock examples/fake-imds.rs tests/common/fake_imds.rs
	$(CARGO) build --release --locked --example fake-imds

## lab: (root) 2 db + 2 web VMs, emulated IMDS, ARM and load balancers, the how-to's drill, report;
## on success the stack stays up at http://10.0.3.10/ until `make lab-down` (LAB_KEEP=0: stopped)
LAB_KEEP ?= 1
lab: deps lab-image $(FAKE_IMDS)
	python3 scripts/lab/lab.py run --scenarios "$${LAB_SCENARIOS:-drill}" $(if $(filter 0,$(LAB_KEEP)),,--keep)

## lab-all: (root) every scenario (drill, repair, crash, splitbrain); nothing stays up
lab-all: deps lab-image $(FAKE_IMDS)
	python3 scripts/lab/lab.py run --scenarios all

## lab-down: (root) stop the stack `make lab` left up, and whatever a dead run left (by recorded ids)
lab-down:
	python3 scripts/lab/lab.py down

## lab-clean: stop whatever a lab run whose orchestrator died left behind (by its recorded ids)
lab-clean:
	python3 scripts/lab/lab.py clean

## lab-check: the lab's own tests (load balancer semantics in a network namespace, report, inputs)
lab-check:
	python3 -m unittest discover -s scripts/lab/tests -v

## validate: packer validate the EL templates (as far as this packer can: images/packer/validate.py),
## cloud-init schema on the custom-data and the Azure image's cloud-init config (no Azure needed)
.PHONY: validate images
validate: build
	python3 images/packer/validate.py -var hainit_binary=$(abspath $(BIN)) centos7.pkr.hcl rocky9.pkr.hcl
	for f in cloud-init/db.yaml cloud-init/web.yaml; do cloud-init schema --config-file $$f; done
	cloud-init schema --config-file <(echo '#cloud-config'; cat images/azure/rootfs/etc/cloud/cloud.cfg.d/99-hainit-azure.cfg)

## images: build the EL images with packer >= 1.14 (needs `az login` and the resource group hainit-images)
images: build
	packer init images/packer/rocky9.pkr.hcl
	packer build images/packer/rocky9.pkr.hcl
	packer init images/packer/centos7.pkr.hcl
	packer build images/packer/centos7.pkr.hcl

print-scripts:
	@echo $(SCRIPTS)
