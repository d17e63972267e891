"""Dataset adapters: public labelled corpora as registry entries, telemetry readings and labels.

One module per format, each reading its corpus in place (never copying it) and
returning :class:`~predmaint.connectors.datasets.base.Recording` objects, so
that ``predmaint evaluate`` can feed any of them through the real dataflow:

* :mod:`~predmaint.connectors.datasets.nab`: Numenta Anomaly Benchmark series
  (MIT), labels = NAB's anomaly windows; also the published detectors' per-file
  scores for :mod:`predmaint.models.nab_corpus`;
* :mod:`~predmaint.connectors.datasets.skab`: Skoltech Anomaly Benchmark pump
  experiments (GPL-3.0, read in place), labels = per-row anomaly and
  changepoint, scored by :mod:`predmaint.models.skab_scoring`;
* :mod:`~predmaint.connectors.datasets.ims`: IMS bearing runs to failure
  (per-snapshot feature tables), labels = the run's facts per bearing;
* :mod:`~predmaint.connectors.datasets.cwru`: CWRU bearing recordings, labels =
  fault type.

:mod:`~predmaint.connectors.datasets.base` holds the shared pieces.
"""

from predmaint.connectors.datasets.base import CORPORA, PROCESS_KIND, Recording
from predmaint.connectors.datasets.cwru import CwruLabels, load_cwru
from predmaint.connectors.datasets.ims import ImsLabels, load_ims
from predmaint.connectors.datasets.nab import NabLabels, load_nab, load_nab_profiles, load_nab_published
from predmaint.connectors.datasets.skab import SkabLabels, load_skab

__all__ = [
    "CORPORA",
    "PROCESS_KIND",
    "CwruLabels",
    "ImsLabels",
    "NabLabels",
    "Recording",
    "SkabLabels",
    "load_cwru",
    "load_ims",
    "load_nab",
    "load_nab_profiles",
    "load_nab_published",
    "load_skab",
]
