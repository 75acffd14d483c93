"""aiogram's Telegram models built on first use instead of at import (upstream: aiogram #1513).

Importing aiogram 3.31 costs about 150 MB and two seconds because pydantic builds a validator
and a serializer for every one of its ~400 Telegram types and ~185 API methods, while the bot
uses a few dozen (with this module: about 40 MB and half a second). pydantic can defer that
(`defer_build`), and aiogram's `TelegramObject` already asks for it, but
`aiogram/types/__init__.py` then calls `model_rebuild()` on every type to resolve the forward
references its modules import only under `TYPE_CHECKING`, and `model_rebuild()` builds
regardless. `install()` puts an import hook in front of three aiogram modules, without
touching their files:

* `aiogram.types.base`: `TelegramObject.model_rebuild` is overridden so that, while
  `aiogram.types` is executing, a rebuild with aiogram's namespace only resolves the model's
  field annotations and leaves the validator deferred. Every later `model_rebuild()`, including
  the one pydantic makes on first validation, is pydantic's own. Because the fields are then
  complete, any model or `TypeAdapter` that nests aiogram types builds without the namespace.
* `aiogram.types`: marks the window in which those rebuilds are deferred.
* `aiogram.methods.base`: `TelegramMethod` gets `defer_build=True` before any method class is
  created, so the methods are built on first use too.

It relies on, in aiogram 3.31: `TelegramObject.model_config["defer_build"]` being true, the
`model_rebuild(_types_namespace=...)` loop at the end of `aiogram/types/__init__.py`, and
`TelegramMethod` living in `aiogram.methods.base`; in pydantic 2.13: the private
`_fields.rebuild_model_fields` (returning fields and extra info), `_config.ConfigWrapper`
and `_namespace_utils.NsResolver`, the same calls `model_rebuild()` makes before building.
Where it can tell that one of these is gone, the hook leaves aiogram as it is and logs a
warning; tests/test_lazy_aiogram.py fails if any of it changes. It must be installed before
aiogram is first imported: `bot/__init__.py` does, so every entry point (`vigil`, `python -m
bot`, tests, bench) has it; importing `handlers` before anything in `bot` would be too late.
"""

from __future__ import annotations

import importlib.abc
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

logger = logging.getLogger(__name__)

TYPES = "aiogram.types"
TYPES_BASE = "aiogram.types.base"
METHODS_BASE = "aiogram.methods.base"
_PATCHED = (TYPES, TYPES_BASE, METHODS_BASE)
_REBUILD_FIELDS_PARAMS = ["cls", "config_wrapper", "ns_resolver", "typevars_map"]


def install() -> bool:
    """Put the hook first in `sys.meta_path`; False if aiogram's types were imported already."""
    if any(isinstance(finder, LazyAiogramFinder) for finder in sys.meta_path):
        return True
    if TYPES_BASE in sys.modules:
        logger.warning("aiogram was imported before bot.lazy_aiogram: its models are eager")
        return False
    sys.meta_path.insert(0, LazyAiogramFinder())
    return True


def installed_finder() -> LazyAiogramFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, LazyAiogramFinder)), None)


class LazyAiogramFinder(importlib.abc.MetaPathFinder):
    """Finds the three modules with the other finders and wraps their loaders."""

    def __init__(self) -> None:
        self.collecting = False  # inside aiogram/types/__init__.py
        self.deferred = 0  # types whose build was left to first use
        self.methods_deferred = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in _PATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if isinstance(spec.loader, importlib.abc.Loader):
                    spec.loader = _PatchingLoader(spec.loader, fullname, self)
                return spec
        return None

    def exec_patched(self, name: str, module: ModuleType, run: Callable[[], None]) -> None:
        if name == TYPES:
            self.collecting = True
            try:
                run()
            finally:
                self.collecting = False
            return
        run()
        base = getattr(module, "TelegramObject" if name == TYPES_BASE else "TelegramMethod", None)
        if base is None:
            logger.warning("aiogram changed (%s): its models are eager", name)
        elif name == TYPES_BASE:
            self._defer_types(base)
        else:
            base.model_config["defer_build"] = True
            self.methods_deferred = True

    def _defer_types(self, base: type[BaseModel]) -> None:
        try:
            from pydantic._internal._config import ConfigWrapper
            from pydantic._internal._fields import rebuild_model_fields
            from pydantic._internal._namespace_utils import NsResolver
        except ImportError as exc:
            logger.warning("pydantic changed (%s): aiogram's models are eager", exc)
            return
        params = list(inspect.signature(rebuild_model_fields).parameters)
        if params != _REBUILD_FIELDS_PARAMS or not base.model_config.get("defer_build"):
            logger.warning("aiogram or pydantic changed: aiogram's models are eager")
            return
        finder = self

        def model_rebuild(
            cls: type[BaseModel],
            *,
            force: bool = False,
            raise_errors: bool = True,
            _parent_namespace_depth: int = 2,
            _types_namespace: Mapping[str, Any] | None = None,
        ) -> bool | None:
            if finder.collecting and _types_namespace is not None and not force:
                if not cls.__pydantic_fields_complete__:
                    cls.__pydantic_fields__, cls.__pydantic_extra_info__ = rebuild_model_fields(
                        cls,
                        config_wrapper=ConfigWrapper(cls.model_config, check=False),
                        ns_resolver=NsResolver(parent_namespace=_types_namespace),
                        typevars_map={},
                    )
                finder.deferred += 1
                return None
            inherited = super(base, cls).model_rebuild  # type: ignore[misc]  # runtime base
            rebuilt: bool | None = inherited(
                force=force,
                raise_errors=raise_errors,
                _parent_namespace_depth=_parent_namespace_depth + 1,  # this frame
                _types_namespace=_types_namespace,
            )
            return rebuilt

        # The override is the point; mypy sees a method replaced by a differently typed one.
        base.model_rebuild = classmethod(model_rebuild)  # type: ignore[method-assign, assignment]


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, with the finder's patch around `exec_module`."""

    def __init__(self, inner: importlib.abc.Loader, name: str, finder: LazyAiogramFinder) -> None:
        self._inner = inner
        self._name = name
        self._finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._finder.exec_patched(self._name, module, lambda: self._inner.exec_module(module))

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package...
        return getattr(self._inner, name)
