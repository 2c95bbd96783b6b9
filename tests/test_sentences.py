from keyfindings.sentences import split_sentences


def texts(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def test_does_not_break_statistics_abbreviations_or_decimals() -> None:
    text = (
        "Smith et al. reported a fall (p < 0.05; 95% CI 1.2-3.4) in Fig. 2. Rates were 12.5% "
        "vs. 8.1% overall. Next, S. aureus grew i.e. fast. The end."
    )
    assert texts(text) == [
        "Smith et al. reported a fall (p < 0.05; 95% CI 1.2-3.4) in Fig. 2.",
        "Rates were 12.5% vs. 8.1% overall.",
        "Next, S. aureus grew i.e. fast.",
        "The end.",
    ]
    # A dotted abbreviation before a number: "0.221 (st.dev. 0.019)" is one sentence.
    spread = "Values were 0.221 (st.dev. 0.019) and 0.215 (std.dev. 0.018). The end."
    assert texts(spread) == [spread.removesuffix(" The end."), "The end."]


def test_structured_labels_start_sentences_and_are_kept() -> None:
    sentences = split_sentences(
        "BACKGROUND: Little is known. METHODS: We enrolled 40 adults. RESULTS: Pain fell (95% CI: "
        "1.1-2.0). CONCLUSIONS: It helps."
    )
    assert [(s.number, s.label, s.text) for s in sentences] == [
        (1, "BACKGROUND", "Little is known."),
        (2, "METHODS", "We enrolled 40 adults."),
        (3, "RESULTS", "Pain fell (95% CI: 1.1-2.0)."),
        (4, "CONCLUSIONS", "It helps."),
    ]


def test_multiword_labels_and_unlabelled_text() -> None:
    sentences = split_sentences("Intro text here. MATERIALS AND METHODS: Mice were used.")
    assert [(s.label, s.text) for s in sentences] == [
        (None, "Intro text here."),
        ("MATERIALS AND METHODS", "Mice were used."),
    ]


def test_sentence_starting_with_number_or_quote() -> None:
    assert texts('It rose. 42 patients died. "Quoted" text ends!') == [
        "It rose.",
        "42 patients died.",
        '"Quoted" text ends!',
    ]
