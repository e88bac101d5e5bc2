"""Extraction: articles → attributed statements (quotes and reported speech) and their speakers."""

from .attribution import extract_article

__all__ = ["extract_article"]
