"""`wangjian listed`: the shared list of removed and sanctioned operators (一处清退、处处关店)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from wangjian.cli.common import (
    EXIT_PARTIAL,
    Failure,
    InputError,
    app_from_environment,
    err,
    handle_errors,
    out,
    print_json,
)

listed = typer.Typer(
    help="共享名单 The shared list of removed operators: import, delist, list, send the digest.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(listed, name="listed")


@listed.command("import")
@handle_errors
def import_list(
    path: Path = typer.Argument(..., help="CSV (UTF-8 or GB18030), XLSX or JSON Lines file."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="ISO date or datetime of the import (default: now)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """List (and delist) the operators of a file: columns list_kind (removed_by_platform,
    abnormal_operation, serious_violation), action (list, delist), credit_code, operator_name,
    platform, shop_name, shop_id, region_code, reason, listed_on, delisted_on."""
    from flows.import_listed_operators import import_listed_operators
    from wangjian.intake import IntakeError, inspect_lead_header
    from wangjian.intake.columns import LISTED_SCHEMA

    app = app_from_environment()
    app.as_of(as_of)
    try:
        inspect_lead_header(path, schema=LISTED_SCHEMA)
        result = import_listed_operators(path=str(path.resolve()), as_of=as_of)
    except IntakeError as exc:
        raise InputError(str(exc)) from None
    if as_json:
        print_json(result)
    else:
        if result["already_imported"]:
            err.print("[yellow]![/] 此文件已导入过,以下为当时的结果 (imported before)")
        err.print(
            f"[green]✓[/] 新列入 listed {result['listed']} · 重新列入 relisted "
            f"{result['relisted']} · 移出 delisted {result['delisted']} · 已在名单 unchanged "
            f"{result['unchanged']} · 退回 rejected {result['rejected']}",
            highlight=False,
        )
    if result["rejected"]:
        err.print(f"退回清单 reject report: {result['reject_report']}", soft_wrap=True)
        raise typer.Exit(EXIT_PARTIAL)


@listed.command("delist")
@handle_errors
def delist(
    kind: str = typer.Option(
        ..., "--kind", help="removed_by_platform, abnormal_operation or serious_violation."
    ),
    credit_code: str | None = typer.Option(None, "--credit-code", help="The operator's code."),
    platform: str | None = typer.Option(None, "--platform", help="Or its platform…"),
    shop: str | None = typer.Option(None, "--shop", help="…and shop name."),
    shop_id: str | None = typer.Option(None, "--shop-id", help="…or shop id."),
    reason: str | None = typer.Option(None, "--reason", help="Why it comes off the list."),
    as_of: str | None = typer.Option(None, "--as-of", help="When (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Take an operator off a list; new leads about it are no longer flagged."""
    from flows.delist_operator import delist_operator_flow
    from wangjian.ledger.listed import ListedRefused

    app = app_from_environment()
    app.as_of(as_of)
    try:
        result = delist_operator_flow(
            list_kind=kind,
            credit_code=credit_code,
            platform=platform,
            shop_name=shop,
            shop_id=shop_id,
            reason=reason,
            as_of=as_of,
        )
    except ListedRefused as refused:
        raise Failure(f"{refused.zh} ({refused.en})") from None
    if as_json:
        print_json(result)
    else:
        err.print(f"[green]✓[/] 已移出 delisted: {result['id']} ({result['list_kind']})")


@listed.command("list")
@handle_errors
def list_operators(
    delisted: bool = typer.Option(False, "--all", help="Delisted operators too."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The listed operators, newest first."""
    from wangjian.ledger.listed import list_listings

    app = app_from_environment()
    with app.sessions() as session:
        rows = list_listings(session, app, include_delisted=delisted)
    if as_json:
        print_json({"listed": rows})
        return
    table = Table(
        "id", "名录 list", "信用代码 code", "经营者 operator", "平台/店铺 shop", "列入 on"
    )
    for r in rows:
        shop = " ".join(str(v) for v in (r["platform_name"], r["shop_name"]) if v)
        table.add_row(
            str(r["id"]),
            r["list_kind_zh"] + ("" if r["active"] else " (已移出)"),
            r["credit_code"] or "—",
            r["operator_name"] or "—",
            shop or "—",
            str(r["listed_on"]),
        )
    out.print(table)


@listed.command("digest")
@handle_errors
def digest(
    as_of: str | None = typer.Option(None, "--as-of", help="ISO date or datetime (now)."),
    send: bool = typer.Option(True, "--send/--no-send", help="Send the e-mails now."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Send each platform the operators newly listed (and delisted) since it was last told
    (the `listed-digest` flow, also scheduled in prefect.yaml)."""
    from flows.listed_digest import listed_digest

    app = app_from_environment()
    app.as_of(as_of)
    result = listed_digest(as_of=as_of, send=send)
    sent = (result.get("notifications") or {}).get("sent", 0)
    if as_json:
        print_json(
            {
                **{k: v for k, v in result.items() if k != "notifications"},
                "notifications_sent": sent,
            }
        )
        return
    for code, count in result["platforms"].items():
        err.print(f"  {code:12} {count}")
    err.print(f"[green]✓[/] 推送 items {result['notices']}; 发出邮件 sent {sent}")
