"""Eval reports: a run directory with per-case JSONL, a Markdown table and a self-contained HTML
page (metrics matrix; each case's abstract beside every cell's findings, evidence highlighted on
hover, findings that differ between cells marked)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

from keyfindings.evals.runner import EvalRun, Outcome, outcome_record
from keyfindings.schema import SECTIONS, Finding, IssueCode

# Metrics shown in the matrix, with the direction that is better.
COLUMNS = [
    ("schema_valid_rate", "valid", "high"),
    ("ok_rate", "ok", "high"),
    ("flagged", "flagged", "low"),
    ("failed", "failed", "low"),
    ("grounded_rate", "grounded", "high"),
    ("citation_error_rate", "cite err", "low"),
    ("numeric_faithfulness", "num faithful", "high"),
    ("unsupported_numbers_per_paper", "unsupp num/paper", "low"),
    ("section_accuracy", "section acc", "high"),
    ("token_f1", "token F1", "high"),
    ("results_number_coverage", "result nums", "high"),
    ("role_accuracy_methodology", "role meth", "high"),
    ("role_accuracy_results", "role res", "high"),
    ("role_accuracy_significance", "role sig", "high"),
    ("study_type_agreement", "type agree", "high"),
    ("withheld", "withheld", "low"),
    ("unfaithful_per_paper", "unfaithful/paper", "low"),
    ("words_per_paper", "words", "none"),
    ("expectation_failures", "expect fails", "low"),
    ("latency_p50_ms", "p50 ms", "low"),
    ("latency_p95_ms", "p95 ms", "low"),
    ("prompt_tokens", "prompt tok", "low"),
    ("completion_tokens", "compl tok", "low"),
    ("cost_usd", "cost $", "low"),
]


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    return str(value)


def markdown(run: EvalRun) -> str:
    """The metrics matrix as a Markdown table, plus gate results."""
    header = "| cell | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [
        f"# Eval `{run.suite.name}` — {len(run.cases)} cases",
        "",
        header,
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for cell in run.cells:
        metrics = cell.metrics()
        lines.append(
            f"| {cell.label} | " + " | ".join(_fmt(metrics[k]) for k, _, _ in COLUMNS) + " |"
        )
    failures = run.gate_failures()
    lines += ["", "## Gates", ""]
    if not run.suite.gates:
        lines.append("No gates.")
    lines += [f"- FAIL {f}" for f in failures]
    if run.suite.gates and not failures:
        lines.append("All gates pass: " + ", ".join(f"{k} {v}" for k, v in run.suite.gates.items()))
    return "\n".join(lines) + "\n"


_STYLE = """
body{font:14px/1.5 system-ui,sans-serif;color:#1f2933;margin:24px;max-width:1500px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #d9dee3;padding:4px 8px;
text-align:right}th{background:#f0f3f6}td:first-child,th:first-child{text-align:left}
.best{background:#e3f6e8;font-weight:600}.case{border-top:2px solid #ccd3da;margin-top:26px}
.grid{display:grid;gap:14px}.abstract{background:#fafbfc;padding:8px 12px;border-radius:6px}
.s{border-radius:3px}.s.hl{background:#fff0a8}.s sup{color:#7b8794;font-size:.7em}
.cell{border:1px solid #e4e7eb;border-radius:6px;padding:8px 12px}.cell h4{margin:0 0 4px}
li{cursor:pointer}li.diff{border-left:3px solid #e8a33d;padding-left:4px}
li.withheld{color:#7b8794;text-decoration:line-through}
.flag{color:#b54708}.fail{color:#b42318}.ev{color:#0b6bcb;font-size:.85em}
"""
_SCRIPT = """
document.querySelectorAll('li[data-ev]').forEach(li=>{const box=li.closest('.case');
const set=on=>{const ev=li.dataset.ev.split(',');box.querySelectorAll('.s').forEach(
s=>s.classList.toggle('hl',on&&ev.includes(s.dataset.n)))};
li.addEventListener('mouseenter',()=>set(true));li.addEventListener('mouseleave',()=>set(false))});
"""


def _matrix_html(run: EvalRun) -> str:
    metrics = [cell.metrics() for cell in run.cells]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    rows = []
    for cell, values in zip(run.cells, metrics, strict=True):
        tds = []
        for key, _, better in COLUMNS:
            column = [v for m in metrics if isinstance(v := m[key], (int, float))]
            value = values[key]
            best = (
                better != "none"
                and isinstance(value, (int, float))
                and len(column) > 1
                and value == (max(column) if better == "high" else min(column))
            )
            tds.append(f"<td{' class=best' if best else ''}>{_fmt(value)}</td>")
        rows.append(f"<tr><td>{html.escape(cell.label)}</td>{''.join(tds)}</tr>")
    return f"<table><tr><th>cell</th>{head}</tr>{''.join(rows)}</table>"


def _finding_html(finding: Finding, unique: bool) -> str:
    cites = ", ".join(f"S{n}" for n in finding.evidence)
    return (
        f'<li data-ev="{",".join(map(str, finding.evidence))}"'
        f"{' class=diff' if unique else ''}>{html.escape(finding.text)} "
        f'<span class="ev">[{cites}]</span></li>'
    )


def _cell_html(label: str, outcome: Outcome, others: set[str]) -> str:
    body = [f"<h4>{html.escape(label)}</h4>"]
    result = outcome.result
    if result is None:
        body.append(f'<p class="fail">{html.escape(outcome.error or "failed")}</p>')
    elif result.findings is None:
        body.append('<p class="fail">no valid answer</p>')
    else:
        if result.status == "flagged":
            codes = "; ".join(i.code for i in result.issues)
            body.append(f'<p class="flag">flagged: {html.escape(codes)}</p>')
        body.append(f"<p>{html.escape(result.findings.study_type.value)}</p>")
        for name in SECTIONS:
            items = "".join(
                _finding_html(f, f.text.strip().lower() not in others)
                for f in result.findings.section(name)
            )
            withheld = "".join(
                f'<li class="withheld" title="{html.escape(i.message)}">'
                f"{html.escape(i.text or '')} <span class=flag>(withheld)</span></li>"
                for i in result.issues
                if i.code == IssueCode.WITHHELD and i.section == name
            )
            body.append(f"<b>{name}</b><ul>{items + withheld or '<li>–</li>'}</ul>")
    for failure in outcome.score.expectation_failures:
        body.append(f'<p class="fail">expectation: {html.escape(failure)}</p>')
    return f'<div class="cell">{"".join(body)}</div>'


def _texts(outcome: Outcome) -> set[str]:
    findings = outcome.result.findings if outcome.result else None
    if findings is None:
        return set()
    return {f.text.strip().lower() for name in SECTIONS for f in findings.section(name)}


def _case_html(run: EvalRun, index: int) -> str:
    case = run.cases[index]
    sentences = "".join(
        f'<span class="s" data-n="{s.number}"><sup>S{s.number}</sup>{html.escape(s.text)}</span> '
        for s in case.paper.sentences
    )
    outcomes = [cell.outcomes[index] for cell in run.cells]
    texts = [_texts(o) for o in outcomes]
    columns = [
        _cell_html(cell.label, outcome, set().union(*(t for i, t in enumerate(texts) if i != k)))
        for k, (cell, outcome) in enumerate(zip(run.cells, outcomes, strict=True))
    ]
    grid = f'style="grid-template-columns:repeat({len(columns)},1fr)"'
    title = html.escape(case.paper.title or case.paper.id)
    return (
        f'<div class="case"><h3>{index + 1}. {title} <small>({html.escape(case.source)})'
        f'</small></h3><div class="abstract">{sentences}</div>'
        f'<div class="grid" {grid}>{"".join(columns)}</div></div>'
    )


def html_report(run: EvalRun) -> str:
    """A single self-contained HTML file."""
    gates = run.gate_failures()
    gate_html = "".join(f'<p class="fail">FAIL {html.escape(g)}</p>' for g in gates) or (
        "<p>All gates pass.</p>" if run.suite.gates else "<p>No gates.</p>"
    )
    cases = "".join(_case_html(run, i) for i in range(len(run.cases)))
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>Eval "
        f"{html.escape(run.suite.name)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Eval {html.escape(run.suite.name)}</h1><p>{len(run.cases)} cases × "
        f"{len(run.cells)} cells. Hover a finding to highlight its evidence; an orange bar "
        f"marks a finding no other cell produced.</p>{_matrix_html(run)}{gate_html}"
        f"<h2>Cases</h2>{cases}<script>{_SCRIPT}</script></body></html>"
    )


def write_run(run: EvalRun, out_dir: Path) -> Path:
    """``out_dir/<timestamp>-<suite>/`` with cases.jsonl, summary.md, report.html, metrics.json."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out_dir / f"{stamp}-{run.suite.name}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "cases.jsonl").open("w", encoding="utf-8") as handle:
        for cell in run.cells:
            for outcome in cell.outcomes:
                handle.write(json.dumps(outcome_record(cell, outcome), ensure_ascii=False) + "\n")
    (folder / "summary.md").write_text(markdown(run), encoding="utf-8")
    (folder / "report.html").write_text(html_report(run), encoding="utf-8")
    metrics = {cell.label: cell.metrics() for cell in run.cells}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return folder
