# The two commands of the README. Each sets up what it needs first (idempotent).
.PHONY: setup setup-test search lint test bench

# What the search needs (no test tools, no browser, no database server)
setup:
	bash scripts/setup.sh

# ... and what the tests and benchmarks need besides
setup-test:
	bash scripts/setup.sh --test

# The main job: a real search on real cat and dog images, Optuna in SQLite, MLflow in its local store.
search: setup
	specdsl search search_spaces/catsdogs.yaml

# The static checks CI runs before the tests (each fails the run): ruff's lint and format check, mypy.
lint: setup-test
	python3 -m ruff check specdsl tests benchmarks
	python3 -m ruff format --check specdsl tests benchmarks
	python3 -m mypy specdsl/spec specdsl/plan specdsl/backends

# The tests, as CI runs them.
test: setup-test
	python3 -m pytest -q -n 2

bench: setup-test
	python3 benchmarks/plan_speed.py
