from keyfindings.text import normalize_text, strip_markup


def test_html_and_entities_are_stripped() -> None:
    raw = "<p>Mortality &amp; morbidity fell (<i>p</i>&nbsp;&lt;&nbsp;0.05).</p><p>Next</p>"
    assert normalize_text(raw) == "Mortality & morbidity fell (p < 0.05). Next"


def test_double_encoded_entities() -> None:
    assert normalize_text("p &amp;lt; 0.01") == "p < 0.01"


def test_superscripts_do_not_merge_into_numbers() -> None:
    assert normalize_text("10<sup>6</sup> cells") == "10^6 cells"


def test_mathml_keeps_its_text_without_spaces() -> None:
    raw = "value <math><mi>p</mi><mo>&lt;</mo><mn>0.05</mn></math> here"
    assert normalize_text(raw) == "value p<0.05 here"


def test_jats_tags_and_script_blocks() -> None:
    raw = (
        '<sec><title>Results</title><p>Rate <xref ref-type="bibr">[3]</xref> rose.</p></sec>'
        "<script>alert(1)</script>"
    )
    assert normalize_text(raw) == "Results Rate [3] rose."


def test_unicode_nfc_controls_and_whitespace() -> None:
    raw = "Cafe\u0301\x00 study\u200b \t\n with\u00a0 12\u2009%  and \u22123.5"
    assert normalize_text(raw) == "Café study with 12 % and -3.5"


def test_comparison_signs_are_not_tags() -> None:
    assert strip_markup("a <5 mm and b>3 mm") == "a <5 mm and b>3 mm"
