"""The package version (read by pyproject.toml, the generated Keras source and the MLflow runs)."""

__version__ = "0.1.0"
