# Two commands do everything on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= all
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: env run laptop published rehearsal gpu-check test test-fast bench sweep report docs-figures lint clean-results

$(STAMP): envs/requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r envs/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP)

run: env  ## the embedded default config, end to end, offline; then the HTML report
	$(SNAKEMAKE) --profile profiles/default --cores $(CORES)
	$(SNAKEMAKE) --profile profiles/default --cores 1 --report results/report.html

laptop: env  ## alpha 0 / 2.5 / 25 x 5 seeds (config/laptop.yaml, <= 90 min on 2 cores): what a verdict needs
	$(SNAKEMAKE) --profile profiles/default --cores $(CORES) --configfile config/laptop.yaml

published: env  ## the published TDANN networks (OSF 64qv3; set the paths in config/published.yaml), no training
	$(SNAKEMAKE) --profile profiles/default --cores $(CORES) --configfile config/published.yaml
	$(SNAKEMAKE) --profile profiles/default --cores 1 --configfile config/published.yaml \
		--report results/published/report.html

test: env  ## the whole test suite (fails on zero collected tests)
	$(PY) -m pytest tests

test-fast: env
	$(PY) -m pytest tests -m "not slow and not slurm and not workflow"

rehearsal: env  ## config/paper.yaml at its real shapes on real-format fixtures, few steps (results/rehearsal/)
	test -d results/rehearsal/fixtures/floc || $(PY) -m tdann.fixtures results/rehearsal/fixtures
	$(SNAKEMAKE) --profile profiles/default --cores $(CORES) --configfile config/paper.yaml config/rehearsal.yaml

gpu-check: env  ## paper-shape steps of both streams and a SwapOpt layer on this machine's GPU (CPU: TINY=1)
	$(PY) -m tdann.gpucheck $(if $(TINY),--tiny,)

bench: env  ## speed and memory ratios (tests/benchmarks), printed
	for b in tests/benchmarks/bench_*.py; do echo "== $$b"; OMP_NUM_THREADS=1 $(PY) $$b || exit 1; done

sweep: env  ## the settings sweep (which cheap settings make maps emerge) and the objectives comparison
	$(SNAKEMAKE) --profile profiles/default --cores $(CORES) settings_sweep fig_objectives

report: env  ## the HTML report of the last run (with the settings sweep when it was built)
	$(SNAKEMAKE) --profile profiles/default --cores 1 --report results/report.html \
		$$(test -f results/tables/settings_sweep.csv && echo all settings_sweep fig_objectives)

docs-figures: env  ## copy small PNGs of the current figures into docs/ for the README
	$(PY) -m tdann.figures --docs results/figures docs/figures

lint: env  ## ruff (lint + import order), mypy (the library), snakemake --lint, snakefmt; the tests run them too
	$(VENV)/bin/ruff check workflow tests
	$(VENV)/bin/mypy
	$(SNAKEMAKE) --lint
	$(VENV)/bin/snakefmt --check .

clean-results:
	rm -rf results/* .snakemake
