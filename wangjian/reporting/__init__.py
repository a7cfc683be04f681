"""The campaign's statistics (pandas over the ledger) and its report files (XLSX, HTML, Markdown)."""
