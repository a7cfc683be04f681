"""Load the campaign's parties (members, other regions' regulators, platforms) into the ledger."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from wangjian.campaign import CampaignConfig
from wangjian.ledger.models import Meta, Party


def desired_parties(config: CampaignConfig) -> list[Party]:
    parties = [
        Party(
            code=a.code,
            kind="member",
            name_zh=a.name_zh,
            name_en=a.name_en,
            contact_name=a.contact.name,
            contact_email=a.contact.email,
            leader_name=a.leader.name,
            leader_email=a.leader.email,
            region_code=None,
        )
        for a in config.agencies_file.agencies
    ]
    parties += [
        Party(
            code=r.code,
            kind="regulator",
            name_zh=r.name_zh,
            name_en=r.name_en,
            contact_name=None,
            contact_email=r.email,
            leader_name=None,
            leader_email=None,
            region_code=r.region_code,
        )
        for r in config.regions.regulators
    ]
    parties += [
        Party(
            code=p.code,
            kind="platform",
            name_zh=p.name_zh,
            name_en=p.name_en,
            contact_name=p.contact.name,
            contact_email=p.contact.email,
            leader_name=p.compliance_lead.name,
            leader_email=p.compliance_lead.email,
            region_code=None,
        )
        for p in config.platforms_file.platforms
    ]
    return parties


def sync_parties(session: Session, config: CampaignConfig) -> dict[str, int]:
    """Insert new parties, update changed ones, deactivate those gone from the config."""
    existing = {p.code: p for p in session.scalars(select(Party))}
    added = updated = 0
    wanted = desired_parties(config)
    for party in wanted:
        current = existing.get(party.code)
        if current is None:
            party.active = True
            party.token_version = 1
            session.add(party)
            added += 1
            continue
        changed = False
        for column in (
            "kind",
            "name_zh",
            "name_en",
            "contact_name",
            "contact_email",
            "leader_name",
            "leader_email",
            "region_code",
        ):
            if getattr(current, column) != getattr(party, column):
                setattr(current, column, getattr(party, column))
                changed = True
        if not current.active:
            current.active, changed = True, True
        updated += changed
    codes = {p.code for p in wanted}
    retired = 0
    for code, party in existing.items():
        if code not in codes and party.active:
            party.active = False
            retired += 1
    return {"added": added, "updated": updated, "retired": retired}


def read_meta(session: Session) -> dict[str, str]:
    return {m.key: m.value for m in session.scalars(select(Meta))}


def write_meta(session: Session, values: dict[str, str]) -> None:
    for key, value in values.items():
        session.merge(Meta(key=key, value=value))
