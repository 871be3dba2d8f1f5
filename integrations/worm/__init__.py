"""WORM audit log scanner: exact, newest-first, bounded-memory reads of ``<root>/YYYY/MM/DD/*.jsonl[.gz]``,
through a per-file index once a file is closed (``build_index`` indexes a whole root ahead)."""

from integrations.worm.indexer import BuildReport, build_index
from integrations.worm.records import OutcomeCounts, ScanResult, ScanStats, WormRecord
from integrations.worm.scanner import WormScanner

__all__ = ["BuildReport", "OutcomeCounts", "ScanResult", "ScanStats", "WormRecord", "WormScanner", "build_index"]
