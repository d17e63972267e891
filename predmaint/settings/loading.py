"""Loading settings: a YAML file bound onto the schema, environment overrides, cross-checks.

Settings come from a YAML file (the packaged ``default.yaml`` unless
``--config`` names another) and a few environment overrides for what differs
per deployment (``PREDMAINT_KAFKA_BOOTSTRAP``, ``PREDMAINT_STORAGE_URL``...).
Secrets are never in the file: the file names the environment variable that
holds each one (:class:`~predmaint.settings.secrets.Secret` never prints its value).

Every error names the file and the dotted path of the field.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from predmaint.errors import SettingsError, TargetConfigError
from predmaint.settings.schema import AssetSettings, Settings
from predmaint.settings.targets import Target

__all__ = ["DEFAULT_CONFIG_NAME", "ENV_OVERRIDES", "default_config_text", "load_settings", "parse_fleet"]

#: The packaged default configuration, read with :mod:`importlib.resources`.
DEFAULT_CONFIG_NAME = "default.yaml"


def default_config_text() -> str:
    """The packaged ``default.yaml`` (works from a wheel, a zip or the source tree)."""
    return importlib.resources.files("predmaint.settings").joinpath(DEFAULT_CONFIG_NAME).read_text()


#: Environment variables that override one setting each (what differs per deployment).
ENV_OVERRIDES = {
    "PREDMAINT_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "PREDMAINT_KAFKA_SECURITY_PROTOCOL": ("kafka", "security_protocol"),
    "PREDMAINT_KAFKA_SASL_MECHANISM": ("kafka", "sasl_mechanism"),
    "PREDMAINT_STORAGE_KIND": ("storage", "kind"),
    "PREDMAINT_STORAGE_URL": ("storage", "url"),
    "PREDMAINT_INFLUX_DATABASE": ("storage", "database"),
    "PREDMAINT_INFLUX_ORG": ("storage", "org"),
    "PREDMAINT_INFLUX_BUCKET": ("storage", "bucket"),
    "PREDMAINT_RECOVERY_DIR": ("recovery", "dir"),
}


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain YAML data, naming ``where`` on error."""
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise SettingsError(f"{where}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SettingsError(f"{where}: unknown field(s) {unknown}; known: {sorted(names)}")
        kwargs = {k: _build(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        except SettingsError as exc:
            # A section's own check may name its fields in full (``storage.kind: ...``).
            named = not where or str(exc).startswith(f"{where}.")
            raise SettingsError(str(exc) if named else f"{where}: {exc}") from None
    origin = typing.get_origin(cls)
    if origin is typing.Literal:
        choices = typing.get_args(cls)
        if data not in choices:
            raise SettingsError(f"{where}: {data!r} is not one of {[c for c in choices if c != '']}")
        return data
    if origin is tuple:
        args = typing.get_args(cls)
        if not isinstance(data, (list, tuple)):
            raise SettingsError(f"{where}: expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise SettingsError(f"{where}: expected {len(args)} items, got {len(data)}")
        return tuple(_build(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, data)))
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in typing.get_args(cls):
            return None
        options = [t for t in typing.get_args(cls) if t is not type(None)]
        return _build(options[0], data, where)
    if cls is dict:
        if not isinstance(data, dict):
            raise SettingsError(f"{where}: expected a mapping")
        return data
    if cls is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if cls in (int, float, str, bool) and not (isinstance(data, cls) and not (cls is int and isinstance(data, bool))):
        raise SettingsError(f"{where}: expected {cls.__name__}, got {data!r}")
    return data


def parse_fleet(doc: Any, where: str) -> tuple[AssetSettings, ...]:
    """Flatten ``sites -> lines -> assets`` into assets that know their site and line."""
    if not isinstance(doc, list):
        raise SettingsError(f"{where}: expected a list of sites")
    assets: list[AssetSettings] = []
    seen: set[str] = set()
    for i, site in enumerate(doc):
        w = f"{where}[{i}]"
        if not isinstance(site, dict) or "site" not in site:
            raise SettingsError(f"{w}: each site needs 'site' and 'lines'")
        for j, line in enumerate(site.get("lines", [])):
            lw = f"{w}.lines[{j}]"
            if not isinstance(line, dict) or "line" not in line:
                raise SettingsError(f"{lw}: each line needs 'line' and 'assets'")
            for k, asset in enumerate(line.get("assets", [])):
                aw = f"{lw}.assets[{k}]"
                if not isinstance(asset, dict):
                    raise SettingsError(f"{aw}: expected a mapping")
                a = _build(AssetSettings, {**asset, "site": site["site"], "line": line["line"]},
                           f"{aw}({asset.get('asset', '?')})")
                if a.asset in seen:
                    raise SettingsError(f"{aw}: asset id {a.asset!r} appears twice")
                seen.add(a.asset)
                assets.append(a)
    return tuple(assets)


def load_settings(path: str | os.PathLike | None = None, environ: dict | None = None) -> Settings:
    """Load and validate settings; ``path=None`` loads the packaged defaults."""
    env = os.environ if environ is None else environ
    src = Path(path) if path else Path("predmaint/settings", DEFAULT_CONFIG_NAME)
    try:
        doc = yaml.safe_load(Path(path).read_text() if path else default_config_text()) or {}
    except OSError as exc:
        raise SettingsError(f"{src}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{src}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{src}: top level must be a mapping")
    doc = dict(doc)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            doc.setdefault(section, {})
            doc[section] = {**doc[section], key: env[var]}
    if env.get("PREDMAINT_WEBHOOK_URL") and isinstance(doc.get("notify"), dict):
        doc["notify"] = {**doc["notify"], "targets": [
            {**t, "url": env["PREDMAINT_WEBHOOK_URL"]} if isinstance(t, dict) and t.get("name") == "webhook" else t
            for t in doc["notify"].get("targets", [])]}
    try:
        fleet = parse_fleet(doc.pop("fleet", []), f"{src}: fleet")
        settings = _build(Settings, {**doc, "source": str(src)}, "")
    except SettingsError as exc:
        msg = str(exc)
        raise SettingsError(msg if msg.startswith(str(src)) else f"{src}: {msg}") from None
    settings = dataclasses.replace(settings, fleet=fleet)
    _check_targets(settings, src)
    labels = [m.label for m in (settings.model, *settings.challengers,
                                *([settings.asset_model.model] if settings.asset_model.model else []))]
    if len(set(labels)) != len(labels):
        raise SettingsError(f"{src}: model/challengers/asset_model: model names must differ, got {labels}")
    names = [r.name for r in settings.alert_rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # each rule keeps one state per asset under its name
        raise SettingsError(f"{src}: alert_rules: rule names must differ; given more than once: {twice}")
    for r in settings.alert_rules:
        unknown = sorted(set(r.absorbed_by) - set(names))
        if unknown:
            raise SettingsError(f"{src}: alert_rules: {r.name}.absorbed_by: {unknown} name no alert rule; "
                                f"the rules are {names}")
    for fault in settings.simulator.faults:
        if settings.asset(fault.asset) is None:
            raise SettingsError(f"{src}: simulator.faults: asset {fault.asset!r} is not in the fleet")
    return settings


def _check_targets(settings: Settings, src: Path) -> None:
    for i, cfg in enumerate(settings.notify.targets):
        try:
            Target.from_config(cfg)
        except TargetConfigError as exc:
            raise SettingsError(f"{src}: notify.targets[{i}]: {exc}") from None
