# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages: FFmpeg libraries for torchcodec (datasets 5 decodes audio through it) and the
# packages whose real recordings the demo and the tests use.
# The asterisk prompts in five more languages widen the HEAR study's unlabelled pre-training pool
# (scripts/reproduce_hear.py).
APT_PACKAGES := ffmpeg hydrogen-data asterisk-core-sounds-en-wav alsa-utils sound-theme-freedesktop \
	asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install system-deps test test-fast lint help-cache demo cr-study reproduce-hear bench clean

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The venv is rebuilt only when the package metadata changes (quick no-op otherwise).
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: system-deps $(STAMP)

# The full suite (what CI runs, after `make lint`: .ci/run); ~15 min on 2 cores.
test: install
	$(PY) -m pytest -q -p no:cacheprovider tests

# Everything but the end-to-end runs marked `slow` (subprocess training, studies, wheel build): < 2 min.
test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests

# ruff's pyflakes/pycodestyle errors, import order and pyupgrade rules (pyproject.toml [tool.ruff]);
# `$(VENV)/bin/ruff check --fix .` applies the automatic fixes.
lint: install
	$(VENV)/bin/ruff check .

# scripts/_help/*.json: what each script's parser prints for `--help`, so `--help` answers without importing
# torch (hf_audio_cr/cli.py). Rerun after changing a script's arguments; tests/test_cli_help.py says when.
help-cache: install
	$(PY) -m hf_audio_cr.cli scripts/*.py

demo: install
	$(PY) scripts/demo.py $(DEMO_ARGS)

# The CR study (README "Consistency regularisation, measured"): 18 min measured on 2 shared cores; CR_STUDY_ARGS=--quick for a minute.
cr-study: install
	$(PY) scripts/reproduce_cr.py $(CR_STUDY_ARGS)

# HEAR's three stages + Table IV on FSDD (results.json, table.md, PNG in runs/reproduce_hear; ~20 min from an empty folder); HEAR_ARGS=--quick
reproduce-hear: install
	$(PY) scripts/reproduce_hear.py $(HEAR_ARGS)

bench: install
	$(PY) scripts/bench_feature_extraction.py
	$(PY) scripts/bench_data.py
	$(PY) scripts/benchmark_efficiency.py

clean:
	rm -rf $(VENV) build *.egg-info
