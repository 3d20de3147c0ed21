"""Reading one policy turn: is it a tool call (OpenAI `tool_calls` or a fenced ```python block), an answer,
or neither? A malformed call is read as a call that carries its own error message, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from loong_env.routing import count_boxes

TOOL_NAME = "python"

PYTHON_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Run Python 3 code in a fresh, isolated interpreter (no network, no state kept between calls) "
            "and get back what it printed to stdout and stderr. Print every value you want to see."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
            "additionalProperties": False,
        },
    },
}
"""The `python` tool's OpenAI function schema: pass `tools=[PYTHON_TOOL]` to a chat request."""

# A block opened with ```python / ```py / ```python3 and closed by ``` on its own (or at a line end).
_OPEN = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\r?\n", re.IGNORECASE)
_CLOSE = re.compile(r"\r?\n?[ \t]*```")


class TurnKind(StrEnum):
    call = "call"
    answer = "answer"
    neither = "neither"


class ToolCall(BaseModel):
    """One call of the python tool as the policy asked for it; `error` says why it cannot run."""

    id: str = Field(description="The OpenAI tool_call id (generated for fenced blocks).")
    code: str = ""
    form: str = Field(description="'tool_calls' (OpenAI-style) or 'fenced' (a ```python block in text).")
    error: str | None = Field(default=None, description="Why this call is malformed; None when it can run.")


class Turn(BaseModel):
    """A policy turn, read: its kind, its calls in order, and its text."""

    kind: TurnKind
    calls: list[ToolCall] = Field(default_factory=list)
    content: str = ""


def fenced_blocks(text: str) -> list[tuple[str, bool]]:
    """Every ```python block in `text` as (code, closed); an unclosed block runs to the end of the text."""
    blocks = []
    pos = 0
    while (m := _OPEN.search(text, pos)) is not None:
        close = _CLOSE.search(text, m.end())
        if close is None:
            blocks.append((text[m.end() :], False))
            break
        blocks.append((text[m.end() : close.start()], True))
        pos = close.end()
    return blocks


def _openai_call(raw: Any, number: int) -> ToolCall:
    """One entry of an assistant message's `tool_calls`, read leniently and judged strictly."""
    fallback_id = f"call_{number}"
    if not isinstance(raw, Mapping):
        return ToolCall(
            id=fallback_id, form="tool_calls", error=f"a tool call must be an object, got {raw!r:.80}"
        )
    call_id = str(raw.get("id") or fallback_id)
    function = raw.get("function")
    if not isinstance(function, Mapping):
        return ToolCall(id=call_id, form="tool_calls", error="the tool call has no `function` object")
    name = function.get("name")
    if name != TOOL_NAME:
        return ToolCall(
            id=call_id,
            form="tool_calls",
            error=f'unknown tool {name!r:.60}; the only tool is `python` with arguments {{"code": "..."}}',
        )
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return ToolCall(
                id=call_id,
                form="tool_calls",
                error=f"the arguments are not valid JSON ({exc.msg} at char {exc.pos}); "
                'expected {"code": "<python code>"}',
            )
    if not isinstance(arguments, Mapping) or not isinstance(arguments.get("code"), str):
        return ToolCall(
            id=call_id,
            form="tool_calls",
            error=f'expected arguments {{"code": "<python code>"}}, got {json.dumps(arguments)[:120]}',
        )
    code = arguments["code"]
    if not code.strip():
        return ToolCall(id=call_id, form="tool_calls", code=code, error="the code is empty")
    return ToolCall(id=call_id, form="tool_calls", code=code)


def parse_turn(message: Mapping[str, Any], *, first_id: int = 1) -> Turn:
    """Read an assistant message: OpenAI `tool_calls` win; else each ```python block is a call; else a
    \\boxed{} answer ends the episode; else it is neither (the env nudges). Never raises."""
    content = message.get("content")
    text = content if isinstance(content, str) else _text_of(content)
    raw_calls = message.get("tool_calls")
    if raw_calls:
        calls = raw_calls if isinstance(raw_calls, list) else [raw_calls]
        return Turn(
            kind=TurnKind.call,
            calls=[_openai_call(raw, first_id + k) for k, raw in enumerate(calls)],
            content=text,
        )
    blocks = fenced_blocks(text)
    if blocks:
        calls = []
        for k, (code, closed) in enumerate(blocks):
            error = None
            if not closed:
                error = "the ```python block is not closed with ```; nothing was run"
            elif not code.strip():
                error = "the ```python block is empty"
            calls.append(ToolCall(id=f"call_{first_id + k}", code=code, form="fenced", error=error))
        return Turn(kind=TurnKind.call, calls=calls, content=text)
    if count_boxes(text) >= 1:
        return Turn(kind=TurnKind.answer, content=text)
    return Turn(kind=TurnKind.neither, content=text)


def _text_of(content: Any) -> str:
    """The text of a content that is a list of parts (OpenAI's multi-part form), or '' for None."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)
