"""The datasets' downloads: the checksummed download of the base (``specdsl._download``), refusing with a
DataError."""

from __future__ import annotations

from .._download import MIRROR_ENV, RETRIES, TIMEOUT, download, file_digest, mirror_urls, parse_checksum

__all__ = ["MIRROR_ENV", "RETRIES", "TIMEOUT", "download", "file_digest", "mirror_urls", "parse_checksum"]
