"""Word classes that carry a claim's meaning: direction, negation, hedges and certainty.

Each class is a regular expression over one lower-cased word, written from the English of
biomedical abstracts (verbs in every tense, comparatives, nouns), not from any test set. A word
may sit in one class only; ``classify`` says which.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Axis(StrEnum):
    """Which scale a direction word moves along: amount, good/bad, or sign of a relation."""

    AMOUNT = "amount"
    VALENCE = "valence"
    SIGN = "sign"


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{pattern})\Z")


# (axis, +1 / -1) → the words that move along it.
DIRECTION: dict[tuple[Axis, int], re.Pattern[str]] = {
    (Axis.AMOUNT, +1): _words(
        r"increas\w*|ris(?:e|es|en|ing)|rose|higher|highest|high|greater|greatest|larger|largest"
        r"|more|most|elevat\w*|rais(?:e|ed|es|ing)|gain\w*|gr[eo]w\w*|growth|boost\w*|exceed\w*"
        r"|augment\w*|accelerat\w*|upregulat\w*|upward\w*|longer|longest|prolong\w*"
        r"|doubl\w*|tripl\w*|expan\w*|extend\w*|heavier|peak\w*|surg\w*|climb\w*|jump\w*"
        r"|spik\w*|escalat\w*|amplif\w*|stronger|strongest|faster|fastest|maximi\w*"
        r"|excess\w*|overexpress\w*|intensif\w*|raised|heighten\w*|wider|widen\w*"
    ),
    (Axis.AMOUNT, -1): _words(
        r"decreas\w*|declin\w*|fall(?:s|en|ing)?|fell|drop\w*|lower\w*|lowest|low|less|least"
        r"|fewer|fewest|smaller|smallest|reduc\w*|diminish\w*|attenuat\w*|shorter|shortest"
        r"|shorten\w*|suppress\w*|downregulat\w*|downward\w*|loss|losses|lost|los(?:e|es|ing)"
        r"|shr[iau]nk\w*|halv\w*|slow\w*|weaker|weakest|minimi\w*|inhibit\w*|depressed"
        r"|deplet\w*|lessen\w*|cut|cuts|narrow\w*|contract\w*|dampen\w*|blunt\w*|abolish\w*"
        r"|eliminat\w*|lighter|sink\w*|sank|plummet\w*|dip\w*|deficien\w*|prevent\w*|avert\w*"
    ),
    (Axis.VALENCE, +1): _words(
        r"improv\w*|better|best|benefi\w*|superior\w*|favou?rabl\w*|advantage\w*|protect\w*"
        r"|effective|efficacious|success\w*|recover\w*|ameliorat\w*|alleviat\w*|reliev\w*"
        r"|relief|enhanc\w*|help\w*|gains?|positive outcome|resolv\w*|heal\w*|safer|safest"
    ),
    (Axis.VALENCE, -1): _words(
        r"worsen\w*|worse|worst|harm\w*|inferior\w*|unfavou?rabl\w*|disadvantage\w*|detriment\w*"
        r"|deteriorat\w*|impair\w*|aggravat\w*|exacerbat\w*|damag\w*|adverse\w*|hurt\w*"
        r"|toxic\w*|dangerous|riskier|poorer|poorest|poor|weaken\w*|compromis\w*|hinder\w*"
    ),
    (Axis.SIGN, +1): _words(r"positive|positively|direct|directly|proportional"),
    (Axis.SIGN, -1): _words(r"negative|negatively|inverse|inversely|opposite"),
}

# A word that denies what follows it. "non"/"un"/"in" prefixes are split off by the tokenizer for
# the words in ``NEGATED_STEMS``; "not only" and "whether or not" are not negations.
NEGATION = _words(
    r"not|no|never|none|neither|nor|without|cannot|nothing|nobody|nowhere|non|lack\w*|absen\w*"
    r"|fail\w*|unable|inability|unchanged|unaffected|unrelated|unaltered|insignificant\w*"
    r"|nonsignificant\w*|ineffective\w*|unsuccessful\w*|neglig\w*|refut\w*"
)
NOT_NEGATION_AFTER = {"not": {"only", "just", "merely", "least"}, "no": {"longer"}}
# Words after which "not" does not negate ("whether or not", "or not").
NOT_NEGATION_BEFORE = {"whether", "or"}

HEDGE = _words(
    r"may|might|could|can|possibl\w*|perhaps|likely|unlikely|probabl\w*|presumabl\w*"
    r"|suggest\w*|indicat\w*|appear\w*|seem\w*|potential\w*|putative\w*|plausibl\w*|apparent\w*"
    r"|associat\w*|link\w*|relat(?:ed|ion|ionship|ionships)|correlat\w*|preliminar\w*"
    r"|tentativ\w*|hypothes\w*|speculat\w*|conceivabl\w*|would|should|imply|implies|implied"
    r"|hint\w*|trend\w*|tend(?:s|ed|ency|encies)?|support\w*|contribut\w*"
)
# Certainty and causation that a hedged sentence must not acquire.
CERTAINTY = _words(
    r"caus\w*|prov(?:e|es|ed|en|ing)|proof|demonstrat\w*|definite(?:ly)?|definitive(?:ly)?|certain(?:ly|ty)|clear(?:ly)?"
    r"|undoubted\w*|unequivocal\w*|conclusiv\w*|confirm\w*|establish\w*|will|always|must"
    r"|determines|guarantee\w*|ensur\w*|responsible|driv(?:e|es|en|ing)|drove|invariabl\w*"
    r"|undeniabl\w*|indisputabl\w*|irrefutabl\w*|obvious\w*|evident(?:ly)?|leads?|led|results?|resulting"
    r"|produc(?:e|es|ed|ing)|induc\w*|triggers?|triggered|every|unquestionabl\w*|absolute\w*"
    r"|necessarily|shows?|showed|shown"
)
# Only as the first word of "X leads to", "results in": otherwise "results" is a noun.
CAUSAL_PARTICLE = {
    "leads": "to",
    "lead": "to",
    "led": "to",
    "results": "in",
    "result": "in",
    "resulted": "in",
    "resulting": "in",
}

# Words that join two compared things: an exchange of the things around them changes the claim.
COMPARATIVE = _words(
    r"than|vs|versus|compared|comparing|comparison|relative|against|unlike|over|superior"
    r"|inferior|between|contrast|rather"
)
# Phrases that open a sentence without restricting who the claim is about.
GENERIC_SCOPE = _words(
    r"this|these|our|the|present|current|study|studies|trial|analysis|analyses|conclusion"
    r"|summary|addition|contrast|general|particular|total|overall|sum|short|brief|fact|turn"
    r"|practice|aggregate|comparison|cohort|sample|population|series|setting|context|view|light"
    r"|case|cases|whole|both|all|each|either|terms|other|words|multivariate|multivariable"
    r"|univariate|adjusted|unadjusted|analysis|model|models|regression|logistic|conclusions"
    r"|groups?|arms?|patients?|subjects?|participants?|individuals?|people|persons?|cohorts?"
    r"|linear|cox|poisson|sensitivity|crude|bivariate|bivariable|secondary|exploratory|pooled"
    r"|primary|stratified|matched|propensity|hazards?|proportional|mixed|generalized|effects"
)


def directions(word: str) -> frozenset[tuple[Axis, int]]:
    """The axes and signs a word moves a measure along ("gain": more, and better)."""
    return frozenset(key for key, pattern in DIRECTION.items() if pattern.match(word))
