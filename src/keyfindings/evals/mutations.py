"""A mutation suite for the faithfulness checks: true findings, changed one way each.

The authors' own results and conclusions sentences are perfectly grounded findings. Each is
changed, reproducibly (seeded), in one way a model gets wrong — numbers swapped, direction
flipped, a negation added or dropped, a hedge made certain, two groups traded, a number taken from
another sentence, a subgroup's result stated for everyone — or in one way that keeps its meaning
(a lead phrase or a parenthesis dropped, a synonym of the same direction, a hedge in other words).
The checks must flag the first kind and pass the second. The word lists here are the generator's
own, written apart from the checker's lexicon, so a pass is not a list matching itself.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from keyfindings.checks import UNVERIFIED, check_findings, errors_only
from keyfindings.checks.grounding import MAX_FINDING_WORDS
from keyfindings.paper import Paper
from keyfindings.schema import Finding, Issue, KeyFindings, StudyType
from keyfindings.sentences import split_sentences

FAITHFUL = "faithful"
PARAPHRASE = "paraphrase"
Mutator = Callable[[str, random.Random, "Source"], str | None]


@dataclass(frozen=True)
class Source:
    """The abstract a sentence comes from (for numbers taken from another sentence)."""

    sentences: list[str]


def _case(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def _replace_one(text: str, pairs: dict[str, str], rng: random.Random) -> str | None:
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, pairs)) + r")\b", re.I)
    hits = list(pattern.finditer(text))
    if not hits:
        return None
    hit = rng.choice(hits)
    new = _case(pairs[hit.group(0).lower()], hit.group(0))
    return text[: hit.start()] + new + text[hit.end() :]


def _two_way(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for a, b in pairs:
        out.setdefault(a, b)
        out.setdefault(b, a)
    return out


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_ANTONYMS = _two_way(
    [
        ("increased", "decreased"),
        ("increase", "decrease"),
        ("increases", "decreases"),
        ("increasing", "decreasing"),
        ("higher", "lower"),
        ("more", "less"),
        ("greater", "smaller"),
        ("rose", "fell"),
        ("improved", "worsened"),
        ("improvement", "deterioration"),
        ("reduced", "raised"),
        ("reduction", "rise"),
        ("better", "worse"),
        ("superior", "inferior"),
        ("benefit", "harm"),
        ("gain", "loss"),
        ("positive", "negative"),
        ("positively", "negatively"),
        ("fewer", "more"),
        ("longer", "shorter"),
        ("elevated", "depressed"),
        ("declined", "rose"),
        ("enhanced", "impaired"),
        ("highest", "lowest"),
        ("larger", "smaller"),
        ("high", "low"),
        ("reduces", "increases"),
        ("lowered", "raised"),
        ("decline", "rise"),
        ("improves", "worsens"),
        ("beneficial", "harmful"),
        ("faster", "slower"),
    ]
)
_SYNONYMS = {
    "increased": "rose",
    "decreased": "declined",
    "reduced": "decreased",
    "higher": "greater",
    "greater": "higher",
    "lower": "reduced",
    "improved": "got better",
    "increase": "rise",
    "decrease": "decline",
    "reduction": "decrease",
    "declined": "decreased",
    "rose": "increased",
    "larger": "greater",
    "fewer": "less",
    "elevated": "increased",
    "improvement": "gain",
}
_HEDGE_SYNONYMS = {
    "may": "might",
    "might": "may",
    "could": "might",
    "suggest": "indicate",
    "suggests": "indicates",
    "suggested": "indicated",
    "associated with": "linked to",
    "likely": "probably",
    "possible": "potential",
    "appears": "seems",
    "appear": "seem",
    "potential": "possible",
    "correlated with": "associated with",
    "can": "may",
}
_CERTAINTY = {
    "may": "will",
    "might": "will",
    "could": "will",
    "suggest": "prove",
    "suggests": "proves",
    "suggested": "proved",
    "is associated with": "causes",
    "was associated with": "caused",
    "were associated with": "caused",
    "are associated with": "cause",
    "indicate": "demonstrate",
    "indicates": "demonstrates",
    "appears to": "is proven to",
    "likely": "certainly",
    "possible": "definite",
    "potential": "established",
    "possibly": "definitely",
    "seems to": "is shown to",
    "may be": "is",
    "can": "will",
}
_LEADS = re.compile(
    r"^(We found that|We observed that|Our results show that|Our data show that|Overall,"
    r"|In addition,|Furthermore,|Moreover,|Interestingly,|Importantly,|Notably,"
    r"|In this study,|Additionally,)\s+",
)
_ARM_PAIRS = [
    ("men", "women"),
    ("males", "females"),
    ("boys", "girls"),
    ("cases", "controls"),
    ("children", "adults"),
    ("smokers", "nonsmokers"),
    ("intervention", "control"),
    ("treatment", "placebo"),
    ("experimental", "control"),
    ("patients", "controls"),
]
_NOT_A_GROUP = {
    *("in", "to", "for", "of", "a", "an", "with", "and", "or", "among", "on", "at", "by"),
    "both",
    "between",
    "two",
    "three",
    "all",
    "each",
    "the",
    "these",
    "within",
    "study",
    "same",
    "other",
    "either",
    "per",
    "treatment",
    "control",
}
_GROUP_NOUN = re.compile(r"\b([A-Za-z][\w-]*) (group|arm|cohort)s?\b")
_SUBGROUP = re.compile(
    r"^(?:In|Among|For) (?!this\b|the present\b|our\b|conclusion\b|summary\b|addition\b"
    r"|contrast\b|total\b|general\b|particular\b|the study\b|the current\b|view\b|light\b"
    r"|comparison\b|the population\b|the sample\b|practice\b|fact\b|turn\b|these\b|all\b"
    r"|each\b|multivariate\b|multivariable\b|univariate\b)"
    # An analysis or a kind of study is a setting, not a subgroup ("In bivariate analysis,").
    r"(?![^,]*\b(?:analys[ie]s|studies|as a whole)\b)[^,]{3,60},\s+"
)
_NEGATION_REMOVE = [
    (r"\bdid not\b", "did"),
    (r"\bwas not\b", "was"),
    (r"\bwere not\b", "were"),
    (r"\bis not\b", "is"),
    (r"\bare not\b", "are"),
    (r"\bno significant\b", "a significant"),
    (r"\bnot significantly\b", "significantly"),
    (r"\bnot\b (?!only)", ""),
    (r"\bwithout\b", "with"),
    (r"\bnon-?significant\b", "significant"),
    (r"\bfailed to\b", "managed to"),
]
_NEGATION_ADD = [
    (r"\bwas\b(?! not)", "was not"),
    (r"\bwere\b(?! not)", "were not"),
    (r"\bis\b(?! not)", "is not"),
    (r"\bare\b(?! not)", "are not"),
    (r"\bsignificantly\b", "not significantly"),
    (r"\bsignificant\b", "non-significant"),
    (r"\bhad\b", "did not have"),
    (r"\bshowed\b", "did not show"),
    (r"\bcan\b", "cannot"),
]


def swap_numbers(text: str, rng: random.Random, source: Source) -> str | None:
    """Two different numbers trade places ("8 vs 72%" → "72 vs 8%")."""
    hits = list(_NUMBER.finditer(text))
    pairs = [(a, b) for a, b in itertools.pairwise(hits) if a.group() != b.group()]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    return text[: a.start()] + b.group() + text[a.end() : b.start()] + a.group() + text[b.end() :]


def flip_direction(text: str, rng: random.Random, source: Source) -> str | None:
    """One direction word turned round (increased → decreased, higher → lower)."""
    return _replace_one(text, _ANTONYMS, rng)


def toggle_negation(text: str, rng: random.Random, source: Source) -> str | None:
    """A negation removed if the sentence has one, else one added."""
    for rules in (_NEGATION_REMOVE, _NEGATION_ADD):
        usable = [(p, r) for p, r in rules if re.search(p, text)]
        if usable:
            pattern, repl = rng.choice(usable)
            return re.sub(pattern, repl, text, count=1)
    return None


def harden(text: str, rng: random.Random, source: Source) -> str | None:
    """A hedge made certain ("may" → "will", "is associated with" → "causes")."""
    return _replace_one(text, _CERTAINTY, rng)


def swap_arms(text: str, rng: random.Random, source: Source) -> str | None:
    """Two compared groups trade names ("more patients than controls" → the other way)."""
    options: list[tuple[str, str]] = []
    named = [
        n
        for n in dict.fromkeys(m.group(1) for m in _GROUP_NOUN.finditer(text))
        if n.lower() not in _NOT_A_GROUP
    ]
    options += [(a, b) for a, b in itertools.pairwise(named)]
    for a, b in _ARM_PAIRS:
        if re.search(rf"\b{a}\b", text, re.I) and re.search(rf"\b{b}\b", text, re.I):
            options.append((a, b))
    options = [(a, b) for a, b in options if _compared(text, a, b)]
    if not options:
        return None
    a, b = rng.choice(options)
    swapped = re.sub(
        rf"\b({re.escape(a)}|{re.escape(b)})\b",
        lambda m: _case(b if m.group(0).lower() == a.lower() else a, m.group(0)),
        text,
        flags=re.I,
    )
    return swapped if swapped != text else None


def _compared(text: str, a: str, b: str) -> bool:
    """Is something said of each group between them (a number, "than", "vs")? Otherwise
    exchanging them only reorders a list."""
    first = re.search(rf"\b({re.escape(a)}|{re.escape(b)})\b", text, re.I)
    if first is None:
        return False
    other = b if first.group(0).lower() == a.lower() else a
    second = re.search(rf"\b{re.escape(other)}\b", text[first.end() :], re.I)
    if second is None:
        return False
    between = text[first.end() : first.end() + second.start()]
    return bool(re.search(r"\d|\b(than|vs|versus|compared|whereas|while)\b", between, re.I))


def foreign_number(text: str, rng: random.Random, source: Source) -> str | None:
    """A number replaced by one from another sentence of the same abstract."""
    hits = list(_NUMBER.finditer(text))
    own = {h.group() for h in hits}
    others = sorted({n for s in source.sentences for n in _NUMBER.findall(s)} - own)
    if not hits or not others:
        return None
    hit = rng.choice(hits)
    similar = [n for n in others if ("." in n) == ("." in hit.group())] or others
    replacement: str = rng.choice(similar)
    return text[: hit.start()] + replacement + text[hit.end() :]


def drop_subgroup(text: str, rng: random.Random, source: Source) -> str | None:
    """A subgroup's result stated for everyone ("In women, X fell" → "X fell")."""
    match = _SUBGROUP.match(text)
    if not match or len(text) - match.end() < 20:
        return None
    rest = text[match.end() :]
    return rest[0].upper() + rest[1:]


def drop_lead(text: str, rng: random.Random, source: Source) -> str | None:
    """Paraphrase: "We found that" / "Overall," removed."""
    match = _LEADS.match(text)
    if not match:
        return None
    rest = text[match.end() :]
    return rest[0].upper() + rest[1:]


def drop_parenthesis(text: str, rng: random.Random, source: Source) -> str | None:
    """Paraphrase: one parenthesis removed."""
    hits = list(re.finditer(r"\s*\([^()]*\)", text))
    if not hits:
        return None
    hit = rng.choice(hits)
    return text[: hit.start()] + text[hit.end() :]


def same_direction(text: str, rng: random.Random, source: Source) -> str | None:
    """Paraphrase: a direction word replaced by a synonym of the same direction."""
    return _replace_one(text, _SYNONYMS, rng)


def same_hedge(text: str, rng: random.Random, source: Source) -> str | None:
    """Paraphrase: a hedge said in other words."""
    return _replace_one(text, _HEDGE_SYNONYMS, rng)


MUTATIONS: dict[str, Mutator] = {
    "number_swap": swap_numbers,
    "direction_flip": flip_direction,
    "negation": toggle_negation,
    "hedge_to_certainty": harden,
    "arm_swap": swap_arms,
    "foreign_number": foreign_number,
    "subgroup_as_main": drop_subgroup,
}
PARAPHRASES: dict[str, Mutator] = {
    "drop_lead": drop_lead,
    "drop_parenthesis": drop_parenthesis,
    "same_direction": same_direction,
    "same_hedge": same_hedge,
}


@dataclass(frozen=True)
class Variant:
    """One finding to check: where it came from, how it was changed, and the text."""

    paper: Paper
    section: str
    original: str
    kind: str
    family: str  # "faithful", "paraphrase" or "mutation"
    text: str


def variants(paper: Paper, sections: dict[str, str], seed: int) -> Iterator[Variant]:
    """Every faithful sentence of ``sections`` and each of its changes, reproducibly."""
    source = Source([s.text for s in paper.sentences])
    for field_name, section in (("results", "results"), ("conclusions", "significance")):
        for sentence in split_sentences(sections.get(field_name) or ""):
            text = sentence.text
            if not 5 <= len(text.split()) <= MAX_FINDING_WORDS:
                continue
            digest = hashlib.sha256(f"{seed}:{paper.id}:{text}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            yield Variant(paper, section, text, FAITHFUL, FAITHFUL, text)
            for family, table in (("paraphrase", PARAPHRASES), ("mutation", MUTATIONS)):
                for kind, mutate in table.items():
                    changed = mutate(text, rng, source)
                    if changed and changed.strip() != text.strip():
                        yield Variant(paper, section, text, kind, family, changed)


def flagged(variant: Variant) -> list[Issue]:
    """The errors the checks raise about this one finding."""
    empty: dict[str, list[Finding]] = {s: [] for s in ("methodology", "results", "significance")}
    empty[variant.section] = [Finding(text=variant.text)]
    findings = KeyFindings(study_type=StudyType.OTHER, limitations=[], **empty)
    issues = errors_only(check_findings(variant.paper, findings))
    # Meaning and support of the finding itself, wherever it now sits (placement may move it;
    # whether it sits in the right field is measured by the eval, not here).
    return [i for i in issues if i.index is not None and i.code in UNVERIFIED]


@dataclass
class Tally:
    """Tried and flagged per kind, with a few examples of each outcome to read."""

    tried: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    family: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[tuple[Variant, list[Issue]]]] = field(default_factory=dict)

    def add(self, variant: Variant, issues: list[Issue], keep: int = 5) -> None:
        """Count one checked variant (and keep it as an example of a surprise)."""
        kind = variant.kind
        self.family[kind] = variant.family
        self.tried[kind] = self.tried.get(kind, 0) + 1
        self.hits[kind] = self.hits.get(kind, 0) + bool(issues)
        surprise = bool(issues) != (variant.family == "mutation")
        if surprise and len(self.examples.setdefault(kind, [])) < keep:
            self.examples[kind].append((variant, issues))

    def rate(self, kind: str) -> float:
        """Share of this kind that was flagged."""
        return self.hits.get(kind, 0) / self.tried[kind] if self.tried.get(kind) else 0.0

    def family_rate(self, family: str) -> float:
        """Share flagged over every kind of one family."""
        kinds = [k for k, f in self.family.items() if f == family]
        tried = sum(self.tried[k] for k in kinds)
        return sum(self.hits.get(k, 0) for k in kinds) / tried if tried else 0.0


def run(rows: Iterable[tuple[Paper, dict[str, str]]], seed: int = 0) -> Tally:
    """Check every variant of every row."""
    tally = Tally()
    for paper, sections in rows:
        for variant in variants(paper, sections, seed):
            tally.add(variant, flagged(variant))
    return tally


def table(tally: Tally) -> str:
    """A Markdown table: kind, family, tried, flagged, rate."""
    lines = ["| kind | family | tried | flagged | rate |", "|---|---|---|---|---|"]
    order = sorted(
        tally.tried, key=lambda k: ({"faithful": 0, "paraphrase": 1}.get(tally.family[k], 2), k)
    )
    for kind in order:
        lines.append(
            f"| {kind} | {tally.family[kind]} | {tally.tried[kind]} | "
            f"{tally.hits.get(kind, 0)} | {tally.rate(kind):.3f} |"
        )
    return "\n".join(lines)
