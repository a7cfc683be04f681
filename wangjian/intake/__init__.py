"""Lead files in: streaming readers, row checks and the reject report."""

from wangjian.intake.readers import (
    CHUNK_ROWS,
    FileInfo,
    IntakeError,
    inspect_lead_file,
    inspect_lead_header,
    read_lead_chunks,
)
from wangjian.intake.rejects import RejectReport
from wangjian.intake.validate import CheckedChunk, validate_lead_chunk

__all__ = [
    "CHUNK_ROWS",
    "CheckedChunk",
    "FileInfo",
    "IntakeError",
    "RejectReport",
    "inspect_lead_file",
    "inspect_lead_header",
    "read_lead_chunks",
    "validate_lead_chunk",
]
