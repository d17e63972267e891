"""Generate ``dashboards/json/*.json`` from :mod:`predmaint.dashboards.definitions`.

Grafana's file provisioner (``dashboards/provisioning/dashboards/predmaint.yaml``)
loads these files; they are committed so ``docker compose up`` needs no build
step. Edit the Python definitions, never the JSON, then::

    python -m predmaint.dashboards.build --out dashboards/json    # rewrite the committed JSON
    python -m predmaint.dashboards.build --check                   # exit 1 if the packaged JSON differs (CI, tests)
    python -m predmaint.dashboards.build --config my-fleet.yaml --out /tmp/json   # another fleet's ISO classes

Writing always goes where ``--out`` says, never into the installed package;
``--check`` without ``--out`` compares the JSON packaged with predmaint (read
through :mod:`importlib.resources`).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.resources
import json
import sys
from importlib.resources.abc import Traversable
from pathlib import Path

from predmaint.dashboards.definitions import dashboards
from predmaint.errors import ConfigurationError
from predmaint.settings import Settings, load_settings


def packaged_json() -> Traversable:
    """The dashboard JSON shipped in the package (what Grafana provisioning mounts from the repository)."""
    return importlib.resources.files("predmaint.dashboards").joinpath("json")


def render(settings: Settings) -> dict[str, str]:
    """File name -> JSON text for every dashboard, deterministic (sorted keys, trailing newline)."""
    return {f"{d.uid}.json": json.dumps(d.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            for d in dashboards(settings)}


def write(settings: Settings, out_dir: Path) -> list[Path]:
    """Write every dashboard to ``out_dir``; remove generated files of dashboards that no longer exist."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = render(settings)
    for stale in set(p.name for p in out_dir.glob("predmaint-*.json")) - set(files):
        (out_dir / stale).unlink()
    paths = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text)
        paths.append(path)
    return paths


def differences(settings: Settings, out_dir: Path | Traversable | None = None) -> list[str]:
    """What differs between the generated JSON and ``out_dir`` (default: the packaged JSON), one message per file."""
    out_dir = packaged_json() if out_dir is None else out_dir
    files = render(settings)
    problems = []
    for name, text in files.items():
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        committed = path.read_text()
        if committed != text:
            diff = difflib.unified_diff(committed.splitlines(), text.splitlines(), f"{name} (committed)",
                                        f"{name} (generated)", lineterm="", n=1)
            problems.append(f"{path}: differs from the definitions:\n" + "\n".join(list(diff)[:40]))
    for path in out_dir.iterdir():
        if path.name.startswith("predmaint-") and path.name.endswith(".json") and path.name not in files:
            problems.append(f"{path}: no longer generated")
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the JSON in --out (default: the packaged JSON) "
                             "differs from the definitions")
    parser.add_argument("--out", type=Path, help="output directory (required unless --check)")


def run(settings: Settings, args) -> int:
    if not args.check and args.out is None:
        raise ConfigurationError("--out: give the folder to write the dashboards into (e.g. --out dashboards/json "
                                 "in a checkout), or --check")
    if args.check:
        problems = differences(settings, args.out)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("dashboards: run `python -m predmaint.dashboards.build --out dashboards/json` and commit the JSON",
                  file=sys.stderr)
            return 1
        print(f"dashboards: {args.out or 'the packaged JSON'} is up to date")
        return 0
    for path in write(settings, args.out):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m predmaint.dashboards.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="settings whose fleet gives ISO zone boundaries (default: packaged)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not args.check and args.out is None:
        parser.error("--out: give the folder to write the dashboards into, or --check")
    return run(load_settings(args.config), args)


if __name__ == "__main__":
    sys.exit(main())
