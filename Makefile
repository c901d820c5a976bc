# npflow: every target makes (or reuses) a local .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo demos minimal digits mnist tables gmm gmm-torch ablation bench paper clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("npflow needs Python 3.10 or newer") if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,viz]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Train noise -> checkerboard, print the metrics, write the pictures (~1 min).
demo: $(STAMP)
	$(BIN)/python demos/checkerboard.py --out demos/output/checkerboard

# Every demo; solvers and likelihood reuse the checkerboard model of `make demo`.
demos: demo
	$(BIN)/python demos/paths_and_couplings.py --out demos/output/paths_and_couplings
	$(BIN)/python demos/solvers.py --model demos/output/checkerboard/model.npz --out demos/output/solvers
	$(BIN)/python demos/likelihood.py --model demos/output/checkerboard/model.npz --out demos/output/likelihood
	$(BIN)/python demos/data_to_data.py --out demos/output/data_to_data

# The whole method in one file of NumPy (no npflow): train, sample, one picture.
minimal: $(STAMP)
	$(BIN)/python demos/minimal.py --out demos/output/minimal

# Noise -> the 8x8 handwritten digits, with held-out bits/dim and sample quality beside baselines.
digits: $(STAMP)
	$(BIN)/python demos/digits.py --out demos/output/digits

# Noise -> 28x28 MNIST digits with the class-conditional U-Net, judged by a classifier, beside an MLP
# (1,150 s of CPU time: about 20 minutes).
mnist: $(STAMP)
	$(BIN)/python demos/mnist.py --out demos/output/mnist

# Synthetic penguins: a flow of a table scored against held-out rows, imputation, pictures.
tables: $(STAMP)
	$(BIN)/python demos/tables.py --out demos/output/tables

# Experiments (demos/experiments/): their figures and tables go to demos/experiments/figures.
EXPERIMENTS := demos/experiments

# Your own data in d = 2, 5, 10, 20, two mixtures: KL to a known density, through the CLI (11 min).
gmm: $(STAMP)
	$(BIN)/python $(EXPERIMENTS)/gmm_benchmark.py --out demos/output/gmm_benchmark

# A plain PyTorch flow-matching recipe on gmm's rows (needs torch: TORCH_PYTHON=/path/to/python).
TORCH_PYTHON ?= $(BIN)/python
gmm-torch: $(STAMP)
	PYTHONPATH=. $(TORCH_PYTHON) $(EXPERIMENTS)/gmm_torch_reference.py --mixture near --out demos/output/gmm_torch_reference_near.json
	PYTHONPATH=. $(TORCH_PYTHON) $(EXPERIMENTS)/gmm_torch_reference.py --mixture far --out demos/output/gmm_torch_reference_far.json

# One change at a time from a base configuration, one picture (runs are cached).
ablation: $(STAMP)
	$(BIN)/python $(EXPERIMENTS)/ablation.py --out $(EXPERIMENTS)/figures/ablation.png

# The paper check of Tong et al. (2024), 2-D table: 33 runs, about 50 minutes.
paper: $(STAMP)
	$(BIN)/python $(EXPERIMENTS)/paper_2d_table.py --out $(EXPERIMENTS)/figures

# Speed against PyTorch / SciPy when they are installed in the venv (they are never required).
bench: $(STAMP)
	$(BIN)/python $(EXPERIMENTS)/benchmark.py --out $(EXPERIMENTS)/figures/benchmark.json

clean:
	rm -rf $(VENV) demos/output .pytest_cache .hypothesis *.egg-info
