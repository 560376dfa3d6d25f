"""Hyperparameter search with KerasTuner (`python cli.py tune`).

- ``hypermodels``: ``RecipeHyperModel``, one KerasTuner HyperModel per architecture recipe, built
  and compiled exactly as `train` builds (data statistics and features cached per search);
- ``search``: `tune` itself: local search, chief or worker, then the best trial as a run;
- ``searchdir``: which search directory a command continues (resumable), its search.json;
- ``tuners``: KerasTuner's tuners and oracle with the search's hooks (progress, trials.csv);
- ``cluster``: KerasTuner's chief / worker mode with timeouts for dead workers and chiefs;
- ``trials``: trials.csv, search.png and the progress lines;
- ``best``: the best trial as a normal run directory (``<search dir>/best``).
"""

__all__ = ["best", "cluster", "hypermodels", "search", "searchdir", "trials", "tuners"]
