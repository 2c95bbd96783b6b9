"""Results for people: Markdown with study type, sections and evidence sentence numbers."""

from __future__ import annotations

import re

from keyfindings.paper import Paper
from keyfindings.schema import SECTIONS, IssueCode, Result

_TITLES = {
    "methodology": "Methodology",
    "results": "Results",
    "significance": "Significance",
    "limitations": "Limitations",
}


_ACTIVE = re.compile(r"<(?=[A-Za-z/!?])|[\[\]]")


def _plain(text: str) -> str:
    """Text that a Markdown renderer shows as text: no tags, no links (findings quoted in
    issue messages may hold the markup that got them flagged). "p < 0.05" stays readable."""
    return _ACTIVE.sub(lambda m: "&lt;" if m.group(0) == "<" else "\\" + m.group(0), text)


def to_markdown(result: Result, paper: Paper | None = None) -> str:
    """A readable summary; a flagged result says so first, with its issues."""
    title = paper.title if paper and paper.title else result.paper_id
    lines = [f"# {_plain(title)}", ""]
    if result.status == "flagged":
        lines += ["> **Flagged:** these findings did not pass every check; read with care.", ""]
    findings = result.findings
    if findings is not None:
        lines += [f"**Study type:** {findings.study_type.value.replace('_', ' ')}", ""]
        for name in SECTIONS:
            items = findings.section(name)
            if not items and name == "limitations":
                continue
            lines.append(f"## {_TITLES[name]}")
            if not items:
                lines.append("_Not reported in the abstract._")
            for item in items:
                cites = ", ".join(f"S{n}" for n in item.evidence) or "no supporting sentence"
                lines.append(f"- {_plain(item.text)} _[{cites}]_")
            lines.append("")
    errors = [i for i in result.issues if i.severity == "error" and i.code != IssueCode.WITHHELD]
    if errors:
        lines += ["## Issues", *[f"- {i.code}: {_plain(i.message)}" for i in errors], ""]
    if result.withheld:
        # Never the withheld text itself: readers see only findings that passed.
        lines += [f"_{result.withheld} finding(s) withheld: they failed the checks._", ""]
    usage = result.usage
    elapsed = f"{usage.attempts} request(s), {result.latency_ms / 1000:.1f} s"
    source = "cache" if result.cached else elapsed
    lines.append(
        f"_{result.prompt.ref} · {result.backend}:{result.model} · "
        f"{usage.prompt_tokens}+{usage.completion_tokens} tokens · {source}_"
    )
    return "\n".join(lines).rstrip() + "\n"
