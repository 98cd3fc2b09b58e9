"""The config against its JSON schema, each violation as one line.

``workflow/schemas/config.schema.yaml`` checks each value on its own (types,
ranges, names). `validate_config` fills in the schema's defaults, as
``snakemake.utils.validate`` does, and turns the first violation into a
`ConfigError` of one line naming the key path, the bad value and what is
allowed, with the nearest valid key or value for a typo::

    config cohort: unknown key 'n_subjects' (did you mean cohort.adhd.n_subjects or
    cohort.demo.n_subjects?); allowed: source, sheet, ...
    config clean.standardize: unknown value 'zscores' (did you mean 'zscore'?); allowed:
    one of zscore_sample, zscore, psc, false, null
    config cohort.adhd.n_subjects: 41 is out of range; allowed: an integer from 1 to 40

instead of jsonschema's message followed by the schema.
"""

import copy
import difflib

from .config import ConfigError
from .fetch.atlas_library import did_you_mean

__all__ = ["describe", "key_paths", "schema_error", "validate_config"]

#: How a JSON type is named in a message.
TYPE_NOUNS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}

#: A mapping's keys that are names the user chooses (``atlases.<name>``).
NAME = "<name>"


def validate_config(config, schema):
    """Fill in the schema's defaults and check the config against it.

    Parameters
    ----------
    config : dict
        The merged config; missing keys with a default in the schema are
        added (in place), as ``snakemake.utils.validate(config, schema)``.
    schema : dict
        The JSON schema (draft 2020-12), e.g. ``yaml.safe_load`` of
        ``workflow/schemas/config.schema.yaml``.

    Raises
    ------
    ConfigError
        The first violation, in the schema's key order (`schema_error`).
    """
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, child in properties.items():
                if "default" in child:
                    instance.setdefault(name, copy.deepcopy(child["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    validator_class = validators.extend(Draft202012Validator,
                                        {"properties": properties_with_defaults})
    errors = list(validator_class(schema).iter_errors(config))
    if errors:
        raise ConfigError(schema_error(errors[0], schema))


def schema_error(error, schema):
    """One line for a jsonschema ``ValidationError``.

    Parameters
    ----------
    error : jsonschema.exceptions.ValidationError
        A violation found with ``schema``.
    schema : dict
        The whole schema (for the nearest valid key of an unknown one).

    Returns
    -------
    str
        ``config <key path>: <the bad value and why>; allowed: <what is>``.
    """
    path = list(error.absolute_path)
    where = _where(path)
    value, rule, sub = error.instance, error.validator, error.schema
    allowed = describe(sub)
    if "propertyNames" in error.absolute_schema_path:
        return (f"{where}: the name {_show(value)} is not allowed; allowed: names matching "
                f"{sub.get('pattern', '')}")
    if rule == "additionalProperties":
        known = list(sub.get("properties", {}))
        unknown = next(k for k in value if k not in known)
        hint = _nearest_keys(unknown, [p for p in path if not isinstance(p, int)], schema)
        return f"{where}: unknown key {_show(unknown)}{hint}; allowed: {', '.join(known)}"
    if rule == "required":
        missing = next(k for k in error.validator_value if k not in value)
        child = sub.get("properties", {}).get(missing, {})
        return f"{_where(path + [missing])}: required, missing; allowed: {describe(child)}"
    if rule == "enum":
        options = [o for o in error.validator_value if isinstance(o, str)]
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        return f"{where}: unknown value {_show(value)}{hint}; allowed: {allowed}"
    if rule == "type":
        return f"{where}: {_show(value)} is {_noun(value)}; allowed: {allowed}"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {_show(value)} is out of range; allowed: {allowed}"
    reasons = {
        "minItems": lambda: f"has {len(value)} item(s)",
        "maxItems": lambda: f"has {len(value)} item(s)",
        "uniqueItems": lambda: "repeats an item",
        "minLength": lambda: "is too short",
        "minProperties": lambda: "is empty" if not value else "has too few entries",
        "pattern": lambda: f"does not match {error.validator_value}",
    }
    reason = reasons[rule]() if rule in reasons else "is not allowed"
    return f"{where}: {_show(value)} {reason}; allowed: {allowed}"


def describe(schema):
    """What a (sub)schema allows, in words: ``an integer from 1 to 40``,
    ``one of ledoit_wolf, empirical, graphical_lasso_cv``, ``a string or null``."""
    if "enum" in schema:
        return "one of " + ", ".join(_show(v, quote=False) for v in schema["enum"])
    for either in ("oneOf", "anyOf"):
        if either in schema:
            return " or ".join(describe(s) for s in schema[either])
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    words = []
    for kind in [t for t in types if t != "null"]:
        noun = TYPE_NOUNS[kind]
        if kind in ("integer", "number"):
            noun += _range(schema)
        elif kind == "string" and "pattern" in schema:
            noun += f" matching {schema['pattern']}"
        elif kind == "string" and schema.get("minLength"):
            noun += " (not empty)"
        elif kind == "array":
            noun += _list_rules(schema)
        elif kind == "object" and schema.get("properties"):
            noun += " with keys " + ", ".join(schema["properties"])
        elif kind == "object" and schema.get("minProperties"):
            noun += f" of at least {schema['minProperties']} entry"
        words.append(noun)
    if "null" in types:
        words.append("null")
    return " or ".join(words) or "a value"


def key_paths(schema, prefix=()):
    """Every key path of a schema's mappings, e.g. ``("cohort", "demo", "seed")``;
    the keys of a mapping of user-chosen names are under `NAME`."""
    paths = []
    for name, child in schema.get("properties", {}).items():
        paths.append((*prefix, name))
        paths += key_paths(child, (*prefix, name))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        paths += key_paths(extra, (*prefix, NAME))
    return paths


def _nearest_keys(unknown, parent, schema):
    """`` (did you mean a.b or c.d?)``: the keys of ``parent``'s mapping spelled like
    ``unknown``; else keys of that name (or spelled like it) deeper under ``parent``;
    else anywhere in the schema; ``""`` when none."""
    paths = key_paths(schema)
    generic = [NAME if isinstance(p, str) and _under_names(schema, parent[:i]) else p
               for i, p in enumerate(parent)]
    depth = len(generic)
    siblings = [p[-1] for p in paths if len(p) == depth + 1 and list(p[:depth]) == generic]
    close = difflib.get_close_matches(unknown, siblings, n=3, cutoff=0.75)
    found = [(*generic, k) for k in close]
    for scope in (lambda p: list(p[:depth]) == generic, lambda p: True):
        if found:
            break
        candidates = [p for p in paths if scope(p) and len(p) > depth + 1]
        same = sorted(p for p in candidates if p[-1] == unknown)
        alike = difflib.get_close_matches(unknown, sorted({p[-1] for p in candidates}),
                                          n=3, cutoff=0.8)
        found = same or sorted(p for p in candidates if p[-1] in alike)
    if not found:
        return ""
    shown = [(*parent, *p[depth:]) if list(p[:depth]) == generic else p for p in found[:3]]
    return f" (did you mean {' or '.join('.'.join(p) for p in shown)}?)"


def _under_names(schema, path):
    """Whether the mapping at ``path`` is a mapping of user-chosen names."""
    node = schema
    for key in path:
        properties = node.get("properties", {})
        if key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return not node.get("properties") and isinstance(node.get("additionalProperties"), dict)


def _where(path):
    """``config cohort.adhd.subjects[0]`` (``config`` for the root)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"config {text}" if text else "config"


def _range(schema):
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f" from {low} to {high}"
    bounds = [f"{sign} {v}" for sign, v in ((">=", low), (">", above), ("<=", high),
                                             ("<", below)) if v is not None]
    return " " + " and ".join(bounds) if bounds else ""


def _list_rules(schema):
    rules = []
    if "items" in schema:
        rules.append(f"each {describe(schema['items'])}")
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and low == high:
        rules.append(f"exactly {low} items")
    else:
        rules += [f"at least {low} item{'s' * (low != 1)}"] if low is not None else []
        rules += [f"at most {high} item{'s' * (high != 1)}"] if high is not None else []
    if schema.get("uniqueItems"):
        rules.append("no repeats")
    return f" ({'; '.join(rules)})" if rules else ""


def _noun(value):
    """The JSON type of a YAML value, as a noun (``a string``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, types in (("integer", int), ("number", float), ("string", str),
                        ("array", list), ("object", dict)):
        if isinstance(value, types):
            return TYPE_NOUNS[kind]
    return type(value).__name__


def _show(value, quote=True, limit=60):
    """A value on one line as in YAML (``null``, ``true``, ``[a, 2]``), a string
    quoted (``'abc'``) unless ``quote`` is false or it is inside a list or mapping."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value) if quote else value
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v, False) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_show(v, False)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
