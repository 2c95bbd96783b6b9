from keyfindings.numbers import extract_numbers, number_set, unsupported_numbers


def test_canonical_forms() -> None:
    assert extract_numbers("1,024 patients, 12.5 % and 0.50, .05, −3.0, 95% CI 1.2-3.4") == [
        "1024",
        "12.5",
        "0.5",
        "0.05",
        "-3",
        "95",
        "1.2",
        "3.4",
    ]


def test_citation_markers_and_identifiers_are_not_numbers() -> None:
    assert extract_numbers("as shown [S3] and [2, 5] in H1N1") == []


def test_word_numbers_count_as_stated() -> None:
    numbers = number_set("One thousand ninety-nine women aged fifty and older in three groups.")
    assert {"1099", "50", "3"} <= numbers


def test_unsupported_numbers() -> None:
    source = number_set("We enrolled 1,024 adults; mortality was 12.5% (p = 0.03).")
    assert unsupported_numbers("1024 adults, 12.5 % mortality, p=0.030", source) == []
    assert unsupported_numbers("1024 adults and 300 controls, 300 total", source) == ["300"]


def test_sign_matters_only_when_written() -> None:
    source = number_set("Change was -2.5 points.")
    assert unsupported_numbers("a change of −2.5", source) == []
    assert unsupported_numbers("a change of 2.5", source) == []
