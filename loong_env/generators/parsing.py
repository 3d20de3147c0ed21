"""Turn a model's reply into (question, code): JSON first, a tolerant free-text reader second.

Small models break requested formats often (8 of 20 free-text replies here), so we ask for JSON through the
server's JSON-schema output and still accept fenced code, `Question:` headers, or JSON wrapped in prose.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from loong_env.errors import LoongError

CANDIDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 1},
        "code": {"type": "string", "minLength": 1},
    },
    "required": ["question", "code"],
    "additionalProperties": False,
}


def candidate_response_format() -> dict[str, Any]:
    """The OpenAI `response_format` that asks a server (llama.cpp, vLLM, OpenAI) for the candidate JSON."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "candidate", "schema": CANDIDATE_SCHEMA, "strict": True},
    }


class ParsedCandidate(BaseModel):
    """A problem as the model wrote it, before any check: the question and code meant to print its answer."""

    question: str = Field(min_length=1)
    code: str = Field(min_length=1)
    parsed_by: str = Field(description="Which reader succeeded: json, embedded_json or free_text.")


class ParseFailure(LoongError, ValueError):
    """The reply held no recognisable question + code; the message says what was missing."""


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_QUESTION_HEADER = re.compile(
    r"(?:^|\n)\s*(?:#+\s*|\*\*)?(?:new\s+)?(?:question|problem)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?",
    re.IGNORECASE,
)
_CODE_HEADER = re.compile(
    r"\n\s*(?:#+\s*|\*\*)?(?:code|solution|python)\b[^\n]*[:：]?\s*(?:\*\*)?\s*\n", re.IGNORECASE
)


def _from_mapping(obj: Any, parsed_by: str) -> ParsedCandidate | None:
    if not isinstance(obj, dict):
        return None
    lowered = {str(k).lower(): v for k, v in obj.items()}
    question = lowered.get("question") or lowered.get("problem")
    code = lowered.get("code") or lowered.get("solution") or lowered.get("python")
    if isinstance(question, str) and isinstance(code, str) and question.strip() and code.strip():
        return ParsedCandidate(question=question.strip(), code=_strip_fence(code), parsed_by=parsed_by)
    return None


def _strip_fence(code: str) -> str:
    """Models often put a fenced block inside the JSON string; keep only the code."""
    match = _FENCE.search(code)
    return (match.group(2) if match else code).strip("\n").rstrip()


def _loads(text: str) -> Any:
    # strict=False accepts raw newlines/tabs inside strings, the commonest way small models break JSON.
    return json.loads(text, strict=False)


def _embedded_json(text: str) -> ParsedCandidate | None:
    """JSON in prose, in a ```json fence, or followed by more text (models often start a second object)."""
    decoder = json.JSONDecoder(strict=False)
    spans: list[str] = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in ("json", "")]
    spans.append(text)
    for span in spans:
        start = span.find("{")
        while start != -1:
            try:
                obj, _ = decoder.raw_decode(span, start)  # the first complete object; trailing text ignored
            except (json.JSONDecodeError, ValueError):
                obj = None
            if found := _from_mapping(obj, "embedded_json"):
                return found
            start = span.find("{", start + 1)
    return None


def _free_text(text: str) -> ParsedCandidate | None:
    """`Question: ...` then a fenced (or headed) code block: the format models fall back to."""
    fences = [m for m in _FENCE.finditer(text) if m.group(1).lower() in ("python", "py", "python3", "")]
    if fences:
        code_match = fences[-1]
        code = code_match.group(2).strip("\n").rstrip()
        before = text[: code_match.start()]
    else:
        header = None
        for header in _CODE_HEADER.finditer(text):
            pass
        if header is None:
            return None
        code = text[header.end() :].strip("\n").rstrip()
        before = text[: header.start()]
    q_match = None
    for q_match in _QUESTION_HEADER.finditer(before):
        pass
    question = before[q_match.end() :] if q_match else before
    question = _CODE_HEADER.split(question)[0]
    question = question.strip().strip("*").strip()
    if not question or not code.strip() or "print" not in code:
        return None
    return ParsedCandidate(question=question, code=code, parsed_by="free_text")


def parse_candidate(text: str) -> ParsedCandidate:
    """Read question + code from a reply; raises ParseFailure saying what the reply lacked."""
    stripped = text.strip()
    if not stripped:
        raise ParseFailure("the reply was empty")
    try:
        found = _from_mapping(_loads(stripped), "json")
    except (json.JSONDecodeError, ValueError):
        found = None
    found = found or _embedded_json(stripped) or _free_text(stripped)
    if found is None:
        has_code = bool(_FENCE.search(stripped)) or "print(" in stripped
        missing = "a question" if has_code else "code that prints the answer"
        raise ParseFailure(
            f"expected JSON {{'question': ..., 'code': ...}} or 'Question:' + a ```python block; "
            f"found {len(stripped)} chars without {missing}: {stripped[:80]!r}"
        )
    return found


def parse_code(text: str) -> str:
    """Corrected code from a repair reply: the candidate JSON first, then a fenced block, then bare code."""
    stripped = text.strip()
    if not stripped:
        raise ParseFailure("the repair reply was empty")
    try:
        return parse_candidate(stripped).code
    except ParseFailure:
        pass
    fences = [
        m.group(2) for m in _FENCE.finditer(stripped) if m.group(1).lower() in ("python", "py", "python3", "")
    ]
    code = next((f.strip("\n").rstrip() for f in reversed(fences) if "print" in f), None)
    if code is None and "print(" in stripped and not stripped.startswith("{"):
        code = stripped
    if not code:
        raise ParseFailure(
            f"expected JSON {{'question': ..., 'code': ...}} or a ```python block that prints; "
            f"found {len(stripped)} chars: {stripped[:80]!r}"
        )
    return code
