"""The campaign configuration: the shipped campaigns load; broken files fail with file, key, reason."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from wangjian.campaign import ConfigError, load_config
from wangjian.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"
BEIJING = CONFIG / "campaigns" / "beijing-2018"
CONTRACT_AGENCY_FOR = {
    **{
        c: "samr"
        for c in [
            "trademark",
            "counterfeit_goods",
            "false_advertising",
            "fake_reviews",
            "unfair_terms",
            "price",
            "product_quality",
            "food_drug",
            "consumer_rights",
            "unlicensed_operation",
        ]
    },
    "counterfeit_import": "customs",
    "prohibited_parcel": "post",
    "courier_data_leak": "post",
    "fraud": "police",
    "personal_info_theft": "police",
    "pyramid_selling": "police",
    "patent_counterfeit": "ip",
    "piracy": "copyright",
    "illegal_site": "telecom",
    "harmful_info": "cac",
    "prepaid_card": "commerce",
    "wildlife": "forestry",
    "tax_evasion": "tax",
    "tourism": "culture_tourism",
}


def test_default_campaign_is_the_2021_district_plan() -> None:
    config = load_config(CONFIG)
    phases = config.campaign.phases
    assert config.campaign.year == 2021
    assert phases.mobilisation.end == date(2021, 10, 20)
    assert (phases.implementation.start, phases.implementation.end) == (
        date(2021, 10, 21),
        date(2021, 11, 30),
    )
    assert config.deadlines.summary_package.due == date(2021, 12, 9)
    assert config.deadlines.summary_package.min_typical_cases == 5
    assert config.deadlines.monthly_report.day_of_month == 23


def test_default_campaign_routes_every_contract_category_to_its_contract_agency() -> None:
    config = load_config(CONFIG)
    assert config.category_owner == CONTRACT_AGENCY_FOR
    assert set(config.categories) == set(CONTRACT_AGENCY_FOR)


def test_beijing_2018_has_thirteen_members_and_its_own_package_rules() -> None:
    config = load_config(BEIJING)
    assert len(config.agencies) == 13
    assert config.deadlines.summary_package.due == date(2018, 12, 13)
    assert config.deadlines.summary_package.min_typical_cases == 3
    assert config.campaign.jurisdiction.covers("110105")
    assert config.regulator_for("110105") is None
    assert config.category_owner["food_drug"] == "fda"


def test_sla_policies_carry_the_legal_limits() -> None:
    sla = load_config(CONFIG).sla
    verify = sla.policies["referral"].outcome
    assert (verify.count, verify.unit.value, verify.extendable_by) == (15, "working_days", 15)
    assert "第十八条" in verify.basis
    police = sla.policies["crime"].outcome
    assert (police.count, police.unit.value) == (3, "calendar_days")
    steps = {s.step: s.offset for s in sla.ladders["referral_outcome"]}
    assert steps == {"reminder": -3, "due_today": 0, "overdue": 1, "leader": 5, "supervision": 10}


def test_directory_prefers_the_most_specific_regulator() -> None:
    config = load_config(CONFIG)
    assert config.regulator_for("140106").region_code == "140106"
    assert config.regulator_for("140199").region_code == "140100"
    assert config.regulator_for("140521").region_code == "140000"
    assert config.regulator_for("310115").region_code == "310000"
    assert config.regulator_for("810000") is None


# --- broken files: each names the file, the key path and the reason ---------------------------


def _edit(tmp_path: Path, name: str, change) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder, ignore=shutil.ignore_patterns("campaigns"))
    path = folder / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    def change(data: dict) -> None:  # type: ignore[type-arg]
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(path: str):  # type: ignore[no-untyped-def]
    def change(data: dict) -> None:  # type: ignore[type-arg]
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]

    return change


BROKEN = [
    (
        "campaign.yaml",
        _set("campaign.phases.implementation.start", "2021-10-10"),
        "campaign.phases",
        "implementation must start after mobilisation ends",
    ),
    (
        "campaign.yaml",
        _set("campaign.phases.summary.end", "2021-11-01"),
        "campaign.phases.summary",
        "before start",
    ),
    (
        "campaign.yaml",
        _set("campaign.time_zone", "Asia/Beijingg"),
        "campaign.time_zone",
        "unknown time zone",
    ),
    (
        "campaign.yaml",
        _set("campaign.jurisdiction.region_codes", ["14010"]),
        "campaign.jurisdiction.region_codes[0]",
        "6-digit",
    ),
    (
        "campaign.yaml",
        _set("campaign.office.host_agency", "nobody"),
        "campaign.office.host_agency",
        "not a member agency",
    ),
    (
        "campaign.yaml",
        _set("deadlines.summary_package.min_typical_cases", -1),
        "deadlines.summary_package.min_typical_cases",
        "greater than or equal to 0",
    ),
    (
        "campaign.yaml",
        _set("deadlines.monthly_report.day_of_month", 31),
        "deadlines.monthly_report.day_of_month",
        "less than or equal to 28",
    ),
    (
        "campaign.yaml",
        _set("campaign.office.emial", "x@y.org"),
        "campaign.office.emial",
        "unknown key",
    ),
    (
        "campaign.yaml",
        _delete("deadlines.summary_package"),
        "deadlines.summary_package",
        "required key is missing",
    ),
    (
        "agencies.yaml",
        _set("agencies.3.contact.email", "not-an-address"),
        "agencies[3].contact.email",
        "not an e-mail address",
    ),
    ("agencies.yaml", _set("agencies.1.code", "samr"), "agencies", "agency codes repeated: samr"),
    (
        "agencies.yaml",
        _set("agencies.2.categories", ["trademark"]),
        "agencies",
        "'trademark' is given to both",
    ),
    (
        "agencies.yaml",
        _set("agencies.2.categories", ["teleportation"]),
        "agencies[2].categories[0]",
        "unknown category 'teleportation'",
    ),
    (
        "sla.yaml",
        _set("policies.referral.outcome.unit", "fortnights"),
        "policies.referral.outcome.unit",
        "Input should be",
    ),
    ("sla.yaml", _delete("policies.crime"), "", "policies.crime is missing"),
    ("sla.yaml", _set("ladders.referral_outcome.0.offset", 4), "", "steps must be in order"),
    (
        "regions.yaml",
        _set("regulators.0.region_code", "140105"),
        "regulators[0].region_code",
        "inside the campaign's own jurisdiction",
    ),
    (
        "calendar.yaml",
        _set(
            "years",
            {2027: {"holidays": [{"name": "春节", "from": "2027-02-10", "to": "2027-02-05"}]}},
        ),
        "years[2027].holidays[0]",
        "is before",
    ),
]


@pytest.mark.parametrize(("name", "change", "key", "reason"), BROKEN)
def test_broken_config_names_file_key_and_reason(tmp_path: Path, name, change, key, reason) -> None:  # type: ignore[no-untyped-def]
    folder = _edit(tmp_path, name, change)
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    error = caught.value
    assert Path(error.file).name == name
    assert error.path == key
    assert reason in error.reason
    assert str(error).startswith(str(folder / name))
    assert "\n" not in str(error)


def test_unparseable_yaml_names_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder, ignore=shutil.ignore_patterns("campaigns"))
    (folder / "sla.yaml").write_text("policies:\n  referral: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sla.yaml: line \d+: is not valid YAML"):
        load_config(folder)


def test_missing_required_file(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder, ignore=shutil.ignore_patterns("campaigns"))
    (folder / "agencies.yaml").unlink()
    with pytest.raises(ConfigError, match=r"agencies\.yaml: is missing"):
        load_config(folder)


def test_campaign_folder_inherits_missing_files_from_its_base() -> None:
    config = load_config(BEIJING)
    assert config.sources["categories"] == (CONFIG / "categories.yaml").resolve()
    assert config.sources["agencies"] == BEIJING / "agencies.yaml"
