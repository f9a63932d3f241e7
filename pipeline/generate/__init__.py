"""Generators write one answer section from numbered sources. The LLM is one of the costly seams.

- :mod:`~pipeline.generate.base`: the request, the sources, the drafted items, the protocols.
- :mod:`~pipeline.generate.extractive`: sentences of the sources, no model.
- :mod:`~pipeline.generate.llm`: a chat model held to a JSON schema; :mod:`~pipeline.generate.backends` runs it.
- :mod:`~pipeline.generate.registry`: the generators by name (:func:`make_generator`).
"""

from pipeline.generate.backends import LlamaBackend, OpenAIBackend
from pipeline.generate.base import (
    Audience,
    ChatBackend,
    DraftItem,
    Generator,
    SectionRequest,
    Source,
    complete,
    heading_leaf,
)
from pipeline.generate.extractive import ExtractiveGenerator
from pipeline.generate.llm import FOLLOW_UPS_SCHEMA, LLMGenerator, StreamParser, format_sources, section_schema
from pipeline.generate.registry import GENERATORS, make_generator

__all__ = [
    "FOLLOW_UPS_SCHEMA",
    "GENERATORS",
    "Audience",
    "ChatBackend",
    "DraftItem",
    "ExtractiveGenerator",
    "Generator",
    "LLMGenerator",
    "LlamaBackend",
    "OpenAIBackend",
    "SectionRequest",
    "Source",
    "StreamParser",
    "complete",
    "format_sources",
    "heading_leaf",
    "make_generator",
    "section_schema",
]
