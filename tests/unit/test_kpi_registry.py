"""The KPI registry file and its validation (schemas/kpi.py)."""

import pytest
from pydantic import ValidationError

from schemas.kpi import SCORE_GROUPS, load_registry, parse_registry
from schemas.metrics import ALL_METRICS

RATIO = """
[[kpi]]
id = "r"
name_vi = "r"
name_en = "r"
kind = "ratio"
numerator = ["dossier.resolved_on_time"]
denominator = ["dossier.received"]
scale = 100
unit = "%"
source = "test"
source_kind = "derived"
"""


def toml(*blocks: str, version: str = "t-1") -> str:
    return f'version = "{version}"\n' + "\n".join(blocks)


def block(**over: str) -> str:
    """A ratio KPI block with some lines replaced (value: the TOML right-hand side, '' drops it)."""
    lines = []
    for line in RATIO.strip().splitlines():
        key = line.split(" = ", 1)[0]
        if key in over:
            if over[key]:
                lines.append(f"{key} = {over[key]}")
        else:
            lines.append(line)
    known = {line.split(" = ", 1)[0] for line in lines}
    lines += [f"{k} = {v}" for k, v in over.items() if v and k not in known]
    return "\n".join(lines) + "\n"


def rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as exc:  # pydantic's ValidationError is a ValueError
        parse_registry(text)
    assert fragment in str(exc.value)


# --- the shipped registry ------------------------------------------------------------------------


def test_registry_file_loads():
    reg = load_registry()
    assert reg.version and len(reg.kpis) >= 20
    assert reg.get("dossier_on_time_rate") is not None and reg.get("nope") is None


def test_every_kpi_names_its_source():
    for k in load_registry().kpis:
        assert k.source.strip(), k.id
        assert k.source_kind in ("verified", "practice", "derived"), k.id


def test_every_kpi_reads_only_known_counters():
    for k in load_registry().kpis:
        for name in k.metrics:
            assert name in ALL_METRICS or (k.kind == "quantile" and name == "dossier.processing_le_*h"), (k.id, name)


def test_score_points_add_up_to_100_and_each_group_to_its_points():
    reg = load_registry()
    scored = [k for k in reg.kpis if k.score]
    assert sum(k.score.points for k in scored) == pytest.approx(100)
    for group, (_, points) in SCORE_GROUPS.items():
        assert sum(k.score.points for k in scored if k.score.group == group) == pytest.approx(points), group


def test_alerted_kpis_have_bands():
    for k in load_registry().kpis:
        if k.alert:
            assert k.bands is not None, k.id


def test_ids_are_unique():
    ids = [k.id for k in load_registry().kpis]
    assert len(ids) == len(set(ids))


# --- validation -----------------------------------------------------------------------------------


def test_a_minimal_registry_parses():
    reg = parse_registry(toml(block()))
    assert reg.version == "t-1" and reg.kpis[0].id == "r" and reg.kpis[0].scale == 100


def test_an_empty_registry_parses():
    assert parse_registry('version = "x"\n').kpis == ()


def test_unknown_counter_is_rejected():
    rejects(toml(block(numerator='["dossier.teleported"]')), "unknown counter 'dossier.teleported'")
    rejects(toml(block(denominator='["-nope"]')), "unknown counter 'nope'")


def test_histogram_placeholder_only_for_quantiles():
    ok = block(
        kind='"quantile"', quantile="0.5", numerator='["dossier.processing_le_*h"]', denominator='["dossier.resolved"]'
    )
    assert parse_registry(toml(ok)).kpis[0].quantile == 0.5
    rejects(toml(block(numerator='["dossier.processing_le_*h"]')), "unknown counter")


def test_quantile_needs_its_quantile():
    rejects(toml(block(kind='"quantile"', numerator='["dossier.processing_le_*h"]')), "needs `quantile`")


def test_ratio_without_denominator_is_rejected():
    rejects(toml(block(denominator="")), "a ratio needs a numerator and a denominator")
    rejects(toml(block(numerator="")), "a ratio needs a numerator and a denominator")


def test_sum_with_denominator_is_rejected():
    rejects(toml(block(kind='"sum"')), "numerator only")


@pytest.mark.parametrize(
    ("direction", "green", "red", "ok"),
    [
        ("higher", 90, 60, True),
        ("higher", 60, 90, False),
        ("higher", 70, 70, True),
        ("lower", 72, 168, True),
        ("lower", 168, 72, False),
    ],
)
def test_bands_must_be_in_order_for_the_direction(direction, green, red, ok):
    text = toml(block(direction=f'"{direction}"', bands=f"{{ green = {green}, red = {red} }}"))
    if ok:
        assert parse_registry(text).kpis[0].bands.green == green
    else:
        rejects(text, "wrong order")


def test_points_must_add_up_to_100():
    one = block(score='{ group = "progress", points = 60 }')
    two = block(id='"r2"', score='{ group = "progress", points = 30 }')
    rejects(toml(one, two), "not 100")
    fixed = block(id='"r2"', score='{ group = "progress", points = 40 }')
    assert len(parse_registry(toml(one, fixed)).kpis) == 2


def test_unknown_score_group_is_rejected():
    rejects(toml(block(score='{ group = "vibes", points = 100 }')), "unknown score group")


def test_only_rates_earn_points():
    text = toml(block(kind='"sum"', denominator="", score='{ group = "progress", points = 100 }'))
    rejects(text, "only rates")


@pytest.mark.parametrize("full_at", ["0", "1.5", "-0.1"])
def test_full_at_is_a_fraction(full_at):
    with pytest.raises(ValidationError):
        parse_registry(toml(block(score=f'{{ group = "progress", points = 100, full_at = {full_at} }}')))


def test_duplicate_ids_are_rejected():
    rejects(toml(block(), block()), "duplicate KPI ids")


def test_unknown_keys_and_missing_source_are_rejected():
    with pytest.raises(ValidationError):
        parse_registry(toml(block(colour='"red"')))
    with pytest.raises(ValidationError):
        parse_registry(toml(block(source="")))
    with pytest.raises(ValidationError):
        parse_registry(toml(block(source_kind='"rumour"')))


def test_bad_id_and_missing_version_are_rejected():
    with pytest.raises(ValidationError):
        parse_registry(toml(block(id='"Bad-Id"')))
    with pytest.raises(ValidationError):
        parse_registry(block())  # no version
