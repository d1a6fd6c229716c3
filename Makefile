# The two commands of the README. Each sets up what it needs first (idempotent).
.PHONY: setup search test bench

setup:
	bash scripts/setup.sh

# The main job: a real search on real cat and dog images, Optuna in SQLite, MLflow in its local store.
search: setup
	specdsl search search_spaces/catsdogs.yaml

# The tests, as CI runs them.
test: setup
	python3 -m pytest -q

bench: setup
	python3 benchmarks/plan_speed.py
