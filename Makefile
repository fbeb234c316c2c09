# sharedprop: build, install and test. `make install` and `make test` are the two set-up commands.
SHELL := /bin/bash
.DEFAULT_GOAL := build

PLUGIN_NAME ?= sharedprop
DATA_DIR ?= /var/lib/sharedprop
PREFIX ?= /usr/local
BIN_DIR ?= $(PREFIX)/bin
RUNTIME_INSTALL_DIR ?= $(PREFIX)/bin
DAEMON_JSON ?= /etc/docker/daemon.json
DOCKERD_PIDFILE ?= /var/run/docker.pid
export PLUGIN_NAME DATA_DIR PREFIX BIN_DIR RUNTIME_INSTALL_DIR DAEMON_JSON DOCKERD_PIDFILE

NODE_MODULES := node_modules/.package-lock.json

.PHONY: build cli plugin runtime release push install uninstall install-plugin uninstall-plugin \
	install-runtime uninstall-runtime install-cli uninstall-cli check test test-deps e2e-releases lint typecheck test-unit test-integration \
	test-e2e test-e2e-engines bench bench-smoke mutate clean

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(NODE_MODULES)
	npm run build

# The `sharedprop` command: one self-contained executable (no Node needed where it runs) and the
# delete helper that `sharedprop serve` runs, which travels beside it.
cli: build
	scripts/build-cli.sh build/cli/sharedprop
	install -m 0755 dist/native/sharedprop-rmtree build/cli/sharedprop-rmtree

# The managed plugin: build/plugin/{config.json,rootfs/}
plugin: build
	plugin/build.sh build/plugin

# The OCI runtime wrapper: one self-contained executable, no Node needed on the host.
runtime: $(NODE_MODULES)
	scripts/build-runtime.sh build/sharedprop-runtime

# A release: build/release/VERSION/ holds the plugin stamped with VERSION, the standalone CLI and
# runtime wrapper (no Node needed on the host), and a tarball of those with its checksum.
release: build
	scripts/release.sh "$(VERSION)"

# Pushes build/release/VERSION/plugin as REGISTRY/sharedprop:VERSION (through DOCKER_HOST's engine).
push:
	scripts/push.sh "$(REGISTRY)" "$(VERSION)"

install: install-plugin install-runtime install-cli

uninstall: uninstall-runtime uninstall-plugin uninstall-cli

# `sharedprop` on PATH: BIN_DIR (default PREFIX/bin) gets the CLI and its delete helper.
install-cli: cli
	install -d "$(BIN_DIR)"
	install -m 0755 build/cli/sharedprop-rmtree "$(BIN_DIR)/sharedprop-rmtree"
	install -m 0755 build/cli/sharedprop "$(BIN_DIR)/sharedprop"
	@echo "installed $(BIN_DIR)/sharedprop ($$("$(BIN_DIR)/sharedprop" --version))"

uninstall-cli:
	rm -f "$(BIN_DIR)/sharedprop" "$(BIN_DIR)/sharedprop-rmtree"

# LOG_LEVEL: the plugin's log level (unset: info). FORCE=1: replace or remove the plugin even while
# running containers use its volumes.
install-plugin: plugin
	node dist/cli.js plugin install --dir build/plugin --name "$(PLUGIN_NAME)" \
		--data-dir "$(DATA_DIR)" $(if $(LOG_LEVEL),--log-level "$(LOG_LEVEL)") \
		$(if $(filter 1,$(FORCE)),--force)

uninstall-plugin: build
	node dist/cli.js plugin uninstall --name "$(PLUGIN_NAME)" $(if $(filter 1,$(FORCE)),--force)

install-runtime: runtime build
	node dist/cli.js runtime install --binary build/sharedprop-runtime \
		--dir "$(RUNTIME_INSTALL_DIR)" --daemon-json "$(DAEMON_JSON)" --pidfile "$(DOCKERD_PIDFILE)"

uninstall-runtime: build
	node dist/cli.js runtime uninstall --dir "$(RUNTIME_INSTALL_DIR)" \
		--daemon-json "$(DAEMON_JSON)" --pidfile "$(DOCKERD_PIDFILE)"

lint: $(NODE_MODULES)
	npx eslint .
	npx prettier --check .

typecheck: $(NODE_MODULES)
	npx tsc -p tsconfig.json --noEmit

test-unit: $(NODE_MODULES)
	npm run test:unit

# The driver's files once more on the mount layer's mountinfo fallback (kernels before 6.8).
test-integration: build
	scripts/require-root.sh integration
	npm run test:integration
	SHAREDPROP_MOUNT_LAYER=mountinfo npm run test:integration -- test/integration/driver- \
		test/integration/adopted-paths.test.ts test/integration/tmpfs-volumes.test.ts \
		test/integration/startup-ownership.test.ts

# The two releases the e2e tier pushes, installs and upgrades between (test/e2e/release.test.ts).
E2E_RELEASES := 0.0.0-e2e.1 0.0.0-e2e.2
e2e-releases: build
	for version in $(E2E_RELEASES); do scripts/release.sh "$$version" || exit 1; done

test-e2e: build e2e-releases
	scripts/require-root.sh e2e
	npm run test:e2e

# The same end-to-end tier on newer engines, each in a Debian root of its own (test/engines):
# trixie (Docker 26.1, containerd 1.7, runc 1.1, compose 2.26) and sid (Docker 28.5,
# containerd 2.1, runc 1.3, compose 2.40). The roots are cached in ENGINE_ROOTS.
ENGINES ?= trixie sid
ENGINE_ROOTS ?= /var/cache/sharedprop/engines
test-e2e-engines: plugin runtime e2e-releases
	scripts/require-root.sh e2e
	SHAREDPROP_ENGINE_ROOTS="$(ENGINE_ROOTS)" test/engines/e2e.sh $(ENGINES)

# Debian packages the tests need (docker.io, busybox-static, docker-compose, gcc, a locale...).
test-deps:
	scripts/install-test-deps.sh

# The contributor's loop: lint, types and the unit tier. No root needed (the unit tier's mount
# tests run in a user and mount namespace of their own), a few minutes on a fresh clone.
check: lint typecheck test-unit

# Everything, nothing skipped: the three tiers plus lint, types and a benchmark smoke run. The
# packages come first, so that `make test` works on a fresh machine.
test: test-deps
	$(MAKE) lint typecheck test-unit test-integration test-e2e test-e2e-engines bench-smoke

# Mutation testing (StrykerJS, not part of `make test`: two to three hours on an idle 2-core
# machine for all three folders). MUTATE=glob narrows it, e.g. MUTATE=src/model/names.ts or
# 'src/system/**/*.ts'. Incremental: a run after a change re-tests only the mutants the change
# touched. Report: reports/mutation/mutation.json (and .html). Runs in a mount namespace of its
# own, as the unit tier does, so that no root is needed and the workers can mount.
mutate: $(NODE_MODULES)
	NODE_OPTIONS=--experimental-vm-modules scripts/in-mount-namespace.sh \
		npx --no-install stryker run stryker.config.mjs $(if $(MUTATE),--mutate '$(MUTATE)')

bench: build
	npx tsx bench/run.ts

bench-smoke: build
	npx tsx bench/run.ts --smoke

clean:
	rm -rf dist build reports .stryker-tmp
