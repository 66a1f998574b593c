# Two commands do all the set-up on a fresh Debian machine:
#   make run   - install, create the sample dossiers, ingest samples/ (HL7v2, CDA, PDF) into ./var,
#                print the outcome
#   make test  - install, run the whole test suite (it starts and stops its own PostgreSQL
#                and S3 servers)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DMP_HOME ?= $(CURDIR)/var

.PHONY: run test lint bench bench-mllp soak system-deps clean

# Bytecode: pip compiles the packages it installs one file after another (a third of the
# install's CPU); compileall does the same files on every core.
$(STAMP): requirements.lock pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --require-hashes -r requirements.lock
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib >/dev/null
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Debian packages: PostgreSQL (store tests), tesseract with French data (OCR), chromium and
# its chromedriver (the console's browser tests). Installed only
# when missing, and only when we are root (otherwise say what is missing).
system-deps:
	@missing=""; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr"; \
	[ -e /usr/share/tesseract-ocr/5/tessdata/fra.traineddata ] || ls /usr/share/tesseract-ocr/*/tessdata/fra.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-ocr-fra"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (run as root, or install them)"; fi; \
	fi

run: $(STAMP)
	@mkdir -p $(DMP_HOME)
	@$(BIN)/dmp-ingest dossier create --from-csv samples/patients.csv
	@DMP_MAPPINGS_DIR=$(CURDIR)/samples/mappings $(BIN)/dmp-ingest ingest --source samples samples/hl7v2 samples/cda/*.xml samples/pdf/*.pdf

# The MLLP tests drive @medplum/hl7's Hl7Client and node-hl7-client (clients we did not
# write) with Node.js.
NODE_CLIENT := tests/node_mllp
$(NODE_CLIENT)/node_modules/.installed: $(NODE_CLIENT)/package-lock.json
	npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund --loglevel=error
	touch $@

# Bytecode is written (an environment may say PYTHONDONTWRITEBYTECODE=1): the suite starts
# hundreds of Python processes of ours (services, CLIs, pools), each of which otherwise compiled
# every module of this project from source again, about 0.2 s of CPU each.
#
# Two pytest-xdist workers: one process left half of the two cores idle while its tests waited
# on servers, sockets and subprocesses. The tests of the Prefect harness form one group
# (`--dist loadgroup`), so one worker starts the session's one harness; TEST_WORKERS=0 runs
# the suite in one process.
TEST_WORKERS ?= 2
test: system-deps $(STAMP) $(NODE_CLIENT)/node_modules/.installed
	env -u PYTHONDONTWRITEBYTECODE DMP_REQUIRE_POSTGRES=1 DMP_REQUIRE_NODE=1 DMP_REQUIRE_CHROMIUM=1 $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_ingest.py

bench-mllp: $(STAMP)
	$(BIN)/python bench/bench_mllp.py

# Not part of `make test`: crash points at random (both stores), fuzzing with many examples,
# a steady-rate MLLP soak; then docs/reliability.md. Shorter: make soak SOAK_MINUTES=2
SOAK_MINUTES ?= 30
SOAK_RATE ?= 20
SOAK_FUZZ ?= 2000
SOAK_CRASHES ?= 60
SOAK_DIR := var/soak
soak: $(STAMP)
	@mkdir -p $(SOAK_DIR) && rm -f $(SOAK_DIR)/reliability.log $(SOAK_DIR)/mllp.json
	status=0; PYTHONPATH=$(CURDIR) DMP_RELIABILITY_LOG=$(CURDIR)/$(SOAK_DIR)/reliability.log \
	  DMP_CRASH_RANDOM=$(SOAK_CRASHES) DMP_CRASH_SEED=$$RANDOM DMP_FUZZ_EXAMPLES=$(SOAK_FUZZ) \
	  DMP_FUZZ_RANDOM=1 DMP_REQUIRE_POSTGRES=1 \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_crash_points.py \
	  tests/test_fuzz.py || status=$$?; \
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/soak_mllp.py --minutes $(SOAK_MINUTES) \
	  --rate $(SOAK_RATE) --out $(SOAK_DIR)/mllp.json; \
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/reliability_report.py \
	  --log $(SOAK_DIR)/reliability.log --soak $(SOAK_DIR)/mllp.json --pytest-status $$status \
	  --setting "crash points drawn at random=$(SOAK_CRASHES)" \
	  --setting "fuzz examples per strategy and store=$(SOAK_FUZZ)" \
	  --setting "soak minutes=$(SOAK_MINUTES)" --setting "soak rate=$(SOAK_RATE)/s"; \
	exit $$status

clean:
	rm -rf $(VENV) var $(NODE_CLIENT)/node_modules
