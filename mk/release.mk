# Template releases: the SDK and its stand-ins as packages for teams on sdk_source=package. The release workflow
# (.github/workflows/release.yml) runs exactly these targets on a `v*` tag; docs/releasing.md says how to cut one.
# Included from the root Makefile.

RELEASE_DIR ?= $(CURDIR)/dist/release
# make release-publish PUBLISH_URL=<the feed's upload URL> [CHECK_URL=<its simple index URL>]; credentials come
# from the environment as uv reads them: UV_PUBLISH_USERNAME + UV_PUBLISH_PASSWORD, or UV_PUBLISH_TOKEN.
PUBLISH_URL ?=
CHECK_URL   ?=
TAG         ?=
export RELEASE_DIR PUBLISH_URL CHECK_URL TAG

.PHONY: release-check
release-check: uv ## check that versions, the SDK range, the CHANGELOG and git tags agree (TAG=vX.Y.Z: also the tag)
	$(UV) run --no-project python mk/release_check.py $${TAG:+--tag "$$TAG"}

.PHONY: release-build
release-build: uv ## build livekit-platform-sdk and livekit-platform-testing (wheel + sdist) into RELEASE_DIR
	rm -rf "$$RELEASE_DIR"
	$(UV) build --no-sources --package livekit-platform-sdk --out-dir "$$RELEASE_DIR"
	$(UV) build --no-sources --package livekit-platform-testing --out-dir "$$RELEASE_DIR"

.PHONY: release-publish
release-publish: uv ## upload RELEASE_DIR to the feed: PUBLISH_URL=<upload URL> (credentials from UV_PUBLISH_*)
	@test -n "$$PUBLISH_URL" || { echo "make release-publish needs PUBLISH_URL=<the feed's upload URL> (and UV_PUBLISH_USERNAME/UV_PUBLISH_PASSWORD or UV_PUBLISH_TOKEN)" >&2; exit 2; }
	@ls "$$RELEASE_DIR"/*.whl >/dev/null 2>&1 || { echo "$$RELEASE_DIR holds no wheel: run make release-build first" >&2; exit 2; }
	$(UV) publish --publish-url "$$PUBLISH_URL" $${CHECK_URL:+--check-url "$$CHECK_URL"} "$$RELEASE_DIR"/*
