# mofa-bench: `make demo` sets everything up and runs the main job; `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out

.PHONY: setup demo test test-slow test-cuda bench gpu-checks gpu-study clean

setup:
	bash scripts/setup.sh

# The main job: the face model's contact sheet, then the quick study — MoFA through every
# renderer that trains on a CPU and the paper's baselines, trained and scored on the same
# synthetic faces (resumed where runs have finished) — and its report, then a reconstruction
# of scikit-image's astronaut with the MoFA run and with per-image optimisation.
ASTRONAUT = $$($(PY) -c "import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), 'data', 'astronaut.png'))")
QUICK_MOFA = $(OUT)/runs/quick/runs/mofa-per_vertex-resnet18-land1-s0

demo: setup
	$(VENV)/bin/mofa-bench info
	$(VENV)/bin/mofa-bench contact-sheet --out $(OUT)/contact_sheet.png --mesh $(OUT)/mean_face
	$(VENV)/bin/mofa-bench suite quick --out $(OUT)/runs/quick --device cpu
	$(VENV)/bin/mofa-bench report $(OUT)/runs/quick --out $(OUT)/quick_report
	$(VENV)/bin/mofa-bench reconstruct $(ASTRONAUT) --checkpoint $(QUICK_MOFA) --out $(OUT)/reconstruct
	$(VENV)/bin/mofa-bench reconstruct $(ASTRONAUT) --method fit --config quick --out $(OUT)/reconstruct_fit

# Default test run: fast CPU tests (slow ones are opt-in). pytest exits 5 when it
# collects no tests; that is a failure here, not a pass.
test: setup
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

test-slow: setup
	$(PY) -m pytest -q -m slow

test-cuda: setup
	$(PY) -m pytest -q --device all -m "not slow"

# CPU-sized benchmarks into reports/bench/ (CSV + markdown table + plot per benchmark).
bench: setup
	$(VENV)/bin/mofa-bench bench renderers --quick --device cpu
	$(VENV)/bin/mofa-bench bench train --quick --device cpu

# On a machine with an NVIDIA GPU: CUDA tests and the GPU benchmarks, logs in $(OUT)/gpu.
gpu-checks: setup
	PYTHON=$(PY) bash scripts/gpu_checks.sh $(OUT)/gpu

# On a machine with an NVIDIA GPU: the study at full length (suites gpu_study, then gpu_fig10)
# in calls of at most ~9 minutes (LIMIT_S) that resume from the runs' checkpoints; run it again
# until it says every suite is complete. Suite folders and reports in $(OUT)/gpu_study.
gpu-study: setup
	PYTHON=$(PY) bash scripts/gpu_study.sh $(OUT)/gpu_study

clean:
	rm -rf $(OUT) .pytest_cache
