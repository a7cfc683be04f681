"""Load `config/` into a validated `CampaignConfig`; every error names the file, key path and reason."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from wangjian.campaign.models import (
    CODE,
    EMAIL,
    REGION,
    AgenciesFile,
    Agency,
    CalendarFile,
    CampaignFile,
    CategoriesFile,
    Category,
    LadderStep,
    Platform,
    PlatformsFile,
    RegionsFile,
    Regulator,
    SlaFile,
    SlaPolicy,
    region_matches,
)

FILES: dict[str, tuple[str, type[BaseModel], bool]] = {
    "campaign": ("campaign.yaml", CampaignFile, True),
    "agencies": ("agencies.yaml", AgenciesFile, True),
    "categories": ("categories.yaml", CategoriesFile, True),
    "sla": ("sla.yaml", SlaFile, True),
    "regions": ("regions.yaml", RegionsFile, True),
    "calendar": ("calendar.yaml", CalendarFile, False),
    "platforms": ("platforms.yaml", PlatformsFile, False),
}

_PATTERN_REASONS = {
    EMAIL: "is not an e-mail address",
    CODE: "is not a code (lower-case letters, digits, '_' or '-')",
    REGION: "is not a 6-digit administrative division code",
}

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration problem, located: `file: key.path: reason`."""

    def __init__(self, file: Path | str, path: str, reason: str) -> None:
        self.file, self.path, self.reason = str(file), path, reason
        location = f"{self.file}: {path}" if path else self.file
        super().__init__(f"{location}: {reason}")


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _reason(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern in _PATTERN_REASONS:
            return f"{error['input']!r} {_PATTERN_REASONS[pattern]}"
    if error["type"] == "extra_forbidden":
        return "unknown key (a typo?)"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_file(path: Path, model: type[M]) -> M:
    """Read one YAML file into its model or raise `ConfigError` naming the first problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, where, f"is not valid YAML ({problem})") from None
    if data is None:
        raise ConfigError(path, "", "is empty")
    if not isinstance(data, dict):
        raise ConfigError(path, "", "must hold a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(path, _key_path(first["loc"]), _reason(first)) from None


@dataclass(frozen=True)
class CampaignConfig:
    """The whole campaign configuration, cross-checked, with the lookups the domain needs."""

    directory: Path
    campaign_file: CampaignFile
    agencies_file: AgenciesFile
    categories_file: CategoriesFile
    sla: SlaFile
    regions: RegionsFile
    calendar: CalendarFile
    platforms_file: PlatformsFile
    digest: str
    sources: dict[str, Path] = field(default_factory=dict)

    @property
    def campaign(self):  # type: ignore[no-untyped-def]
        return self.campaign_file.campaign

    @property
    def deadlines(self):  # type: ignore[no-untyped-def]
        return self.campaign_file.deadlines

    @property
    def agencies(self) -> dict[str, Agency]:
        return {a.code: a for a in self.agencies_file.agencies}

    @property
    def categories(self) -> dict[str, Category]:
        return {c.code: c for c in self.categories_file.categories}

    @property
    def platforms(self) -> dict[str, Platform]:
        return {p.code: p for p in self.platforms_file.platforms}

    @property
    def category_owner(self) -> dict[str, str]:
        return {c: a.code for a in self.agencies_file.agencies for c in a.categories}

    def policy(self, kind: str) -> SlaPolicy:
        return self.sla.policies[kind]

    def ladder(self, name: str) -> list[LadderStep]:
        return self.sla.ladders[name]

    def regulator_for(self, region_code: str) -> Regulator | None:
        """The most specific regulator in the directory for an operator's region, if any."""
        best: Regulator | None = None
        for regulator in self.regions.regulators:
            if region_matches(regulator.region_code, region_code) and (
                best is None or _specificity(regulator.region_code) > _specificity(best.region_code)
            ):
                best = regulator
        return best


def _specificity(code: str) -> int:
    return 0 if code.endswith("0000") else 1 if code.endswith("00") else 2


def _locate(directory: Path, name: str, base: Path | None, required: bool) -> Path | None:
    for folder in (directory, base):
        if folder is not None and (folder / name).exists():
            return folder / name
    if required:
        raise ConfigError(directory / name, "", "is missing")
    return None


def load_config(directory: Path | str) -> CampaignConfig:
    """Read and cross-check every file of a campaign folder (a folder may inherit from `base`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(directory, "", "is not a folder")
    campaign_path = directory / "campaign.yaml"
    if not campaign_path.exists():
        raise ConfigError(campaign_path, "", "is missing")
    campaign_file = parse_file(campaign_path, CampaignFile)
    base = (directory / campaign_file.base).resolve() if campaign_file.base else None
    if base is not None and not base.is_dir():
        raise ConfigError(campaign_path, "base", f"{campaign_file.base!r} is not a folder")

    parsed: dict[str, Any] = {"campaign": campaign_file}
    sources: dict[str, Path] = {"campaign": campaign_path}
    digest = hashlib.sha256()
    digest.update(campaign_path.read_bytes())
    for key, (name, model, required) in FILES.items():
        if key == "campaign":
            continue
        path = _locate(directory, name, base, required)
        if path is None:
            parsed[key] = model()
            continue
        parsed[key] = parse_file(path, model)  # type: ignore[type-var]
        sources[key] = path
        digest.update(path.read_bytes())

    config = CampaignConfig(
        directory=directory,
        campaign_file=campaign_file,
        agencies_file=parsed["agencies"],
        categories_file=parsed["categories"],
        sla=parsed["sla"],
        regions=parsed["regions"],
        calendar=parsed["calendar"],
        platforms_file=parsed["platforms"],
        digest=digest.hexdigest()[:16],
        sources=sources,
    )
    _cross_check(config)
    return config


def _cross_check(config: CampaignConfig) -> None:
    src = config.sources
    categories = config.categories
    for i, agency in enumerate(config.agencies_file.agencies):
        for j, category in enumerate(agency.categories):
            if category not in categories:
                raise ConfigError(
                    src["agencies"],
                    f"agencies[{i}].categories[{j}]",
                    f"unknown category {category!r} (not in categories.yaml)",
                )
    campaign = config.campaign
    if campaign.office.host_agency not in config.agencies:
        raise ConfigError(
            src["campaign"],
            "campaign.office.host_agency",
            f"{campaign.office.host_agency!r} is not a member agency",
        )
    deadlines = config.deadlines
    ladders = config.sla.ladders
    named = [("deadlines.summary_package.ladder", deadlines.summary_package.ladder)]
    if deadlines.implementation_plan:
        named.append(("deadlines.implementation_plan.ladder", deadlines.implementation_plan.ladder))
    if deadlines.monthly_report:
        named.append(("deadlines.monthly_report.ladder", deadlines.monthly_report.ladder))
    named += [
        (f"deadlines.deliverables[{i}].ladder", d.ladder)
        for i, d in enumerate(deadlines.deliverables)
    ]
    for path, ladder in named:
        if ladder not in ladders:
            raise ConfigError(src["campaign"], path, f"unknown ladder {ladder!r} (not in sla.yaml)")
    for i, regulator in enumerate(config.regions.regulators):
        if campaign.jurisdiction.covers(regulator.region_code):
            raise ConfigError(
                src["regions"],
                f"regulators[{i}].region_code",
                f"{regulator.region_code} lies inside the campaign's own jurisdiction",
            )
    if config.platforms_file.platforms and config.platforms_file.assist_ladder not in ladders:
        raise ConfigError(
            src.get("platforms", config.directory / "platforms.yaml"),
            "assist_ladder",
            f"unknown ladder {config.platforms_file.assist_ladder!r} (not in sla.yaml)",
        )
