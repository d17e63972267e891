"""The ``predmaint`` command line: where --config goes, PREDMAINT_CONFIG, --version, help texts, the README's
command table, and the smaller commands' one-line errors (shelve, demo --workdir, dashboards push, report)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from predmaint import __version__
from predmaint.connectors.local_services import free_ports
from predmaint.connectors.shelves import read_shelves
from predmaint.connectors.storage import SQLiteStore
from predmaint.pipelines import cli
from predmaint.settings import default_config_text

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def fleet_config(tmp_path, monkeypatch) -> Path:
    """The default config with its shelves file in ``tmp_path``; PREDMAINT_CONFIG unset."""
    monkeypatch.delenv("PREDMAINT_CONFIG", raising=False)
    doc = yaml.safe_load(default_config_text())
    doc.setdefault("suppression", {})["shelves_path"] = str(tmp_path / "shelves.yaml")
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def broken_config(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text("kafka: {partitons: 3}\n")
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_before_or_after_the_command(tmp_path, capsys, monkeypatch, where):
    monkeypatch.delenv("PREDMAINT_CONFIG", raising=False)
    bad = str(broken_config(tmp_path))
    argv = ["--config", bad, "check-config", "--no-probe"] if where == "before" else \
        ["check-config", "--no-probe", "--config", bad]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (f"predmaint check-config: configuration error: {bad}: kafka: unknown field(s) "
                                       f"['partitons']; known: {_kafka_fields()}\n")


def _kafka_fields() -> list[str]:
    import dataclasses

    from predmaint.settings import KafkaSettings

    return sorted(f.name for f in dataclasses.fields(KafkaSettings))


def test_a_nested_command_keeps_a_config_given_before_it(tmp_path, capsys, monkeypatch):
    """``dashboards build`` has a --config of its own; one given before ``dashboards`` must still count."""
    monkeypatch.delenv("PREDMAINT_CONFIG", raising=False)
    bad = str(broken_config(tmp_path))
    assert cli.main(["--config", bad, "dashboards", "build", "--out", str(tmp_path / "json")]) == 2
    assert f"{bad}: kafka: unknown field(s)" in capsys.readouterr().err


def test_predmaint_config_names_the_file(tmp_path, capsys, monkeypatch, fleet_config):
    monkeypatch.setenv("PREDMAINT_CONFIG", str(broken_config(tmp_path)))
    assert cli.main(["check-config", "--no-probe"]) == 2
    assert "broken.yaml: kafka: unknown field(s)" in capsys.readouterr().err
    # --config wins over the variable
    assert cli.main(["check-config", "--no-probe", "--config", str(fleet_config)]) == 0
    assert capsys.readouterr().out.endswith(f"check-config: {fleet_config}: valid (servers not contacted)\n")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"predmaint {__version__}\n"


def _parsers(parser: argparse.ArgumentParser, path: str = "predmaint"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{path} {name}: no help text"
                yield from _parsers(sub, f"{path} {name}")


def test_every_command_and_option_has_help_text():
    missing = [f"{path} {action.option_strings or action.dest}"
               for path, parser in _parsers(cli.build_parser())
               for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert not missing, missing


def test_every_option_takes_config_after_the_command():
    missing = [path for path, parser in _parsers(cli.build_parser()) if "--config" not in parser._option_string_actions]
    assert not missing, missing


def test_the_readme_command_table_lists_every_command():
    text = README.read_text()
    table = text.split("## Commands", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^\| `predmaint ([a-z][a-z-]*)", table, flags=re.M))
    commands = {name for action in cli.build_parser()._actions if isinstance(action, argparse._SubParsersAction)
                for name in action.choices}
    assert commands - listed == set(), f"missing from the README's command table: {sorted(commands - listed)}"
    assert listed - commands == set(), f"in the README's table but not a command: {sorted(listed - commands)}"


def test_shelve_add_repeat_list_remove(capsys, fleet_config):
    shelf = ["shelve", "--config", str(fleet_config), "--asset", "pump-03", "--rule", "health_low",
             "--start", "2026-01-01T00:00:00Z", "--until", "2026-01-02T06:00:00Z"]
    assert cli.main([*shelf, "--reason", "bearing swap"]) == 0
    assert cli.main([*shelf, "--reason", "bearing swap, day 2"]) == 0  # the same command again: no second shelf
    assert cli.main(["shelve", "--config", str(fleet_config), "--asset", "fan-02",
                     "--until", "2099-01-03T00:00:00Z"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("shelved pump-03 rule=health_low from 2026-01-01T00:00:00Z until 2026-01-02T06:00:00Z")
    assert out[1].startswith("updated the shelf of pump-03 rule=health_low")
    assert out[2] == "shelved fan-02 rule=* until 2099-01-03T00:00:00Z: "  # no --start: any event time
    shelves_path = fleet_config.parent / "shelves.yaml"
    assert [(s.asset, s.reason) for s in read_shelves(shelves_path)] == [("pump-03", "bearing swap, day 2"),
                                                                         ("fan-02", "")]

    assert cli.main(["shelve", "list", "--config", str(fleet_config)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and listed[0].startswith("pump-03\trule=health_low\t2026-01-01T00:00:00Z .. ")

    assert cli.main(["shelve", "remove", "--config", str(fleet_config), "--asset", "pump-03"]) == 0
    assert capsys.readouterr().out.startswith("removed shelf of pump-03 rule=health_low")
    assert [s.asset for s in read_shelves(shelves_path)] == ["fan-02"]
    assert cli.main(["shelve", "remove", "--config", str(fleet_config), "--asset", "pump-03"]) == 2
    assert capsys.readouterr().err.startswith("predmaint shelve: configuration error: --asset: no shelf of pump-03")
    assert cli.main(["shelve", "--config", str(fleet_config), "--asset", "pump-03"]) == 2
    assert "--until: required to add a shelf" in capsys.readouterr().err


def test_demo_does_not_delete_a_folder_it_did_not_make(tmp_path, capsys, fleet_config):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    assert cli.main(["demo", "--config", str(fleet_config), "--workdir", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"predmaint demo: configuration error: --workdir: {mine} exists and is not a predmaint "
                          f"demo folder") and "--force" in err and err.count("\n") == 1
    assert (mine / "chapter1.tex").read_text() == "years of work"


def test_demo_workdir_reuse_rules(tmp_path):
    previous = tmp_path / "previous"
    cli._reset_demo_workdir(previous, force=False)  # new: made, and marked
    (previous / "store.sqlite").write_text("old run")
    (previous / "recovery").mkdir()
    cli._reset_demo_workdir(previous, force=False)  # marked: emptied again
    assert sorted(p.name for p in previous.iterdir()) == [cli.DEMO_MARKER]

    unmarked = tmp_path / "older-demo"  # made by a demo before the marker existed
    (unmarked / "recovery").mkdir(parents=True)
    (unmarked / "ground_truth.json").write_text("{}")
    cli._reset_demo_workdir(unmarked, force=False)
    assert sorted(p.name for p in unmarked.iterdir()) == [cli.DEMO_MARKER]

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    cli._reset_demo_workdir(other, force=True)  # --force
    assert not (other / "notes.txt").exists()


def test_dashboards_push_to_an_unreachable_grafana(capsys, monkeypatch, fleet_config):
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_not_a_real_token")
    port, = free_ports(1)
    assert cli.main(["dashboards", "push", "--config", str(fleet_config), "--url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err == (f"predmaint dashboards: DashboardError: --url: cannot reach Grafana at http://127.0.0.1:{port} "
                   f"(Connection refused)\n")
    assert "glsa_not_a_real_token" not in err


def test_report_on_an_empty_store_is_an_error(tmp_path, capsys, fleet_config):
    store = tmp_path / "empty.sqlite"
    SQLiteStore(store).close()
    out = tmp_path / "report"
    assert cli.main(["report", "--config", str(fleet_config), "--sqlite", str(store), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"predmaint report: EmptyStoreError: report: the SQLite store {store} holds no health "
                          f"points") and err.count("\n") == 1
    assert not (out / "index.html").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--assets", "0", "--assets: must be at least 1, got 0"),
    ("--hours", "0", "--hours: must be > 0, got 0"),
    ("--warmup-hours", "20", "--warmup-hours: must be >= 0 and below --hours (4)"),
])
def test_bench_refuses_a_workload_that_measures_nothing(capsys, fleet_config, option, value, message):
    hours = [] if option == "--hours" else ["--hours", "4"]  # not the default, which may change
    assert cli.main(["bench", "--config", str(fleet_config), *hours, option, value]) == 2  # before any server starts
    err = capsys.readouterr().err
    assert err.startswith(f"predmaint bench: configuration error: {message}") and err.count("\n") == 1


def test_dashboards_build_without_out_is_a_configuration_error_of_the_cli(capsys, fleet_config):
    assert cli.main(["dashboards", "build", "--config", str(fleet_config)]) == 2
    assert capsys.readouterr().err.startswith("predmaint dashboards: configuration error: --out: give the folder")


# ----------------------------------------------------------------------------
# Ctrl-C of predmaint run: a flow that does not stop is stopped anyway
# ----------------------------------------------------------------------------

STUCK = """
import sys, time
from predmaint.pipelines.cli import _exit_if_stuck
_exit_if_stuck(float(sys.argv[1]))
try:  # "ready" inside: a Ctrl-C that comes at once (under load) must not land before the try
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    if sys.argv[2] == "stuck":
        time.sleep(60)  # a shutdown that never ends
"""


def _interrupted(grace_s: float, behaviour: str, signals: int = 1):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(grace_s), behaviour], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return proc.returncode, err


def test_a_flow_that_does_not_stop_after_ctrl_c_exits_after_the_grace_naming_where_it_was():
    rc, err = _interrupted(0.5, "stuck")
    assert rc == 130
    assert "did not stop within 0.5 s of Ctrl-C" in err and "most recent call first" in err


def test_a_second_ctrl_c_exits_at_once():
    rc, err = _interrupted(30.0, "stuck", signals=2)
    assert rc == 130 and "Ctrl-C again while stopping" in err


def test_a_flow_that_stops_is_not_cut_short():
    rc, err = _interrupted(30.0, "stops")
    assert rc == 0 and "exiting now" not in err
