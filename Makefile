# The two commands of the README. Each sets up what it needs first (idempotent).
.PHONY: setup setup-test search test bench

# What the search needs (no test tools, no browser, no database server)
setup:
	bash scripts/setup.sh

# ... and what the tests and benchmarks need besides
setup-test:
	bash scripts/setup.sh --test

# The main job: a real search on real cat and dog images, Optuna in SQLite, MLflow in its local store.
search: setup
	specdsl search search_spaces/catsdogs.yaml

# The tests, as CI runs them.
test: setup-test
	python3 -m pytest -q

bench: setup-test
	python3 benchmarks/plan_speed.py
