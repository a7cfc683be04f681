"""Streaming readers for lead files: CSV (UTF-8 with or without BOM, GB18030), XLSX, JSON Lines.

A file is first inspected whole, cheaply: its SHA-256 (the import's identity, so a rerun
resumes), its encoding (decoded end to end, so a bad byte stops the import before anything is
written), an estimate of its rows and its header. Then it is read in chunks of plain strings,
each row numbered as a spreadsheet shows it (the header is row 1; in JSON Lines, the line).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wangjian.intake.columns import LEAD_SCHEMA, FileSchema

CHUNK_ROWS = 50_000
ROW = "row"  # the row number column of a chunk
PROBLEM = "problem"  # why a row could not be read whole ("" when it could)
_OVERFLOW = "\x00overflow"  # catches a CSV row with more fields than the header
_BLOCK = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"

PROBLEMS = {
    "extra_fields": ("字段数多于表头", "more fields than the header"),
    "bad_json": ("不是有效的 JSON 对象", "not a valid JSON object"),
}


class IntakeError(Exception):
    """A lead file that cannot be used at all (unreadable, empty, wrong header): nothing is done."""


@dataclass(frozen=True)
class FileInfo:
    """What inspecting a lead file found: enough to read it and to know it again."""

    path: Path
    format: str  # csv | xlsx | jsonl
    encoding: str | None
    sha256: str
    size: int
    estimated_rows: int
    header: tuple[str, ...]  # the file's columns, as named there (normalised)
    ignored: tuple[str, ...]  # columns the contract does not know, read past
    schema: FileSchema = LEAD_SCHEMA  # the kind of file: leads, or listed operators


def inspect_lead_file(path: Path | str, *, schema: FileSchema = LEAD_SCHEMA) -> FileInfo:
    """Hash, decode and check the header of a lead file (or another `schema`'s), or raise
    `IntakeError`."""
    path = Path(path)
    head = _head(path)
    if head.startswith(_ZIP_MAGIC):
        return _inspect_xlsx(path, schema)
    sha256, size, lines, encoding = _hash_and_decode(path, head)
    text_start = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    if text_start.startswith("{") or path.suffix.lower() in (".jsonl", ".ndjson"):
        header = _check_header(_jsonl_header(path, encoding), path, schema)
        return FileInfo(path, "jsonl", encoding, sha256, size, lines, *header, schema)
    header = _check_header(_csv_header(path, encoding), path, schema)
    rows = max(lines - 1, 0)
    return FileInfo(path, "csv", encoding, sha256, size, rows, *header, schema)


def inspect_lead_header(path: Path | str, *, schema: FileSchema = LEAD_SCHEMA) -> tuple[str, ...]:
    """Check only the start of a file (format, encoding of the first block, header): a quick
    look before a long import; `inspect_lead_file` still checks the whole file."""
    path = Path(path)
    head = _head(path)
    if head.startswith(_ZIP_MAGIC):
        with _open_sheet(path) as (_sheet, rows):
            header = next(rows, None)
        if header is None:
            raise IntakeError(f"工作表为空 the first sheet is empty ({path.name})")
        return _check_header([_cell_text(v) for v in header], path, schema)[0]
    encoding = _guess_encoding(head, path)
    text_start = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    if text_start.startswith("{") or path.suffix.lower() in (".jsonl", ".ndjson"):
        return _check_header(_jsonl_header(path, encoding, errors="replace"), path, schema)[0]
    return _check_header(_csv_header(path, encoding, errors="replace"), path, schema)[0]


def read_lead_chunks(info: FileInfo, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks: every column of its schema as a string ("" when absent), +
    row, problem."""
    readers = {"csv": _csv_chunks, "xlsx": _xlsx_chunks, "jsonl": _jsonl_chunks}
    yield from readers[info.format](info, chunk_rows)


# --- inspection --------------------------------------------------------------------------------


def _head(path: Path) -> bytes:
    """The first bytes of a file, after the checks every lead file must pass."""
    if not path.exists():
        raise IntakeError(f"文件不存在 file not found: {path}")
    if not path.is_file():
        raise IntakeError(f"不是文件 not a file: {path}")
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise IntakeError(f"无法读取文件 cannot read {path}: {exc.strerror or exc}") from None
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise IntakeError(f"文件为空 the file is empty: {path}")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise IntakeError(
            f"不支持旧版 .xls 文件,请另存为 .xlsx (legacy .xls is not supported): {path}"
        )
    return head


def _guess_encoding(head: bytes, path: Path) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    raise IntakeError(
        f"无法识别文件编码(应为 UTF-8 或 GB18030)the file is neither UTF-8 nor GB18030 text: {path}"
    )


def _hash_and_decode(path: Path, head: bytes) -> tuple[str, int, int, str]:
    """SHA-256, size, line count and the encoding that decodes the whole file."""
    candidates = ["utf-8-sig"] if head.startswith(codecs.BOM_UTF8) else ["utf-8", "gb18030"]
    for encoding in candidates:
        digest, size, lines = hashlib.sha256(), 0, 0
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as handle:
                while block := handle.read(_BLOCK):
                    digest.update(block)
                    size += len(block)
                    lines += block.count(b"\n")
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        except OSError as exc:
            raise IntakeError(f"无法读取文件 cannot read {path}: {exc.strerror or exc}") from None
        return digest.hexdigest(), size, lines + (0 if head.endswith(b"\n") else 1), encoding
    raise IntakeError(
        f"无法识别文件编码(应为 UTF-8 或 GB18030)the file is neither UTF-8 nor GB18030 text: {path}"
    )


def _normalise_name(name: Any) -> str:
    return str(name if name is not None else "").strip().lstrip("\ufeff").strip().lower()


def _check_header(
    header: list[str], path: Path, schema: FileSchema
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The header as known and ignored columns, or `IntakeError` naming what is wrong with it."""
    names_known, required = schema.names, schema.required
    names = [_normalise_name(h) for h in header]
    while names and names[-1] == "":
        names.pop()  # trailing empty header cells (a spreadsheet's habit)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise IntakeError(
            f"表头列名重复 repeated columns in the header: {', '.join(repeated)} ({path.name})"
        )
    if "" in names:
        raise IntakeError(f"表头有空白列名 the header has an unnamed column ({path.name})")
    unknown = [n for n in names if n not in names_known]
    for name in unknown:
        close = difflib.get_close_matches(name, names_known, n=1, cutoff=0.8)
        if close and close[0] not in names:
            raise IntakeError(
                f"表头列名有误 unknown column {name!r} in the header; did you mean {close[0]!r}? "
                f"({path.name})"
            )
    missing = [c for c in required if c not in names]
    if missing:
        raise IntakeError(
            f"表头缺少必填列 the header lacks required columns: {', '.join(missing)} "
            f"(expected {', '.join(names_known)}; {path.name})"
        )
    return tuple(names), tuple(unknown)


def _csv_header(path: Path, encoding: str, errors: str = "strict") -> list[str]:
    with path.open(encoding=encoding, errors=errors, newline="") as handle:
        try:
            return next(csv.reader(handle))
        except StopIteration:
            raise IntakeError(f"文件为空 the file is empty: {path}") from None
        except csv.Error as exc:
            raise IntakeError(
                f"无法解析表头 cannot parse the header: {exc} ({path.name})"
            ) from None


def _jsonl_header(path: Path, encoding: str, errors: str = "strict") -> list[str]:
    """The keys seen in the first chunk of records: JSON Lines' header."""
    keys: dict[str, None] = {}
    objects = 0
    with path.open(encoding=encoding, errors=errors) as handle:
        for number, line in enumerate(handle, start=1):
            if number > CHUNK_ROWS:
                break
            record = _json_object(line)
            if isinstance(record, dict):
                objects += 1
                keys.update(dict.fromkeys(record))
    if not objects:
        raise IntakeError(
            f"不是有效的 JSON Lines 文件 no JSON object in the first lines ({path.name})"
        )
    return list(keys)


def _inspect_xlsx(path: Path, schema: FileSchema) -> FileInfo:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            size += len(block)
    with _open_sheet(path) as (sheet, rows):
        header = next(rows, None)
        if header is None:
            raise IntakeError(f"工作表为空 the first sheet is empty ({path.name})")
        estimated = max((sheet.max_row or 1) - 1, 0)
    known, ignored = _check_header([_cell_text(v) for v in header], path, schema)
    return FileInfo(path, "xlsx", None, digest.hexdigest(), size, estimated, known, ignored, schema)


# --- chunks ------------------------------------------------------------------------------------


def _frame(
    columns: dict[str, Any], rows: Any, problems: Any, names: tuple[str, ...]
) -> pd.DataFrame:
    """A chunk: every column named (absent ones as ""), the row numbers and the problems."""
    length = len(rows)
    blank = np.full(length, "", dtype=object)
    data = {name: columns.get(name, blank) for name in names}
    data[ROW] = np.asarray(rows, dtype=np.int64)
    data[PROBLEM] = np.asarray(problems, dtype=object) if length else blank
    return pd.DataFrame(data)


def _csv_chunks(info: FileInfo, chunk_rows: int) -> Iterator[pd.DataFrame]:
    known = info.schema.names
    names = [*info.header, _OVERFLOW]
    skipped: list[int] = []  # record numbers (header = 1) the parser skipped as malformed
    next_record = 2
    reader = pd.read_csv(
        info.path,
        encoding=info.encoding,
        header=None,
        skiprows=1,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        on_bad_lines="warn",
        engine="c",
        chunksize=chunk_rows,
    )
    with reader:
        while True:
            # The parser reports a row with too many fields as a warning naming its record;
            # catch them around each read only, so no one else's warnings are swallowed.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                raw = next(reader, None)
            skipped += _skipped_records(caught)
            if raw is None:
                break
            if raw.empty:  # a file with a header and no rows
                continue
            numbers, end = _number_rows(len(raw), next_record, skipped)
            overflow = raw[_OVERFLOW].to_numpy(dtype=object) != ""
            problems = np.where(overflow, "extra_fields", "").astype(object)
            present = {n: raw[n].to_numpy(dtype=object) for n in info.header if n in known}
            chunk = _frame(present, numbers, problems, known)
            yield _with_skipped(chunk, skipped, next_record, end, known)
            next_record = end
    late = [n for n in skipped if n >= next_record]
    if late:
        yield _frame({}, late, ["extra_fields"] * len(late), known)


def _skipped_records(caught: list[warnings.WarningMessage] | None) -> list[int]:
    out = []
    for warning in caught or []:
        if not issubclass(warning.category, pd.errors.ParserWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
            continue
        text = str(warning.message)
        for line in text.splitlines():
            # "Skipping line 7: expected 4 fields, saw 5"
            if line.startswith("Skipping line "):
                out.append(int(line.split()[2].rstrip(":")))
    return out


def _number_rows(count: int, start: int, skipped: list[int]) -> tuple[np.ndarray, int]:
    """Record numbers for `count` parsed rows from `start`, stepping over skipped records."""
    gaps = sorted(n for n in skipped if n >= start)
    if not gaps or gaps[0] >= start + count:
        return np.arange(start, start + count, dtype=np.int64), start + count
    numbers: list[int] = []
    record, g = start, 0
    while len(numbers) < count:
        if g < len(gaps) and gaps[g] == record:
            g += 1
        else:
            numbers.append(record)
        record += 1
    return np.array(numbers, dtype=np.int64), record


def _with_skipped(
    chunk: pd.DataFrame, skipped: list[int], start: int, end: int, names: tuple[str, ...]
) -> pd.DataFrame:
    """Add the malformed records that fell inside this chunk's span, as rows to reject."""
    inside = [n for n in skipped if start <= n < end]
    if not inside:
        return chunk
    extra = _frame({}, inside, ["extra_fields"] * len(inside), names)
    return pd.concat([chunk, extra], ignore_index=True).sort_values(ROW, ignore_index=True)


class _SheetContext:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.workbook: Any = None

    def __enter__(self) -> tuple[Any, Iterator[tuple[Any, ...]]]:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            self.workbook = load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise IntakeError(
                f"无法读取 Excel 文件 unreadable XLSX ({self.path.name}): {exc}"
            ) from None
        if not self.workbook.worksheets:
            raise IntakeError(f"工作簿没有工作表 the workbook has no sheet ({self.path.name})")
        sheet = self.workbook.worksheets[0]
        return sheet, sheet.iter_rows(values_only=True)

    def __exit__(self, *exc: object) -> None:
        if self.workbook is not None:
            self.workbook.close()


def _open_sheet(path: Path) -> _SheetContext:
    return _SheetContext(path)


def _cell_text(value: Any) -> str:
    """A cell as the text a person typed: 140105 not 140105.0, a date as 2021-10-25."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _columnar(
    records: list[tuple[int, dict[str, str]]], problems: list[str], names: tuple[str, ...]
) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for _number, record in records:
        for name in names:
            columns[name].append(record.get(name, ""))
    return _frame(columns, [n for n, _r in records], problems, names)


def _xlsx_chunks(info: FileInfo, chunk_rows: int) -> Iterator[pd.DataFrame]:
    names = info.schema.names
    wanted = [(i, n) for i, n in enumerate(info.header) if n in names]
    with _open_sheet(info.path) as (_sheet, rows):
        next(rows, None)  # the header
        batch: list[tuple[int, dict[str, str]]] = []
        problems: list[str] = []
        for number, values in enumerate(rows, start=2):
            record = {n: _cell_text(values[i]) if i < len(values) else "" for i, n in wanted}
            extra = any(v not in (None, "") for v in values[len(info.header) :])
            batch.append((number, record))
            problems.append("extra_fields" if extra else "")
            if len(batch) >= chunk_rows:
                yield _columnar(batch, problems, names)
                batch, problems = [], []
        if batch:
            yield _columnar(batch, problems, names)


def _json_object(line: str) -> dict[str, Any] | None:
    text = line.strip().lstrip("\ufeff")
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _jsonl_chunks(info: FileInfo, chunk_rows: int) -> Iterator[pd.DataFrame]:
    assert info.encoding is not None
    names = info.schema.names
    with io.open(info.path, encoding=info.encoding) as handle:  # noqa: UP020
        batch: list[tuple[int, dict[str, str]]] = []
        problems: list[str] = []
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _json_object(line)
            if record is None:
                batch.append((number, {}))
                problems.append("bad_json")
            else:
                keys = {_normalise_name(k): v for k, v in record.items()}
                batch.append((number, {k: _cell_text(v) for k, v in keys.items()}))
                problems.append("")
            if len(batch) >= chunk_rows:
                yield _columnar(batch, problems, names)
                batch, problems = [], []
        if batch:
            yield _columnar(batch, problems, names)
