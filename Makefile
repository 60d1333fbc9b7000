# Two commands on a fresh machine (Python 3.11, CPU only):
#   make demo   train the default digits model, export it to netx HDF5, run it in Lava
#   make test   run the test suite, the import-boundary contract and ruff
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gradr-lava-installed
RUN_DIR ?= runs/digits

.PHONY: venv demo test lint bench shipped-models clean

$(STAMP): pyproject.toml scripts/install.sh
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

# The small trained networks shipped in models/ (netx HDF5): dense and Grad R-pruned digits-mlp,
# trained with seed 0 exactly as below. Try them without training:
#   gradr-lava map models/digits-mlp-gradr.net; gradr-lava deploy models/digits-mlp.net ...
shipped-models: $(STAMP)
	rm -rf runs/shipped
	$(BIN)/gradr-lava train --dataset digits --out runs/shipped/dense --quiet
	$(BIN)/gradr-lava train --dataset digits --out runs/shipped/gradr --quiet \
		--prune gradr --gradr-mode schedule --target-connectivity 0.25 --gradr-finetune 0.25
	cp runs/shipped/dense/model.net models/digits-mlp.net
	cp runs/shipped/gradr/model.net models/digits-mlp-gradr.net

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
