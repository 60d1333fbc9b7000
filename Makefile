# Two commands on a fresh machine (Python 3.11, CPU only):
#   make demo   train the default digits model, export it to netx HDF5, run it in Lava
#   make test   run the test suite, the import-boundary contract and ruff
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gradr-lava-installed
RUN_DIR ?= runs/digits

.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml requirements/runtime.txt requirements/dev.txt scripts/install.sh
	bash scripts/install.sh $(VENV) $(PYTHON)
	touch $@

venv: $(STAMP)

# A second `make demo` resumes the finished run (no retraining) and deploys it again.
demo: $(STAMP)
	$(BIN)/gradr-lava train --dataset digits --out $(RUN_DIR) \
		$$([ -f $(RUN_DIR)/checkpoint.pt ] && echo --resume)
	$(BIN)/gradr-lava deploy $(RUN_DIR)/model.net --target lava-sim --out $(RUN_DIR)

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/default_model.py --json runs/bench/default_model.json

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
