# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
OUT ?= demo-out

.PHONY: demo test lint bench clean

$(BIN)/richness: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch (a looser pin would pull a multi-GB CUDA build).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,ray,hf]'
	touch $(BIN)/richness

demo: $(BIN)/richness
	$(BIN)/richness demo --out $(OUT)

test: $(BIN)/richness
	$(BIN)/ruff check src tests benchmarks
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q

bench: $(BIN)/richness
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_meter.py --json docs/bench_meter.json
	$(BIN)/python benchmarks/bench_ntk.py --json docs/bench_ntk.json
	$(BIN)/python benchmarks/bench_sweep.py --json docs/bench_sweep.json

clean:
	rm -rf $(VENV) $(OUT)
