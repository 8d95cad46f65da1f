"""Caption cleaning applied before MAGI-1's T5 encoder.

MAGI-1 (like DeepFloyd IF, whose T5 copy it uses) cleans every prompt with the same function that
cleaned its training captions, and applies it twice. The T5 features only look like the training
distribution when the prompt went through the same filter, so this module reproduces that filter's
behaviour with the standard library alone (the original relies on ftfy and BeautifulSoup).

What `clean_caption` does, in order:

1. percent-decoding (`%20`, and `+` as a space), trim, lower-case, `<person>` -> `person`;
2. URLs: `http(s):`/`www:` prefixes and bare host names ending in .com/.co/.ru/.net/.org/.edu/.gov/.it
   with their paths (an e-mail's user part is kept);
3. HTML: tags, comments and `<script>`/`<style>`/`<template>` contents dropped, entities decoded;
4. `@handles`; every character of U+31C0..U+9FFF (CJK strokes, enclosed CJK, CJK compatibility, CJK
   ideographs, Yijing symbols), so Chinese prompts become empty;
5. every dash-punctuation character (runs of them too) -> `-`; typographic double quotes, `` ` ``, `´`,
   `¨` and guillemets -> `"`; curly single quotes -> `'`; leftover `&quot` / `&amp`;
6. IP addresses, a trailing `d:dd` article id, literal `\\n`, `#123` / `#12345...` tags, numbers of six
   or more digits, file names with image/video/document extensions;
7. repeated quotes -> one `"`, runs of dots -> space, noise punctuation (`#®•©™&@·º½¾¿¡§~()[]{}|\\/*`)
   -> space, a lone ` . ` -> space; more than three `-`/`_` in total -> all become spaces;
8. text repair (see below), HTML entities decoded again (twice), trim;
9. product-code-like words (`jc6640`, `jc6640vc`, `6640vc231`, `j2d1a2a...`), shop spam (`free
   shipping`, `download`, `click for ...`, `page 12`), bare file extensions (also as a word prefix, as
   in the original: `epsilon` -> `ilon`), sizes such as `1920x1080`;
10. ` : ` -> `: `, a space after `,` `.` `/` glued to the next word, whitespace runs -> one space;
11. one pair of surrounding quotes removed, one leading `'_,-:;` and one trailing `'_,-:+` removed, a
    lone `.word` dropped, trim.

Quirks kept on purpose because training captions went through them: step 11 runs on the untrimmed
string (the original forgets to assign a `strip()`), so surrounding quotes are only removed when no
space follows them; and the file-extension filter of step 9 has no word boundary on its right.

Left out or approximated (documented differences from the original):

* ftfy's mojibake repair (`fix_encoding`: re-decoding `cafÃ©` as `café`, restoring 0xA0 bytes, lossy
  sequences) is not reproduced; its other fixes are: C1 controls read as Windows-1252, Latin
  ligatures split, full-/half-width forms and U+3000 made normal width, remaining curly quotes
  straightened, control characters and terminal escapes removed, NFC. Line-break and surrogate
  fixes are omitted: step 10 collapses all whitespace anyway.
* ftfy decodes upper-case entity names (`&EACUTE;`); `html.unescape` does not.
* The HTML step drives the standard `html.parser` the way BeautifulSoup's "html.parser" builder
  does (same entity table, same text nodes); it ignores only BeautifulSoup's tree repairs, which do
  not change the text.
* The dash set is Unicode's "Pd" category of the Basic Multilingual Plane, which adds U+2E5D (a dash
  newer than the original's hand-written list).
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata
from html.parser import HTMLParser
from typing import Callable
from urllib.parse import unquote_plus

__all__ = ["clean_caption"]

_TLDS = ("com", "co", "ru", "net", "org", "edu", "gov", "it")
_FILE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "webp", "eps", "pdf", "apk", "mp4")
_NOISE_PUNCTUATION = "#®•©™&@·º½¾¿¡§~()[]{}|\\/*"
_HTML_SKIPPED_TAGS = frozenset({"script", "style", "template"})
_HTML_PRESERVE_TAGS = frozenset({"pre", "textarea"})
_ASCII_SPACES = " \n\t\f\r"


def _regex_class(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]"


def _sub(pattern: str, replacement: str = "") -> Callable[[str], str]:
    compiled = re.compile(pattern)
    return lambda text: compiled.sub(replacement, text)


def _url_remover(scheme: str) -> Callable[[str], str]:
    # Either "<scheme>:" plus slashes (or one URL character), or a bare host name ending in one of a
    # few top-level domains, with its path; `(?!@)` keeps the user part of an e-mail address.
    host = rf"[a-z0-9.\-]+\.(?:{'|'.join(_TLDS)})[\w/-]*\b/?(?!@)"
    return _sub(rf"\b(?:{scheme}:(?:/{{1,3}}|[a-z0-9%])|{host})")


def _entity_table() -> dict[str, str]:
    # Entity names without their ";" (first spelling wins), as BeautifulSoup builds its table:
    # "&image" without a semicolon still decodes.
    table: dict[str, str] = {}
    for name, char in html.entities.html5.items():
        table.setdefault(name.rstrip(";"), char)
    return table


_ENTITIES = _entity_table()


class _VisibleText(HTMLParser):
    """Collects the text a browser would show: no tags, comments or script/style bodies.

    It mirrors BeautifulSoup's html.parser builder, whose `.text` the original used: references
    are resolved by hand (convert_charrefs=False), so the parser's own edge cases (an unknown
    `&name;` loses its `;`, a bare `&x` at the very end loses its `&`) match; and a text node made
    only of ASCII whitespace (an empty CDATA block too) becomes one space or one newline.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self._node: list[str] | None = None  # data of the current text node, None if none yet
        self._hidden_depth = 0
        self._preserve_depth = 0

    def _end_node(self) -> None:
        if self._node is None:
            return
        text = "".join(self._node)
        self._node = None
        if not self._preserve_depth and not text.strip(_ASCII_SPACES):
            text = "\n" if "\n" in text else " "
        if not self._hidden_depth:
            self.parts.append(text)

    def _count(self, tag: str, step: int) -> None:
        if tag in _HTML_SKIPPED_TAGS:
            self._hidden_depth = max(0, self._hidden_depth + step)
        elif tag in _HTML_PRESERVE_TAGS:
            self._preserve_depth = max(0, self._preserve_depth + step)

    def handle_starttag(self, tag, attrs):
        self._end_node()
        self._count(tag, +1)

    def handle_endtag(self, tag):
        self._end_node()
        self._count(tag, -1)

    def handle_data(self, data):
        if self._node is None:
            self._node = []
        self._node.append(data)

    def handle_comment(self, data):
        self._end_node()

    def handle_decl(self, decl):
        self._end_node()

    def handle_pi(self, data):
        self._end_node()

    def handle_entityref(self, name):
        self.handle_data(_ENTITIES.get(name, "&" + name))

    def handle_charref(self, name):
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        char = ""
        if code < 256:  # bytes as Windows-1252, as browsers (and BeautifulSoup) read them
            try:
                char = bytes([code]).decode("cp1252")
            except UnicodeDecodeError:
                pass
        if not char:
            try:
                char = chr(code)
            except (ValueError, OverflowError):
                char = "\ufffd"
        self.handle_data(char)

    def unknown_decl(self, data):
        self._end_node()
        # <![CDATA[...]]> is a text node of its own (the caption is lower-case by now).
        if data[:6].upper() == "CDATA[":
            self.handle_data(data[6:])
            self._end_node()

    def close(self):
        super().close()
        self._end_node()


def _strip_html(text: str) -> str:
    parser = _VisibleText()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def _dash_characters() -> str:
    return "".join(chr(c) for c in range(0x10000) if unicodedata.category(chr(c)) == "Pd")


_QUOTES = str.maketrans({**{c: '"' for c in "`´«»“”¨"}, **{c: "'" for c in "‘’"}})


def _too_many_separators(text: str) -> str:
    # this-is-a-slug / this_is_a_slug: separators only become spaces past three of them.
    if text.count("-") + text.count("_") > 3:
        return text.replace("-", " ").replace("_", " ")
    return text


# Text repair (the subset of ftfy's fixes that needs no mojibake heuristics) ----------------------
def _c1_as_windows_1252(char: str) -> str:
    try:
        return bytes([ord(char)]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D have no cp1252 meaning: keep them
        return char


def _build_forms_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for char in "ĲĳŉǱǲǳǄǅǆǇǈǉǊǋǌﬀﬁﬂﬃﬄﬆ":  # Latin ligatures and legacy digraphs
        table[ord(char)] = unicodedata.normalize("NFKC", char)
    table[ord("ﬅ")] = "ſt"  # NFKC would also turn the long s into "s"; ftfy keeps it
    table[0x3000] = " "
    for code in range(0xFF01, 0xFFF0):  # full-width ASCII, half-width katakana/hangul
        normal = unicodedata.normalize("NFKC", chr(code))
        if normal != chr(code):
            table[code] = normal
    table.update({ord(c): "'" for c in "\u02bc\u2018\u2019\u201a\u201b"})
    table.update({ord(c): '"' for c in "\u201c\u201d\u201e\u201f"})
    return table


_C1_TABLE = {code: _c1_as_windows_1252(chr(code)) for code in range(0x80, 0xA0)}
_FORMS_TABLE = _build_forms_table()
_CONTROL_TABLE = dict.fromkeys([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, *range(0x206A, 0x2070),
                                0xFEFF, *range(0xFFF9, 0xFFFD)])
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[\d;]*[a-zA-Z]")


def _repair_text(text: str) -> str:
    # ftfy leaves entities alone in text that looks like HTML (contains "<").
    unescape = "<" not in text
    # Like ftfy, repeat until nothing changes: one fix can expose another (a C1 byte becomes a curly
    # quote, "ŉ" becomes "ʼn", and both quotes are straightened on the next round).
    for _ in range(16):
        before = text
        if unescape:
            text = html.unescape(text)
        text = text.translate(_C1_TABLE).translate(_FORMS_TABLE)
        text = _TERMINAL_ESCAPE.sub("", text)  # before the control table drops the escape byte
        text = unicodedata.normalize("NFC", text.translate(_CONTROL_TABLE))
        if text == before:
            break
    # The original then unescapes twice more on its own.
    return html.unescape(html.unescape(text)).strip()


_DIMENSION_X = "xх×"  # Latin x, Cyrillic kha, multiplication sign
_EXTENSIONS = "|".join(_FILE_EXTENSIONS)

# The pipeline, in the original's order; each step is one rule of the module docstring.
_STEPS: tuple[Callable[[str], str], ...] = (
    lambda t: unquote_plus(t).strip().lower(),
    lambda t: t.replace("<person>", "person"),
    _url_remover("https?"),
    _url_remover("www"),
    _strip_html,
    _sub(r"@\w+"),
    _sub(r"[\u31c0-\u9fff]+"),
    _sub(_regex_class(_dash_characters()) + "+", "-"),
    lambda t: t.translate(_QUOTES),
    _sub(r"&quot;?"),
    _sub(r"&amp"),
    _sub(r"\d{1,3}(?:\.\d{1,3}){3}", " "),
    _sub(r"\d:\d\d\s+$"),
    lambda t: t.replace("\\n", " "),
    _sub(r"#(?:\d{1,3}|\d{5,})\b"),
    _sub(r"\b\d{6,}\b"),
    _sub(rf"\S+\.(?:{_EXTENSIONS})"),
    _sub(r"[\"']{2,}", '"'),
    _sub(r"\.{2,}", " "),
    _sub(_regex_class(_NOISE_PUNCTUATION) + "+", " "),
    _sub(r"\s+\.\s+", " "),
    _too_many_separators,
    _repair_text,
    _sub(r"\b[a-zA-Z]{1,3}\d{3,15}\b"),
    _sub(r"\b[a-zA-Z]+\d+[a-zA-Z]+\b"),
    _sub(r"\b\d+[a-zA-Z]+\d+\b"),
    _sub(r"(?:worldwide\s+)?(?:free\s+)?shipping"),
    _sub(r"(?:free\s)?download(?:\sfree)?"),
    _sub(r"\bclick\b\s(?:for|on)\s\w+"),
    _sub(rf"\b(?:{_EXTENSIONS})(?:\simages?)?"),
    _sub(r"\bpage\s+\d+\b"),
    _sub(r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b", " "),
    _sub(rf"\b\d+\.?\d*[{_DIMENSION_X}]\d+\.?\d*\b"),
    _sub(r"\b\s+:\s+", ": "),
    _sub(r"(\D[,./])\b", r"\1 "),
    _sub(r"\s+", " "),
    _sub(r"(?s)^[\"'](.+)[\"']$", r"\1"),
    _sub(r"^['_,\-:;]"),
    _sub(r"['_,\-:+]$"),
    _sub(r"^\.\S+$"),
    str.strip,
)


def clean_caption(text: str) -> str:
    """Clean one caption the way MAGI-1's T5 path does (call it twice, as MAGI-1 does)."""
    text = str(text)
    for step in _STEPS:
        text = step(text)
    return text
