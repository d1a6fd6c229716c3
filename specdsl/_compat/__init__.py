"""Third-party private APIs, each behind one small module whose test fails loudly when an upgrade changes it.

``_optuna`` (a study's storage and ids, trial ids, counting and reading trials by number, heartbeats and stale
trials, the trials a running trial keeps), ``_pydantic`` (giving a model class its validator from a core
schema built before: the validators' cache) and ``_torch`` (telling torch.compile's own failures from others).
``tests/compat/`` fails naming the dependency's version when an upgrade changes one of them, and
``tests/test_layering.py`` fails when a private API of a dependency is used anywhere else. Part of the base: any
package may import these modules."""
