"""What the audit log keeps of a string: no character that could forge a line, hide text or
make the entry unwritable, and no more than a bounded length."""

from multidb import audit


def test_control_format_and_separator_characters_are_dropped() -> None:
    forged = "admin\r\n[2026-01-01] auth.login success\x00\t\x1b[31m\u202e\u2028\u200b"
    assert audit.text(forged) == "admin[2026-01-01] auth.login success[31m"


def test_a_lone_surrogate_is_dropped_so_the_entry_encodes_as_utf8() -> None:
    kept = audit.text("\ud800alice\udfff")
    assert kept == "alice"
    assert kept.encode() == b"alice"


def test_text_is_cut_to_its_limit_and_the_work_is_bounded_too() -> None:
    assert len(audit.text("x" * 10_000)) == audit.MAX_TEXT
    assert audit.text("\n" * 10_000 + "tail") == ""  # only the first MAX_TEXT * 4 characters are read
    assert audit.text("abcdef", 3) == "abc"


def test_details_lose_control_characters_in_names_and_values_at_any_depth() -> None:
    details = {"na\nme": ["a\r\nb", {"in\x00ner": "c\u202ed"}], "password": "x", "n": 3}
    assert audit._clean(details) == {"name": ["ab", {"inner": "cd"}], "n": 3}
