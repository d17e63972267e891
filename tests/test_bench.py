"""``make bench``'s costs: what the profile showed as waste stays fixed, and a tiny bench run reports every field."""

from __future__ import annotations

from predmaint.pipelines import steps
from predmaint.settings import load_settings

SETTINGS = load_settings()


def _window(i: int) -> steps.AssetWindowFeatures:
    end_ns = (i + 1) * 300_000_000_000
    windows = tuple(steps.WindowFeatures("pump-01", s, "temperature", end_ns, {"temp_level_c": 50.0 + 0.1 * i})
                    for s in ("t-a", "t-b"))
    return steps.AssetWindowFeatures("pump-01", end_ns, windows, length_s=300.0)


def test_a_sensors_models_are_built_once_not_on_every_window(monkeypatch):
    # dict.setdefault(sensor, _new_models(...)) evaluates its default eagerly: every
    # window of every sensor built (and threw away) a champion and its challengers.
    built = []
    real = steps.new_model

    def counting(*args, **kwargs):
        built.append(args[0].label)
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "new_model", counting)
    state = None
    for i in range(5):
        state, _ = steps.assess(SETTINGS, None, state, _window(i))
    models_per_sensor = 1 + len(SETTINGS.challengers)
    assert len(built) == 2 * models_per_sensor  # two sensors, built at their first window only
    assert set(state.models) == {"t-a", "t-b"}
