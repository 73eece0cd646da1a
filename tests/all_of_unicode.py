"""Hypothesis strategies over all of Unicode, with the characters that matter drawn often.

`st.characters()` leaves surrogates out by default and, over 1.1 million code points, rarely
draws the few that SQS or PostgreSQL refuse; these strategies draw them on purpose.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Just outside and just inside each edge of SQS's set: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF
EDGE_CHARACTERS = [
    "\x00",
    "\x01",
    "\x08",
    "\t",
    "\n",
    "\x0b",
    "\x0c",
    "\r",
    "\x1f",
    " ",
    "\x7f",
    "\x85",
    "\ud7ff",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\ue000",
    "\ufeff",
    "\ufffd",
    "\ufffe",
    "\uffff",
    "\U00010000",
    "\U0010ffff",
]

any_character = st.one_of(
    st.characters(codec=None, exclude_categories=[]),  # everything, surrogates included
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=[]),  # lone surrogates
    st.characters(max_codepoint=0x1F, exclude_categories=[]),  # C0 controls, NUL included
    st.sampled_from(EDGE_CHARACTERS),
)
any_text = st.text(any_character, max_size=40)
# Printable text in any script: most fields of a generated lead are valid, so leads get accepted
printable_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=30)
# A field's value: often printable, often hostile
field_text = printable_text | any_text
