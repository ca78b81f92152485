"""The monitor's pages on real months: every verdict beside its numbers and rule, the results as tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightdelay import monitor, settings
from flightdelay.io import drift_report
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from flightdelay.stages.validate import check
from tests.conftest import ROOT


@dataclass
class Section:
    """What an ``<h2>`` of the page holds, in order: paragraphs (``p``) and tables (``table``, rows of cells)."""

    parts: list[tuple[str, Any]] = field(default_factory=list)

    def paragraphs(self) -> list[str]:
        return [str(text) for kind, text in self.parts if kind == "p"]

    def tables(self) -> list[list[list[str]]]:
        return [rows for kind, rows in self.parts if kind == "table"]


class _Sections(HTMLParser):
    """The page's text per ``<h2>`` section, entities decoded: what a reader of the page sees."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, Section] = {}
        self._heading: str | None = None
        self._text: list[str] | None = None
        self._rows: list[list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "p", "td", "th"):
            self._text = []
        elif tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or [])
        if tag == "h2":
            self._heading = text
            self.sections[text] = Section()
        elif tag == "p" and self._heading is not None:
            self.sections[self._heading].parts.append(("p", text))
        elif tag in ("td", "th") and self._rows:
            self._rows[-1].append(text)
        elif tag == "table" and self._heading is not None:
            self.sections[self._heading].parts.append(("table", self._rows))
            self._rows = None
        if tag in ("h2", "p", "td", "th"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def sections(page: str) -> dict[str, Section]:
    parser = _Sections()
    parser.feed(page)
    return parser.sections


def digest_section(digest: str, heading: str) -> str:
    """The text under ``### heading`` up to the next heading."""
    return digest.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]


@dataclass
class Pages:
    html: str
    digest: str
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def quiet(
    params: settings.Params, january: monitor.Window, february: monitor.Window, baseline: dict[str, object]
) -> monitor.Result:
    """February against January: a few features drift, too few for the data to drift."""
    return monitor.compare(january, february, params, baseline)


@pytest.fixture(scope="module")
def pages(
    quiet: monitor.Result, january: monitor.Window, february: monitor.Window, tmp_path_factory: pytest.TempPathFactory
) -> Pages:
    paths = drift_report.write(tmp_path_factory.mktemp("monitor"), quiet, january, february)
    return Pages(
        paths["html"].read_text(encoding="utf-8"),
        paths["digest"].read_text(encoding="utf-8"),
        json.loads(paths["json"].read_text()),
    )


def test_a_few_drifted_features_read_as_no_data_drift_with_the_share_rule_beside_them(
    params: settings.Params, quiet: monitor.Result, pages: Pages
) -> None:
    drifted = [d.column for d in quiet.features if d.drifted]
    total, needed = len(quiet.features), quiet.drift_needed
    assert 0 < len(drifted) < needed  # the case: features marked drifted, the data not
    assert not quiet.data_drift and not quiet.retrain
    share = f"{params.monitor.drift_share * 100:g}%"
    because = (
        f"{len(drifted)} of the {total} features drifted ({len(drifted) / total:.1%}). That is fewer than the "
        f"{needed} of {total} ({share}) at which the data as a whole drifts "
        f"(monitor.drift_share = {params.monitor.drift_share:g}), so data drift: no."
    )
    # The page: the explanation is the paragraph right before the table that marks the features.
    section = sections(pages.html)["Data drift per feature"]
    kinds = [kind for kind, _ in section.parts]
    assert kinds == ["p", "table"]
    assert section.paragraphs()[0].startswith(because)
    [table] = section.tables()
    header, rows = table[0], table[1:]
    assert header[2] == f"PSI (drifts at ≥ {params.monitor.psi:g})"
    assert header[5] == f"p-value (drifts at < {params.monitor.p_value:g})"
    assert len(rows) == total
    assert [row[0] for row in rows if row[6] == "yes"] == drifted
    for row, drift in zip(rows, quiet.features, strict=True):
        assert row[7] == drift.because()
    # The digest: the same explanation under its heading, above the table.
    text = digest_section(pages.digest, "Data drift per feature")
    assert text.index(because) < text.index("| feature |")
    assert [line.split(" | ")[0].lstrip("| ") for line in text.splitlines() if " | yes | " in line] == drifted
    assert f"- **Data drift: no** — {len(drifted)} of {total} features drifted" in pages.digest
    assert f"fewer than the {needed} of {total} ({share}) at which the data drifts; the rule: " in pages.digest


def test_every_verdict_carries_its_numbers_and_its_rule(
    params: settings.Params, quiet: monitor.Result, pages: Pages
) -> None:
    verdicts = {v.check: v for v in quiet.verdicts()}
    assert list(verdicts) == ["Retraining", "Data drift", "Prediction drift", "Data quality", "Decay"]
    rules = params.monitor
    drifted = [d.column for d in quiet.features if d.drifted]
    data = verdicts["Data drift"]
    assert (data.verdict, data.flagged) == ("no", False)
    assert data.observed.startswith(f"{len(drifted)} of {len(quiet.features)} features drifted")
    assert all(name in data.observed for name in drifted)
    for key, value in (("drift_share", f"{rules.drift_share * 100:g}%"), ("psi", f"{rules.psi:g}")):
        assert f"(monitor.{key})" in data.rule and value in data.rule
    prediction = verdicts["Prediction drift"]
    assert f"PSI of the predicted probabilities {quiet.prediction.psi:.3g} < {rules.prediction_psi:g}" in (
        prediction.observed
    )
    assert "(monitor.prediction_psi)" in prediction.rule and "(monitor.p_value)" in prediction.rule
    quality = verdicts["Data quality"]
    assert quality.verdict == "passed"
    assert f"0 failing hard checks, {len(quiet.quality['warnings'])} warnings" in quality.observed
    assert "hard check of the pipeline's schema" in quality.rule
    decay = verdicts["Decay"]
    performance = quiet.performance
    assert performance is not None
    assert f"live ROC AUC {performance['roc_auc']:.4f}" in decay.observed
    assert f"the evaluation's {performance['baseline_roc_auc']:.4f}" in decay.observed
    assert f"more than {rules.max_auc_drop:g} below" in decay.rule and "(monitor.min_labels)" in decay.rule
    assert verdicts["Retraining"].verdict == "not needed"
    # Each page shows every verdict with both: the digest (the CLI prints it), the HTML table, summary.json.
    html_rows = sections(pages.html)["Verdicts"].tables()[0]
    assert html_rows[0] == ["check", "verdict", "the numbers", "the rule"]
    for verdict, row, recorded in zip(verdicts.values(), html_rows[1:], pages.summary["verdicts"], strict=True):
        assert f"- **{verdict.check}: {verdict.verdict}** — {verdict.observed}; the rule: {verdict.rule}" in (
            pages.digest
        )
        assert row == [verdict.check, verdict.verdict, verdict.observed, verdict.rule]
        assert recorded["line"] == f"{verdict.check}: {verdict.verdict} — {verdict.observed}; the rule: {verdict.rule}"
    assert "## Model monitor: 🟢 no action needed" in pages.digest


def test_data_quality_and_live_metrics_are_tables_not_a_json_dump(quiet: monitor.Result, pages: Pages) -> None:
    page = sections(pages.html)
    [quality] = page["Data quality"].tables()
    assert quality[0] == ["column", "check", "failing rows", "examples", "kind", "effect"]
    warnings = quiet.quality["warnings"]
    assert warnings  # the real month has rows that fail soft checks
    assert [(row[0], row[2], row[4], row[5]) for row in quality[1:]] == [
        (w["column"], f"{w['failures']:,}", "warning", "counted, not failing") for w in warnings
    ]
    assert page["Data quality"].paragraphs()[0].startswith("Data quality: passed — 0 failing hard checks")
    [live] = page["Live metrics"].tables()
    assert live[0] == ["metric", "live", "evaluation", "rule", "verdict"]
    metrics = {row[0]: row[1:] for row in live[1:]}
    performance = quiet.performance
    assert performance is not None
    assert metrics["ROC AUC"][:2] == [f"{performance['roc_auc']:.4f}", f"{performance['baseline_roc_auc']:.4f}"]
    assert metrics["ROC AUC"][3] == "decay: no"
    assert metrics["log loss"][:2] == [f"{performance['log_loss']:.4f}", f"{performance['baseline_log_loss']:.4f}"]
    assert metrics["labels"][3] == "enough"
    # No raw JSON on the page: summary.json beside it is the machine-readable form.
    for dump in ("<pre", "roc_auc", "positive_rate", "failures", "&quot;", "{"):
        assert dump not in pages.html.split("</style>", 1)[1], dump
    # The digest: the same tables in markdown.
    text = digest_section(pages.digest, "Data quality")
    for w in warnings:
        assert f"| {w['column']} | {w['check']}" in text and f"| {w['failures']:,} |" in text
    live_text = digest_section(pages.digest, "Live metrics")
    assert f"| ROC AUC | {performance['roc_auc']:.4f} | {performance['baseline_roc_auc']:.4f} |" in live_text
    assert "decay: no |" in live_text


def test_too_few_labels_or_none_say_what_decay_waits_for(
    params: settings.Params, january: monitor.Window, baseline: dict[str, object]
) -> None:
    assert january.labels is not None
    few = january.labels.copy()
    few.iloc[100:] = np.nan
    window = monitor.Window("a few labels", january.features, january.proba, few, january.quality)
    result = monitor.compare(january, window, params, baseline)
    decay = result.decay_verdict()
    assert decay.verdict == "not measured" and not decay.flagged
    assert decay.observed == f"100 of {len(few):,} predictions labelled, fewer than {params.monitor.min_labels:,}"
    [labels] = result.live_metrics()
    assert labels["verdict"] == f"too few: 100 < {params.monitor.min_labels:,}"
    assert "| labels | 100 arrived" in digest_section(drift_report.digest(result), "Live metrics")
    unlabelled = monitor.Window("no labels", january.features, january.proba, None, january.quality)
    result = monitor.compare(january, unlabelled, params, baseline)
    assert result.decay_verdict().observed == "no labels: give --labels with the prediction log"
    assert result.live_metrics() == []


def test_a_window_that_fails_the_schema_says_so_and_its_data_is_escaped(
    params: settings.Params, january: monitor.Window, baseline: dict[str, object], tmp_path: Path
) -> None:
    flights = read_parquet(ROOT / params.paths.joined)
    rows = flights[flights["month"] == 1].head(2000).copy()
    rows.iloc[:3, rows.columns.get_loc("carrier")] = "<b>ZZ</b>"  # a carrier the schema does not know
    raw = ROOT / params.paths.raw
    quality = monitor.quality_summary(check(rows, PROBLEM.schema(raw), PROBLEM.warnings()))
    window = monitor.Window("<script>alert('window')</script>", january.features, january.proba, None, quality)
    result = monitor.compare(january, window, params, baseline)
    assert result.quality_failed and not result.retrain
    assert result.headline == "the window fails the data checks"
    # Drifting as well, the broken window is still not one to retrain on (so --propose opens nothing).
    shifted = monitor.Window("shifted", january.features, january.proba.clip(0.3, 1.0), None, quality)
    drifting = monitor.compare(january, shifted, params, baseline)
    assert drifting.prediction_drift and drifting.quality_failed
    assert not drifting.retrain
    assert drifting.headline == "the window fails the data checks"
    assert drifting.verdicts()[0].verdict == "withheld"
    assert "prediction drift; the window fails the data checks" in drifting.verdicts()[0].observed
    assert result.reasons == [result.quality_verdict().line()]
    assert "fix its data before training on it" in result.verdicts()[0].observed
    paths = drift_report.write(tmp_path, result, january, window)
    page = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in page and "<b>ZZ</b>" not in page
    assert "&lt;b&gt;ZZ&lt;/b&gt;" in page and "&lt;script&gt;" in page
    [table] = sections(page)["Data quality"].tables()
    errors = len(quality["errors"])
    assert errors >= 1  # the carrier fails isin (and its length check)
    failing = [(row[0], row[2], row[3], row[5]) for row in table[1:] if row[4] == "error"]
    assert failing == [("carrier", "3", "<b>ZZ</b>", "fails the window")] * errors
    digest = paths["digest"].read_text(encoding="utf-8")
    assert "## Model monitor: 🟠 the window fails the data checks" in digest
    assert f"- **Data quality: failed** — {errors} failing hard check{'s' if errors != 1 else ''}, " in digest
