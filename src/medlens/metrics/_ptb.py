"""PTB tokenisation as pycocoevalcap runs it, in pure Python (no Java).

pycocoevalcap's ``PTBTokenizer`` writes every caption (newlines replaced by spaces) on one line of a file,
runs Stanford CoreNLP 3.4.1's ``edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase`` on it (lexer
options: the PTB3 defaults plus ``tokenizeNLs``), and from each output line drops the tokens of its punctuation
list (:data:`PUNCTUATION`), joining the rest with single spaces. :func:`ptb_tokenize` gives that string.

How the lexer behaves (and so how this module behaves)
------------------------------------------------------
The Stanford lexer is a JFlex scanner: at each position the longest match over all its rules wins (a rule's
trailing context ``r/t`` counts towards the length; ties go to the earlier rule), and each rule's action may
rewrite the text or push characters back. Literal words match case-insensitively, character classes do not.
The behaviours that matter for captions:

- words: letters and digits, with ``. ! ?`` allowed *between* letters (``bilaterally.there`` stays one
  token); hyphenated and slashed compounds stay whole (``left-sided``, ``and/or``, ``t12-l1``, ``19/33``);
- clitics split off: ``patient's`` → ``patient 's``, ``they're`` → ``they 're``, ``don't`` → ``do n't``;
  ``cannot`` → ``can not`` (also ``gonna`` → ``gon na`` and the like);
- numbers ``3.5``, ``1,000``, dates ``02/03/2014`` and fractions stay whole; a number or word ending in a full stop
  before ``, ; :`` keeps its stop (``2.,`` → ``2.``);
- known abbreviations keep their full stop (``dr.``, ``p.m.``, ``ct.``, ``fig.``); one that ends a sentence is
  followed by an extra ``.`` token (``CT. No`` → ``ct. . no``);
- brackets become ``-lrb- -rrb- -lsb- -rsb- -lcb- -rcb-``; ``"`` becomes `````` or ``''``; ``--`` dashes,
  ``...``; ``&amp; &lt; &gt;`` are decoded; a character the lexer does not know is deleted.

After lower-casing, pycocoevalcap removes ``'' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;`` — in
*upper* case for the brackets, so ``-lrb-``/``-rrb-`` (the lexer output is lower-cased first) are **kept**, and so
are ``-lsb-``/``-rsb-``, ``/``, ``%``, ``<``, ``>`` and tokens such as ``dr.`` that merely contain punctuation.
This module reproduces that, quirks included. Inputs: pycocoevalcap replaces ``\\n`` by a space; the lexer
treats the other line breaks (``\\r``, U+2028, ...) as new lines, which would shift pycocoevalcap's lines
(its bug): here every line break is a space.

The parity test (``tests/reference/test_coco_caption_parity.py``) checks every token of thousands of real
report texts against the Java tokenizer.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

__all__ = ["PUNCTUATION", "ptb_lines", "ptb_tokenize", "ptb_tokenize_many"]

#: The tokens pycocoevalcap's PTBTokenizer drops (compared after lower-casing, so the bracket tokens survive).
PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)


# ------------------------------------------------------------------------------------------ character classes
def _ranges(pred: Callable[[str], bool]) -> str:
    """A regex class body of the BMP characters for which ``pred`` holds (contiguous runs as ranges)."""
    out, start, prev = [], None, None
    for cp in range(0x10000):
        ok = not 0xD800 <= cp <= 0xDFFF and pred(chr(cp))
        if ok and start is None:
            start = cp
        if not ok and start is not None:
            out.append((start, prev))
            start = None
        prev = cp
    if start is not None:
        out.append((start, 0xFFFF))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in out)


_LETTER_CATS = {"Lu", "Ll", "Lt", "Lm", "Lo"}
# Java's Character.isLetter / isDigit / isUpperCase on the BMP (categories L*, Nd, Lu)
_L = _ranges(lambda c: unicodedata.category(c) in _LETTER_CATS)
_D = _ranges(lambda c: unicodedata.category(c) == "Nd")
_U = _ranges(lambda c: unicodedata.category(c) == "Lu")


def _cs(body: str) -> str:
    """A case-sensitive character class (the scanner is caseless for literals only)."""
    return f"(?-i:[{body}])"


LETTER_X = (
    "\u00ad\u0237-\u024f\u02c2-\u02c5\u02d2-\u02df\u02e5-\u02ff\u0300-\u036f\u0370-\u037d\u0384\u0385\u03cf\u03f6"
    "\u03fc-\u03ff\u0483-\u0487\u04cf\u04f6-\u04ff\u0510-\u0525\u055a-\u055f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4"
    "\u05c5\u05c7\u0615-\u061a\u063b-\u063f\u064b-\u065e\u0670\u06d6-\u06ef\u06fa-\u06ff\u070f\u0711\u0730-\u074f"
    "\u0750-\u077f\u07a6-\u07b1\u07ca-\u07f5\u07fa\u0900-\u0903\u093c\u093e-\u094e\u0951-\u0955\u0962-\u0963"
    "\u0981-\u0983\u09bc-\u09c4\u09c7\u09c8\u09cb-\u09cd\u09d7\u09e2\u09e3\u0a01-\u0a03\u0a3c\u0a3e-\u0a4f"
    "\u0a81-\u0a83\u0abc-\u0acf\u0b82\u0bbe-\u0bc2\u0bc6-\u0bc8\u0bca-\u0bcd\u0c01-\u0c03\u0c3e-\u0c56\u0d3e-\u0d44"
    "\u0d46-\u0d48\u0e30-\u0e3a\u0e47-\u0e4e\u0eb1-\u0ebc\u0ec8-\u0ecd"
)
SPLET = r"&[aeiouAEIOU](?:acute|grave|uml);"
JLETTER = _cs(_L)  # [:letter:]
DIGIT = _cs(_D + "\u07c0-\u07c9")
LETTER = f"(?:{_cs(_L + LETTER_X)}|{SPLET})"
LD = _cs(_L + _D)  # [:letter:] | [:digit:]
UPPER = _cs(_U)
SPACE = "[ \t\u00a0\u2000-\u200a\u3000]"
NEWLINE = "(?:\r|\r?\n|[\u2028\u2029\u000b\u000c\u0085])"
SPACENL = f"(?:{SPACE}|{NEWLINE})"
SPACENLS = f"{SPACENL}+"
APOS = "(?:['\u0092\u2019]|&apos;)"
APOSETC = f"(?:{APOS}|[`\u0091\u2018\u201b])"
HYPHEN = "[-_\u058a\u2010\u2011]"

SGML = (
    r"<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.\-]*"
    r"|[A-Za-z][A-Za-z0-9_:.\-]*[ ]*=[ ]*(?:'[^']*'|\"[^\"]*\")))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\-]*)[ ]*>"
)
SENTEND = f"{SPACENL}(?:{SPACENL}|{UPPER}|{SGML})"
DATE = f"{DIGIT}{{1,2}}[\\-/]{DIGIT}{{1,2}}[\\-/]{DIGIT}{{2,4}}"
NUM = f"(?:{DIGIT}*(?:[.:,\u00ad\u066b\u066c]{DIGIT}+)+|{DIGIT}+)"
NUMBER = f"[\\-+]?{NUM}"
SUBSUPNUM = "[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)"
FRAC = f"(?:{DIGIT}{{1,4}}[- \u00a0])?{DIGIT}{{1,4}}(?:\\\\?/|\u2044){DIGIT}{{1,4}}"
FRAC2 = "[\u00bc\u00bd\u00be\u2153-\u215e]"
DOLSIGN = r"(?:(?-i:[A-Z])*\$|#)"
DOLSIGN2 = "[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]"
WORD = f"{LETTER}(?:{LETTER}|{DIGIT})*(?:[.!?]{LETTER}(?:{LETTER}|{DIGIT})*)*"
FILENAME_EXT = (
    "bat|bmp|class|cgi|cpp|c|dll|docx|doc|exe|gif|gz|html|htm|h|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py"
    "|sql|tar|txt|wav|xml|x|zip"
)
FILENAME = f"(?:{LETTER}|{DIGIT})+(?:[.](?:{LETTER}|{DIGIT})+)*(?:[.](?:{FILENAME_EXT}))"
_THINGPART = f"(?:[dDoOlL]{APOSETC}{LD})?{LD}+"
THING = f"{_THINGPART}(?:{HYPHEN}{_THINGPART})*"
THINGA = r"(?-i:[A-Z])+(?:(?:[+&]|&amp;)(?-i:[A-Z])+)+"
THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
ACRO = r"(?:(?:canada|sino|korean|eu|japan|non)-u\.s|u\.s\.-(?:u\.k|u\.s\.s\.r)|[A-Za-z](?:\.[A-Za-z])*)"
ACRO2 = r"(?:(?:canada|sino|korean|eu|japan|non)-u\.s|u\.s\.-(?:u\.k|u\.s\.s\.r)|[A-Za-z](?:\.[A-Za-z])+)"
HTHING = f"[A-Za-z0-9][A-Za-z0-9.,\u00ad]*(?:-(?:[A-Za-z0-9\u00ad]+|{ACRO2}\\.))+"
REDAUX = f"{APOS}(?:[msdMSD]|re|ve|ll)"
SWORD = r"[A-Za-z\u00ad]*[A-MO-Za-mo-z]\u00ad*"
SREDAUX = f"n{APOSETC}t"
APOWORD = (
    f"(?:{APOS}n{APOS}?|[lLdDjJ]{APOS}|dunkin{APOS}|somethin{APOS}|ol{APOS}|{APOS}em"
    f"|(?-i:[A-HJ-XZn]){APOSETC}{JLETTER}{{2}}{JLETTER}*|{APOS}[2-9]0s|{APOS}till?"
    f"|{JLETTER}{JLETTER}*[aeiouyAEIOUY]{APOSETC}(?-i:[aeiouA-Z]){JLETTER}*|{APOS}cause|cont'd\\.?|'twas"
    f"|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l|o{APOSETC}o)"
)
APOWORD2 = f"y{APOS}"
FULLURL = r"https?://[^ \t\n\f\r\"<>|(){}]+[^ \t\n\f\r\"<>|.!?(){},-]"
LIKELYURL = (
    r"(?:(?:www\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+"
    r"(?:com|net|org|edu)))(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?"
)
EMAIL = (
    r"(?:&lt;|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00a0{}]*@(?:[^ \t\n\f\r\"<>|(){}.\u00a0]+\.)*"
    r"(?:[^ \t\n\f\r\"<>|(){}.\u00a0]+)(?:&gt;|>)?"
)
TWITTER = f"(?:@[a-zA-Z_][a-zA-Z_0-9]*|#{LETTER}+)"
ABMONTH = "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
ABDAYS = "mon|tue|tues|wed|thu|thurs|fri"
ABSTATE = (
    "ala|ariz|(?-i:A)z|(?-i:A)rk|calif|colo|conn|ct|dak|(?-i:D)el|fla|ga|(?-i:I)ll|ind|kans?|ky|(?-i:L)a|(?-i:M)ass"
    "|md|mich|minn|(?-i:M)iss|mo|mont|neb|nev|okla|(?-i:O)re|(?-i:P)a|penn|tenn|(?-i:T)ex|va|vt|(?-i:W)ash|wisc?|wyo"
)
ABCOMP = "inc|cos?|corp|pp?t[ye]s?|ltd|plc|rt|bancorp|bhd|assn|univ|intl|sys"
ABNUM = "tel|est|ext|sq"
ABPTIT = r"jr|sr|bros|(?:ed|ph)\.d|blvd|rd|esq"
ABBREV1 = f"(?:{ABMONTH}|{ABDAYS}|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|etc|al|seq|bldg)\\."
ABTITLE = (
    "mr|mrs|ms|(?-i:M)iss|drs?|profs?|sens?|reps?|attys?|lt|col|gen|messrs|govs?|adm|rev|maj|sgt|cpl|pvt|capt|ste?"
    "|ave|pres|lieut|hon|brig|co?mdr|pfc|spc|supts?|det|mt|ft|adj|adv|asst|assoc|ens|insp|mlle|mme|msgr|sfc"
)
ABBREV4 = f"(?:{ABTITLE}|vs|alex|wm|jos|cie|a\\.k\\.a|cf|treas|ph|{ACRO}|invt|elec|natl|m[ft]g|dept)"
ABBREV2 = f"{ABBREV4}\\."
ACRONYM = f"{ACRO}\\."
ABBREV3 = r"(?:ca|figs?|prop|nos?|art|bldg|pp|op)\."
_SENT_WORDS = (
    "about|according|additionally|after|an|a|as|at|but|earlier|he|her|here|however|if|in|it|last|many|more|mr\\."
    "|ms\\.|now|once|one|other|our|she|since|so|some|such|that|the|their|then|there|these|they|this|we|when|while"
    "|what|yet|you"
)
# "[A]bout": the first letter is a case-sensitive class, the rest caseless
SENT_WORD = "(?:" + "|".join(f"(?-i:{w[0].upper()}){w[1:]}" for w in _SENT_WORDS.split("|")) + f"|{SGML})"
PHONE = (
    r"(?:\([0-9]{2,3}\)[ \u00a0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00a0])?[0-9]{2,4}[\- \u00a0])[0-9]{3,4}[\- \u00a0]?"
    r"[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}"
)
LDOTS = r"(?:\.{3,5}|(?:\.[ \u00a0]){2,4}\.|[\u0085\u2026])"
INSENTP = "[,;:\u3001]"
QUOTES = f"(?:{APOS}|''|[`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f\u2039\u203a\u00ab\u00bb]{{1,2}})"
DBLQUOT = '(?:"|&quot;)'
TBSPEC = (
    f"(?:-(?:rrb|lrb|rcb|lcb|rsb|lsb)-|c\\.d\\.s|pro-|anti-|s(?:&|&amp;)p-500|s(?:&|&amp;)ls|cap{APOS}n|c{APOS}est)"
)
TBSPEC2 = f"{APOS}[0-9][0-9]"
SMILEY = r"[<>]?[:;=](?-i:[\-o*'])?(?-i:[()DPdpO\\{@|\[\]])"
ASIANSMILEY = (
    r"(?-i:[\^x=~<>]\.\[\^x=~<>]|[\-\^x=~<>']_[\-\^x=~<>']|\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)"
    r"|\([\^x=~<>']-[\^x=~<>'`]\))"
)
MISCSYMBOL = _cs(
    "+%&~^|\\\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba\u00d7\u00f7\u0387\u05be\u05c0"
    "\u05c3\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6"
    "\u07f7\u07f8\u0964\u0965\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044\u207a-\u207f"
    "\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40"
    "\uff5b-\uff65"
)


# -------------------------------------------------------------------------------------------------- actions
# An action gets the matched text (without trailing context) and returns (token or None, characters consumed).
def _keep(t: str) -> tuple[str | None, int]:
    return t, len(t)


def _drop(t: str) -> tuple[str | None, int]:
    return None, len(t)


def _first(n_back: int) -> Callable[[str], tuple[str | None, int]]:
    return lambda t: (t[: len(t) - n_back], len(t) - n_back)


def _reread_stop(t: str) -> tuple[str | None, int]:
    """The abbreviation with its full stop, and the stop read again as the next token."""
    return t, len(t) - 1


def _soft(t: str) -> tuple[str | None, int]:
    out = t.replace("\u00ad", "")
    return (out or "-"), len(t)


def _nbsp(t: str) -> tuple[str | None, int]:
    return t.replace(" ", "\u00a0"), len(t)


_AMP = re.compile("&amp;", re.IGNORECASE)


def _amp(t: str) -> tuple[str | None, int]:
    return _AMP.sub("&", t), len(t)


_LEFT_S, _RIGHT_S = re.compile("[\u0091\u2018\u201b\u2039]"), re.compile("[\u0092\u2019\u203a]")
_LEFT_D, _RIGHT_D = re.compile("[\u0093\u201c\u00ab]"), re.compile("[\u0094\u201d\u00bb]")
_SINGLE, _DOUBLE = re.compile("&apos;|'"), re.compile('"|&quot;')


def _quotes(probably_left: bool) -> Callable[[str], tuple[str | None, int]]:
    """LaTeX-style quotes: ` `` for opening, ' '' for closing."""

    def act(t: str) -> tuple[str | None, int]:
        s = _SINGLE.sub("`" if probably_left else "'", t)
        s = _DOUBLE.sub("``" if probably_left else "''", s)
        s = _RIGHT_D.sub("''", _LEFT_D.sub("``", _RIGHT_S.sub("'", _LEFT_S.sub("`", s))))
        return s, len(t)

    return act


def _acronym_end(t: str) -> tuple[str | None, int]:
    t = t.rstrip(" \t\n\u000b\u000c\r\u0085")
    if len(t) == 2:  # "I." → "I", the stop next
        return t[0], 1
    return t, len(t) - 1


_FRACTIONS = str.maketrans({"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"})


def _currency(t: str) -> tuple[str | None, int]:
    return re.sub("[\u0080\u00a4\u20a0\u20ac]", "$", t.replace("\u00a2", "cents").replace("\u00a3", "#")), len(t)


def _phone(t: str) -> tuple[str | None, int]:
    return t.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-"), len(t)


def _smiley(t: str) -> tuple[str | None, int]:
    return t.replace("(", "-LRB-").replace(")", "-RRB-"), len(t)


def _const(value: str) -> Callable[[str], tuple[str | None, int]]:
    return lambda t: (value, len(t))


def _hyphens(t: str) -> tuple[str | None, int]:
    return ("--" if 3 <= len(t) <= 4 else t), len(t)


# ---------------------------------------------------------------------------------------------------- rules
# (main, trailing context or None, action), in the lexer's order (the earlier rule wins a tie)
_RULES: list[tuple[str, str | None, Callable[[str], tuple[str | None, int]]]] = [
    (r"c\+\+", None, _keep),
    ("[cf]#", None, _keep),
    ("cannot", None, _first(3)),
    ("'twas", None, _first(3)),
    ("'tis", None, _first(2)),
    ("gonna|gotta|lemme|gimme|wanna", None, _first(2)),
    (SGML, None, _nbsp),
    ("&(?:md|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", None, _const("--")),
    ("&amp;", None, _const("&")),
    ("&(?:ht|tl|ur|lr|qc|ql|qr|odq|cdq|#[0-9]+);", None, _keep),
    (WORD, REDAUX, _soft),
    (SWORD, SREDAUX, _soft),
    (WORD, None, _soft),
    (APOWORD, None, _keep),
    (APOWORD2, JLETTER, _keep),
    (FULLURL, None, _keep),
    (LIKELYURL, None, _keep),
    (EMAIL, None, _keep),
    (TWITTER, None, _keep),
    (REDAUX, "[^A-Za-z]", _quotes(False)),
    (SREDAUX, "[^A-Za-z]", _quotes(False)),
    (DATE, None, _keep),
    (NUMBER, None, _soft),
    (SUBSUPNUM, None, _keep),
    (FRAC, None, _nbsp),
    (FRAC2, None, lambda t: (t.translate(_FRACTIONS), len(t))),
    (TBSPEC, None, _amp),
    (THING3, None, _keep),
    (DOLSIGN, None, _keep),
    (DOLSIGN2, None, _currency),
    (ACRONYM, f"{SPACENLS}{SENT_WORD}{SPACENL}", _acronym_end),
    (ABBREV3, f"{SPACENL}?{DIGIT}", _keep),
    (r"(?:pt[eyEY]|co)\.", f"{SPACE}(?:ltd|lim)", _keep),
    (ABBREV1, SENTEND, _reread_stop),
    (ABBREV1, r"[\s\S][\s\S]", _keep),
    (ABBREV1, None, _reread_stop),
    (ABBREV2, None, _keep),
    (ABBREV4, SPACE, _keep),
    (ACRO, SPACENL, _keep),
    (TBSPEC2, SPACENL, _keep),
    (FILENAME, f"(?:{SPACENL}|[.?!,])", _keep),
    (f"{WORD}\\.", INSENTP, _soft),
    (PHONE, None, _phone),
    (DBLQUOT, "[A-Za-z0-9$]", _quotes(True)),
    (DBLQUOT, None, _quotes(False)),
    ("\x7f", None, _drop),
    ("<|&lt;", None, _const("<")),
    (">|&gt;", None, _const(">")),
    (SMILEY, "[^A-Za-z0-9]", _smiley),
    (ASIANSMILEY, None, _smiley),
    (r"\{", None, _const("-LCB-")),
    (r"\}", None, _const("-RCB-")),
    (r"\[", None, _const("-LSB-")),
    (r"\]", None, _const("-RSB-")),
    (r"\(", None, _const("-LRB-")),
    (r"\)", None, _const("-RRB-")),
    (r"-+", None, _hyphens),
    (LDOTS, None, _const("...")),
    (r"@+|#+|_+", None, _keep),
    (r"\*+|(?:\\\*){1,3}", None, _keep),
    (INSENTP, None, _keep),
    (r"[?!]+", None, _keep),
    ("[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]", None, _keep),
    ("=", None, _keep),
    ("/", None, _keep),
    (f"{HTHING}\\.", INSENTP, _soft),
    (HTHING, None, _soft),
    (f"{THING}\\.", INSENTP, _keep),
    (THING, None, _keep),
    (f"{THINGA}\\.", INSENTP, _amp),
    (THINGA, None, _amp),
    ("'", "[A-Za-z][^ \t\n\r\u00a0]", _quotes(True)),
    (REDAUX, None, _quotes(False)),
    (SREDAUX, None, _quotes(False)),
    (QUOTES, None, _quotes(False)),
    ("<<|>>", None, _keep),
    (MISCSYMBOL, None, _keep),
    ("[\x00\u200b\u200e\u200f\ufeff]|" + SPACE + "+", None, _drop),
    (NEWLINE, None, _drop),
    ("&nbsp;", None, _drop),
    ("[^\n]", None, _drop),  # untokenizable: deleted (the lexer's default, with a warning)
]


@lru_cache(maxsize=1)
def _compiled():
    out = []
    for main, ctx, act in _RULES:
        pattern = f"({main})" + (f"(?:{ctx})" if ctx else "")
        out.append((re.compile(pattern, re.IGNORECASE), act))
    return out


# fast path: an ASCII word (a letter, then letters and digits) that ends at a space, a , ; : or a closing bracket is a
# token of its own under every rule that can match there, except the words the lexer splits (checked against the
# Java tokenizer in the parity test)
_PLAIN = re.compile(r"[a-zA-Z][a-zA-Z0-9]*(?=[ \n)]|[,;:](?:[ \n)]|$)|$)")
_SPECIAL = re.compile("cannot|gonna|gotta|lemme|gimme|wanna", re.IGNORECASE)
# ... and one that ends a sentence ("word. "), unless the lexer knows it as an abbreviation; lone , ; : and full stops
_PLAIN_STOP = re.compile(r"[a-zA-Z][a-zA-Z0-9]*(?=\.(?:[ \n]|$))")
_ABBREVIATION = re.compile(f"{ABBREV1}|{ABBREV2}|{ABBREV3}|(?:pt[eyEY]|co)\\.", re.IGNORECASE)
_PLAIN_PUNCT = re.compile(r"[,;:](?=[ \n]|$)|\.(?=\n| [^.]|$)")


def ptb_lines(text: str) -> list[list[str]]:
    """The Stanford PTB lexer's tokens of each line of ``text`` (``\\n``-separated), before lower-casing.

    Lines are lexed as one document, as the Java tokenizer reads pycocoevalcap's file: a rule's trailing context
    may look past the end of a line (``I.`` at the end of a line followed by one that starts with ``The`` is
    ``I`` and ``.``; at the end of the last line it is ``I.``).
    """
    rules = _compiled()
    n = len(text)
    pos = 0
    lines: list[list[str]] = [[]]
    out = lines[0]
    while pos < n:
        ch = text[pos]
        if ch == " ":
            pos += 1
            continue
        if ch == "\n":
            out = []
            lines.append(out)
            pos += 1
            continue
        m = _PLAIN.match(text, pos)
        if m is not None and not _SPECIAL.fullmatch(m.group()):
            out.append(m.group())
            pos = m.end()
            continue
        m = _PLAIN_STOP.match(text, pos)
        if m is not None and not _SPECIAL.fullmatch(m.group()) and not _ABBREVIATION.fullmatch(m.group() + "."):
            out.append(m.group())
            pos = m.end()
            continue
        m = _PLAIN_PUNCT.match(text, pos)
        if m is not None:
            out.append(m.group())
            pos = m.end()
            continue
        best_len, best = 0, None
        for rx, act in rules:
            mm = rx.match(text, pos)
            if mm is not None and mm.end() - pos > best_len:
                best_len, best = mm.end() - pos, (mm.group(1), act)
        if best is None:  # pragma: no cover - the last rule matches any character but a newline
            pos += 1
            continue
        tok, used = best[1](best[0])
        if tok is not None:
            out.append(tok)
        pos += max(used, 1)
    return lines


_LINE_BREAKS = re.compile("\r\n|[\r\n\u2028\u2029\u000b\u000c\u0085]")


def _line(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"PTB tokenisation takes str captions; got {type(text).__name__}.")
    return _LINE_BREAKS.sub(" ", text)


def ptb_tokenize_many(texts: Sequence[str]) -> list[str]:
    """Each text as pycocoevalcap's PTBTokenizer returns it when given these texts in this order (one line each):
    lower-cased tokens without its punctuation list, joined by single spaces.

    >>> ptb_tokenize_many(["The patient's heart (cardiac silhouette) cannot be assessed.", "See Dr. Smith's CT."])
    ["the patient 's heart -lrb- cardiac silhouette -rrb- can not be assessed", "see dr. smith 's ct."]
    """
    texts = list(texts)
    if not texts:
        return []
    lines = ptb_lines("\n".join(_line(t) for t in texts))
    return [" ".join(t for t in (tok.lower() for tok in toks) if t not in PUNCTUATION) for toks in lines]


def ptb_tokenize(text: str) -> str:
    """One text as pycocoevalcap's PTBTokenizer returns it when it is the last (or only) line of its batch.

    >>> ptb_tokenize("The patient's heart (cardiac silhouette) cannot be assessed; see Dr. Smith's CT.")
    "the patient 's heart -lrb- cardiac silhouette -rrb- can not be assessed see dr. smith 's ct."
    """
    return ptb_tokenize_many([text])[0]


def _main(argv: Sequence[str]) -> None:  # pragma: no cover - a debugging aid: python -m medlens.metrics._ptb < file
    for line in ptb_tokenize_many(sys.stdin.read().split("\n")):
        print(line)


if __name__ == "__main__":  # pragma: no cover
    _main(sys.argv[1:])
