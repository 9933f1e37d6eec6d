"""Types checked at the constructors' boundary: a wrong type is named before anything else runs.

Each construct lists its options once, as a table of ``Option`` rows; ``check_types`` reads the
table and raises one ``TypeError`` naming the construct's path, every wrong option, the type it
expects and the value it got. aws-cdk-lib's interfaces (``IBucket``, ``IRole``...) are Protocols
that ``isinstance`` can't check: an object implements one when its class (or a base) declares it
through jsii, or when it is the interface's own proxy (what ``Bucket.from_bucket_name`` returns).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec

from constructs import Construct

P = ParamSpec("P")


@dataclass(frozen=True)
class Option:
    """One keyword of a constructor: the types it accepts (None allowed when `optional`)."""

    name: str
    types: tuple[type, ...]
    optional: bool = True
    # Mapping[str, str]: a mapping whose keys and values are all str.
    str_mapping: bool = False


def required(name: str, *types: type) -> Option:
    return Option(name, types, optional=False)


def optional(name: str, *types: type) -> Option:
    return Option(name, types)


def str_mapping(name: str) -> Option:
    return Option(name, (Mapping,), str_mapping=True)


def typed_options(kind: str, *options: Option) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Check a construct's keyword options against the table before its __init__ runs (so a
    wrong type adds nothing to the tree). Options left out keep their defaults, always valid."""

    def decorate(init: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(init)
        def checked(*args: P.args, **kwargs: P.kwargs) -> None:
            scope = args[1] if len(args) > 1 else kwargs.get("scope")
            construct_id = args[2] if len(args) > 2 else kwargs.get("construct_id")
            check_types(kind, _path(scope, construct_id), options, kwargs)
            init(*args, **kwargs)

        checked.__typed_options__ = options  # type: ignore[attr-defined]
        return checked

    return decorate


def check_types(
    kind: str, path: str, options: tuple[Option, ...], values: Mapping[str, object]
) -> None:
    """Raise one TypeError listing every option whose value has the wrong type."""
    problems = [
        f"{option.name}: expected {expected(option)}, got {_described(values[option.name])}"
        for option in options
        if option.name in values and not _accepts(option, values[option.name])
    ]
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise TypeError(f"{kind} at '{path}' was given a wrong type:\n{listing}")


def _path(scope: object, construct_id: object) -> str:
    """The path the construct would have (it doesn't exist yet)."""
    parent = scope.node.path if isinstance(scope, Construct) else ""
    return f"{parent}/{construct_id}" if parent else str(construct_id)


def expected(option: Option) -> str:
    if option.str_mapping:
        names = "Mapping[str, str]"
    else:
        names = " or ".join(_type_name(kind) for kind in option.types)
    return f"{names} or None" if option.optional else names


def _accepts(option: Option, value: object) -> bool:
    if value is None:
        return option.optional
    if option.str_mapping:
        return isinstance(value, Mapping) and all(
            isinstance(key, str) and isinstance(item, str) for key, item in value.items()
        )
    return any(_is_instance(value, kind) for kind in option.types)


def _is_instance(value: object, kind: type) -> bool:
    if kind is bool:
        return type(value) is bool  # 1 or "yes" is no switch
    if not _is_jsii_interface(kind):
        return isinstance(value, kind)
    # An object jsii returns as several interfaces at once (kms.Alias.from_alias_name) delegates
    # to one proxy per interface.
    delegates: list[object] = getattr(value, "__dict__", {}).get("_delegates") or [value]
    return any(
        kind in _declared_interfaces(type(delegate)) or _is_proxy_of(type(delegate), kind)
        for delegate in delegates
    )


def _is_jsii_interface(kind: type) -> bool:
    return getattr(kind, "_is_protocol", False) and hasattr(kind, "__jsii_type__")


def _declared_interfaces(cls: type) -> set[type]:
    """Every jsii interface a class declares, with the interfaces those extend."""
    declared: set[type] = set()
    for base in cls.__mro__:
        for interface in getattr(base, "__jsii_ifaces__", None) or ():
            declared.update(interface.__mro__)
    return declared


def _is_proxy_of(cls: type, interface: type) -> bool:
    make_proxy: Any = getattr(interface, "__jsii_proxy_class__", None)
    if make_proxy is None:
        return False
    proxy = make_proxy()
    return isinstance(proxy, type) and issubclass(cls, proxy)


def _type_name(kind: type) -> str:
    if kind.__module__ == "builtins":
        return kind.__qualname__
    module = kind.__module__
    if module.startswith("personalize_export."):
        module = "personalize_export"  # where users import it from
    return f"{module}.{kind.__qualname__}"


def _described(value: object) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"
