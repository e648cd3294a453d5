# `make test-image`: build the generated agent's and the service's container images with a real Docker engine
# and run them.
# Included from the root Makefile; needs root (dockerd). Installs docker.io, debootstrap and iproute2 when
# missing, starts a private dockerd (own socket, data and exec roots, a network namespace with only
# loopback), builds the base image once, runs tests/image, and stops dockerd again, also on failure.

# Kept between runs: the engine's data root (base image, layer cache) and pip's HTTP cache.
IMAGE_CACHE      ?= /var/cache/livekit-platform/image
# No registry is reachable: the Dockerfile's PYTHON_IMAGE is built locally from this Debian suite
# (bookworm: Python 3.11). Bump the tag's revision when mk/image-engine.sh's recipe changes.
IMAGE_BASE_SUITE ?= bookworm
IMAGE_BASE       ?= lkp-local/python-$(IMAGE_BASE_SUITE):1
# 1 rebuilds the agent image's build stage without the layer cache (a cold build); the base image stays cached.
IMAGE_NO_CACHE   ?= 0
IMAGE_PYTEST_ARGS ?= -q

IMAGE_ENGINE := IMAGE_CACHE=$(IMAGE_CACHE) IMAGE_BASE=$(IMAGE_BASE) IMAGE_BASE_SUITE=$(IMAGE_BASE_SUITE) \
                $(CURDIR)/mk/image-engine.sh

.PHONY: test-image
test-image: sync ## build the agent's and the service's images offline with a real Docker engine, run them
	@set -euo pipefail; \
	$(IMAGE_ENGINE) install; \
	$(IMAGE_ENGINE) start; \
	trap '$(IMAGE_ENGINE) stop' EXIT; \
	$(IMAGE_ENGINE) base; \
	DOCKER_HOST=unix://$(IMAGE_CACHE)/run/docker.sock DOCKER_BUILDKIT=0 \
	IMAGE_NETNS=/proc/$$(cat $(IMAGE_CACHE)/run/docker.pid)/ns/net \
	IMAGE_CACHE=$(IMAGE_CACHE) IMAGE_BASE=$(IMAGE_BASE) IMAGE_NO_CACHE=$(IMAGE_NO_CACHE) \
	$(UV) run pytest tests/image -p no:cacheprovider $(IMAGE_PYTEST_ARGS)

.PHONY: image-cache-clean
image-cache-clean: ## remove the image tests' engine data and downloads ($(IMAGE_CACHE))
	@$(IMAGE_ENGINE) stop
	rm -rf $(IMAGE_CACHE)
