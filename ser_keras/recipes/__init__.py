"""The architecture registry: name -> recipe.

Modules are imported when a recipe is first asked for, so the CLI can list the names (and
reject a bad one) without importing Keras. Adding an architecture means one new module in
this package plus one line in ``_MODULES`` (or ``register(recipe)`` from outside).
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError

_MODULES = {
    "cldnn": "ser_keras.recipes.cldnn",
    "bigru_mha": "ser_keras.recipes.bigru_mha",
    "strl_ser": "ser_keras.recipes.strl_ser",
    "bilstm_att_mtl": "ser_keras.recipes.bilstm_att_mtl",
}
_LOADED: dict = {}


def names() -> list[str]:
    return list(dict.fromkeys([*_MODULES, *_LOADED]))


def get_recipe(name: str):
    """The recipe registered as ``name`` (ConfigError naming the valid ones otherwise)."""
    if name not in _LOADED:
        if name not in _MODULES:
            raise ConfigError(f"unknown --arch '{name}'; choose one of: {', '.join(names())}")
        _LOADED[name] = importlib.import_module(_MODULES[name]).RECIPE
    return _LOADED[name]


def register(recipe) -> None:
    """Add (or replace) a recipe object at run time, e.g. a user's own architecture or a test's."""
    _LOADED[recipe.name] = recipe


def unregister(name: str) -> None:
    _LOADED.pop(name, None)
