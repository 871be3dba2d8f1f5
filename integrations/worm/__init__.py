"""WORM audit log scanner: exact, newest-first, bounded-memory reads of ``<root>/YYYY/MM/DD/*.jsonl[.gz]``."""

from integrations.worm.records import OutcomeCounts, ScanResult, ScanStats, WormRecord
from integrations.worm.scanner import WormScanner

__all__ = ["OutcomeCounts", "ScanResult", "ScanStats", "WormRecord", "WormScanner"]
