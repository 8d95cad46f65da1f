"""clean_caption: MAGI-1's (DeepFloyd IF's) caption cleaning, rule by rule.

Expected outputs were checked against the official function (ftfy 6.2.0, beautifulsoup4 4.13.4).
"""

import pytest

from magi_engine.text.clean import clean_caption


def twice(text: str) -> str:
    return clean_caption(clean_caption(text))


@pytest.mark.parametrize("text, expected", [
    ("Watch https://www.youtube.com/watch now", "watch now"),
    ("see www.example.com/page here", "see here"),
    ("visit example.org/a-b", "visit"),
    # the host of an e-mail goes, the user part stays ((?!@) in the URL rule; @ is punctuation later)
    ("mail john@example.com today", "mail john today"),
])
def test_urls_are_removed(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("<b>Bold</b> &amp; <i>italic</i>", "bold italic"),
    ("&lt;3 love", "<3 love"),
    ("<script>alert(1)</script>a cat", "a cat"),
    ("<!-- hidden -->a dog", "a dog"),
    ("pre<br>post", "prepost"),
    ("Tom &amp;amp; Jerry", "tom ; jerry"),  # "&amp;" -> "&" -> noise punctuation, ";" stays
    ("&foo; bar", "foo bar"),  # an unknown entity loses its ";" in the HTML parser
])
def test_html_tags_and_entities(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("a cat 你好 sits", "a cat sits"),
    ("一只猫", ""),
    ("漢字", ""),
])
def test_cjk_is_removed(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("x — y – z", "x - y - z"),
    ("a ‐‐ b", "a - b"),  # a run of dashes becomes one
    ("“Hello” ‘world’ «x»", "hello\" 'world' \"x"),  # outer pair stripped, inner ones kept
    ("`tick´", "tick"),
    ("x\x93y\x94", 'x"y"'),  # C1 bytes read as Windows-1252 curly quotes, then straightened
])
def test_dashes_and_quotes_are_normalised(text, expected):
    assert clean_caption(text) == expected


def test_handles_are_removed():
    assert clean_caption("hi @user_1 there") == "hi there"


@pytest.mark.parametrize("text, expected", [
    ("  many   spaces\tand\nlines  ", "many spaces and lines"),
    ("A\u00a0B", "a b"),
    ("a : b", "a: b"),
    ("one,two.three", "one, two. three"),
    ("   ", ""),
    ("", ""),
])
def test_whitespace_and_punctuation_spacing(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("ip 192.168.0.1 here", "ip here"),
    ("foo\\nbar", "foo bar"),
    ("#1 winner #12345 tag 1234567 num", "winner tag num"),
    ("photo.jpg here", "here"),
    ("wait... now", "wait now"),
    ("***SALE*** (big) [deal] {x} a|b a/b", "sale big deal x a b a b"),
    ("this-is-my-cute-cat", "this is my cute cat"),
    ("a-b c_d", "a-b c_d"),  # three separators or fewer stay
    ("jc6640 and jc6640vc and 6640vc231", "and and"),
    ("free shipping worldwide", "worldwide"),
    ("download free now", "now"),
    ("click for details now", "now"),
    ("page 12 of", "of"),
    ("1920x1080 video", "video"),
    ("epsilon", "ilon"),  # the original's extension filter has no right word boundary
])
def test_other_filters(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text, expected", [
    ('"quoted caption"', "quoted caption"),
    ("'single'", "single"),
    ("-leading", "leading"),
    ("trailing+", "trailing"),
    (".hidden", ""),
])
def test_edges(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Hello%20World+again", "hello world again"),
    ("<person> walks", "person walks"),
    ("ﬁne ＡＢＣ\u3000ｄ", "fine abc d"),
    ("cafe\u0301", "café"),  # NFC
])
def test_decoding_and_text_repair(text, expected):
    assert clean_caption(text) == expected


@pytest.mark.parametrize("text", [
    "A red circle rolls to the left over green grass.",
    "The camera remains static, the cat is centered in the shot. hyper quality, Ultra HD, 8K.",
    "Watch https://www.youtube.com/watch now",
    "<b>Bold</b> &amp; <i>italic</i>",
    "x — y – z",
    "  many   spaces\tand\nlines  ",
])
def test_second_pass_changes_nothing_for_ordinary_prompts(text):
    once = clean_caption(text)
    assert twice(text) == once


def test_second_pass_can_matter():
    # Why MAGI-1 cleans twice: the first pass can leave something the second one removes.
    # the first pass strips the leading "-", which exposes the surrounding quotes to the second
    assert clean_caption('-"a cat"') == '"a cat"'
    assert twice('-"a cat"') == "a cat"
    assert twice(twice('-"a cat"')) == "a cat"


def test_accepts_non_strings():
    assert clean_caption(12) == "12"
