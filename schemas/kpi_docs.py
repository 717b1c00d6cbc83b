"""Render the KPI registry as ``docs/kpi-catalogue.md``: ``python -m schemas.kpi_docs``.

The registry file is the single definition; this page is generated from it and a test
fails when the committed page is stale.
"""

import sys
from pathlib import Path

from schemas.kpi import SCORE_GROUPS, KpiRegistry, load_registry
from schemas.metrics import LIVE_METRICS, METRICS, SNAPSHOT_METRICS

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "kpi-catalogue.md"


def render(registry: KpiRegistry) -> str:
    lines = [
        "# KPI catalogue",
        "",
        "Generated from `schemas/kpi_registry.toml` by `python -m schemas.kpi_docs` - edit the",
        f"registry, not this page. Registry version **{registry.version}**.",
        "",
        "Ratios are computed at query time from additive counters (`schemas/metrics.py`), so",
        "every roll-up - hour to year, commune to province, one sector to all - is exact.",
        '"No data" (a zero denominator, or no counter row at all for a sum) is never shown as 0.',
        "",
        "`basis`: *events* - counters summed over the period; *snapshot* - entity state now.",
        "*Computed in* names the core module where the counters of the formula are computed.",
        "",
        "| id | KPI | formula | basis | unit | better | target | red / green | score | computed in | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in registry.kpis:
        bands = f"{k.bands.red:g} / {k.bands.green:g}" if k.bands else ""
        score = (
            f"{k.score.points:g} pts ({k.score.group}{', full at ' + format(k.score.full_at * 100, 'g') + ' %' if k.score.full_at < 1 else ''})"
            if k.score
            else ""
        )
        target = "" if k.target is None else f"{k.target:g}"
        name = f"{k.name_vi}<br>*{k.name_en}*"
        source = f"{k.source} ({k.source_kind})" + (f"<br>{k.note}" if k.note else "")
        where = "<br>".join(f"`{m}`" for m in k.computed_in)
        lines.append(
            f"| `{k.id}` | {name} | {k.formula(code=True)} | {k.basis} | {k.unit} | {k.direction} | {target} "
            f"| {bands} | {score} | {where} | {source} |"
        )
    lines += [
        "",
        "## Decision 766 style composite score",
        "",
        "Per unit and period, each scored indicator earns `points × min(1, rate ÷ full_at)`. "
        "An indicator without data, or not computable from events, scores *no data*: its "
        "points leave the maximum instead of counting as zero. The score out of 100 is "
        "`100 × points earned ÷ points of indicators with data`; units are ranked by it, "
        "ties sharing a rank.",
        "",
        "| group | points | indicators |",
        "|---|---|---|",
    ]
    for key, (name, points) in SCORE_GROUPS.items():
        members = [f"`{k.id}` ({k.score.points:g})" for k in registry.kpis if k.score and k.score.group == key]
        lines.append(f"| {name} | {points} | {', '.join(members)} |")
    lines += ["", "## Counters", "", "| counter | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in METRICS.items()]
    lines += [
        f"| `{name}` | {text} (live: computed at query time from dossier state) |"
        for name, text in LIVE_METRICS.items()
    ]
    lines += [
        f"| `{name}` | {text} (snapshot: computed now from project state) |" for name, text in SNAPSHOT_METRICS.items()
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render(load_registry())
    if "--check" in sys.argv:
        if not DOC_PATH.exists() or DOC_PATH.read_text(encoding="utf-8") != text:
            print(f"{DOC_PATH} is stale: run `python -m schemas.kpi_docs`")
            return 1
        return 0
    DOC_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
