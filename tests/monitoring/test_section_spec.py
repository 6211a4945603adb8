"""The ``monitoring`` section of ame.yml: its keys, defaults and mistakes."""

from __future__ import annotations

import re

import pytest

from ame.errors import SpecError
from ame.spec import load_project_text

GOOD = """\
project: p
dataSets:
  - name: ref
    path: data/ref.parquet
models:
  - name: m
    monitoring:
      log: {sampleRate: 0.25, maxBytes: 8Mi}
      reference: ref
      thresholds: {psi: 0.3, pValue: 0.01}
      schedule: "@hourly"
  - name: n
    monitoring:
      log:
"""


def test_every_key_is_read() -> None:
    project = load_project_text(GOOD, file="ame.yml")
    monitoring = project.model("m").monitoring
    assert monitoring is not None and monitoring.log is not None
    assert monitoring.log.sample_rate == 0.25 and monitoring.log.max_bytes == 8 * 1024 * 1024
    assert str(monitoring.reference) == "ref"
    assert monitoring.thresholds.psi == 0.3 and monitoring.thresholds.p_value == 0.01
    assert monitoring.schedule is not None and "@hourly" in str(monitoring.schedule)
    bare = project.model("n").monitoring
    assert bare is not None and bare.log is not None and bare.log.sample_rate == 1.0
    assert bare.thresholds.psi == 0.2 and bare.thresholds.p_value == 0.05


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("log: {sampleRate: 1.5}", "models[0].monitoring.log.sampleRate: must be at most 1"),
        ("log: {maxbytes: 3}", "log: unknown key 'maxbytes' (did you mean 'maxBytes'?)"),
        ("log: {maxBytes: 10GB}", "models[0].monitoring.log.maxBytes: '10GB' is not a quantity"),
        ("thresholds: {pValue: 2}", "models[0].monitoring.thresholds.pValue: must be at most 1"),
        ("reference: nowhere", "models[0].monitoring.reference: unknown dataset 'nowhere'"),
        ("treshold: {}", "monitoring: unknown key 'treshold' (did you mean 'thresholds'?)"),
    ],
)  # fmt: skip
def test_mistakes_are_reported_with_their_place(section: str, expected: str) -> None:
    text = f"project: p\nmodels:\n  - name: m\n    monitoring:\n      {section}\n"
    text = text.replace("monitoring:\n      ", "monitoring: {").rstrip("\n") + "}\n"
    with pytest.raises(SpecError) as caught:
        load_project_text(text, file="ame.yml")
    lines = [str(issue) for issue in caught.value.issues]
    assert any(re.match(r"ame\.yml:4:\d+ ", line) and expected in line for line in lines), lines
