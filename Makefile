# The two commands of the README. Each sets up what it needs first (idempotent).
.PHONY: setup search lint test bench

setup:
	bash scripts/setup.sh

# The main job: a real search on real cat and dog images, Optuna in SQLite, MLflow in its local store.
search: setup
	specdsl search search_spaces/catsdogs.yaml

# The static checks CI runs before the tests (each fails the run): ruff's lint and format check, mypy.
lint: setup
	python3 -m ruff check specdsl tests benchmarks
	python3 -m ruff format --check specdsl tests benchmarks
	python3 -m mypy specdsl/spec specdsl/plan specdsl/backends

# The tests, as CI runs them.
test: setup
	python3 -m pytest -q

bench: setup
	python3 benchmarks/plan_speed.py
