"""Nested config objects (initializers, regularizers, constraints, activations) -> Keras 3.

Keras 1 wrote `{"name": "L1L2Regularizer", "l1": ..}` and bare names like "zero";
Keras 2 and tf.keras `{"class_name": "L1L2", "config": {..}}`, with a `dtype` key on
initializers that Keras 3 refuses. Every object is rebuilt from the tables in
upgrade_table and Keras 3's own signatures (keras3_schema); a class or key that
neither knows is refused by name, never passed through.
"""
from __future__ import annotations

from . import table as T
from ..errors import ModelError
from .keras3_schema import SCHEMA


class Untranslatable(ModelError):
    """One nested object has no honest Keras 3 form (the caller names the layer)."""


DROP = object()  # translate_value's answer for a key to leave out (Keras 3's default applies)


KINDS = {  # config-key suffix -> (kind, Keras 3 module, schema table)
    "_initializer": ("initializer", "keras.initializers", SCHEMA["initializers"]),
    "_regularizer": ("regularizer", "keras.regularizers", SCHEMA["regularizers"]),
    "_constraint": ("constraint", "keras.constraints", SCHEMA["constraints"]),
}


def kind_of(key: str):
    for suffix, kind in KINDS.items():
        if key.endswith(suffix):
            return kind
    return None


def translate_value(key, value, changes):
    """The Keras 3 form of config value `key`; `changes` collects what was done."""
    if key in ("activation", "recurrent_activation"):
        return activation(value, key)
    kind = kind_of(key)
    if kind is None or value is None:
        return value
    return _object(key, value, kind, changes)


def activation(value, key="activation"):
    if value is None:
        return "linear"
    if isinstance(value, dict):  # Keras 3 / late tf.keras: {"class_name": "function", "config": "relu"}
        cfg = value.get("config")
        if value.get("class_name") == "function" and isinstance(cfg, str):
            value = cfg
        else:
            raise Untranslatable(f"{key} is a serialized function object, not a named activation")
    if not isinstance(value, str):
        raise Untranslatable(f"{key}={value!r} is not an activation name")
    name = T.ACTIVATION_RENAMES.get(value, value)
    if name not in SCHEMA["activations"]:
        raise Untranslatable(f"{key}={value!r} is no Keras 3 activation")
    return name


def _object(key, value, kind, changes):
    what, module, table = kind
    if isinstance(value, str):
        return _named(key, value, what, module, table, changes)
    if not isinstance(value, dict):
        raise Untranslatable(f"{key}={value!r} is not a {what}")
    if "class_name" in value:  # Keras 2 / tf.keras / Keras 3
        old, cfg = value["class_name"], dict(value.get("config") or {})
    elif "name" in value:  # Keras 1: the class name beside its arguments
        old = value["name"]
        cfg = {k: v for k, v in value.items() if k != "name"}
    else:
        raise Untranslatable(f"{key}: a {what} with no class name ({sorted(value)})")
    renamed = T.OBJECT_RENAMES[what].get(old, (old, {}))
    cls, key_renames = renamed
    if cls is None:
        raise Untranslatable(f"{key}: {what} {old} has no Keras 3 equivalent")
    if cls not in table:
        raise Untranslatable(f"{key}: {what} class {old} is not one Keras 3 has; nothing written")
    out = {}
    for k, v in cfg.items():
        k3 = key_renames.get(k, k)
        if k3 is None or k in T.OBJECT_DROPPED_KEYS:
            changes.append(f"{key}: dropped {old}.{k} ({T.OBJECT_DROPPED_KEYS.get(k, 'Keras 3 has no such argument')})")
            continue
        if k3 not in table[cls]:
            if v is None:
                continue
            raise Untranslatable(f"{key}: {what} {old} setting {k}={v!r} is not in lstmtool's translation table")
        out[k3] = T.OBJECT_VALUE_RENAMES.get((cls, k3), {}).get(v, v) if isinstance(v, str) else v
    if cls != old:
        changes.append(f"{key}: {old} -> {cls}")
    return {"module": module, "class_name": cls, "config": out, "registered_name": None}


def _named(key, value, what, module, table, changes):
    if what == "initializer":
        if value in SCHEMA["initializer_names"]:
            return value
        if value in T.UNREADABLE_INITIALIZERS:
            changes.append(f"dropped {key}={value!r} ({T.UNREADABLE_INITIALIZERS[value]}); Keras 3's default "
                           "applies, and only to weights created anew")
            return DROP
        if value in T.INITIALIZER_NAMES:
            cls, cfg = T.INITIALIZER_NAMES[value]
            changes.append(f"{key}: {value!r} -> {cls}")
            return {"module": module, "class_name": cls, "config": dict(cfg), "registered_name": None}
    elif what == "regularizer" and value in ("l1", "l2", "l1_l2", "L1", "L2", "L1L2"):
        return value.lower() if value != "L1L2" else "l1_l2"
    elif what == "constraint" and value in T.CONSTRAINT_NAMES:
        return T.CONSTRAINT_NAMES[value]
    if value in table:  # a class name given as a string
        return value
    raise Untranslatable(f"{key}={value!r}: no Keras 3 {what} of that name")
