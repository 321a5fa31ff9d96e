"""scripts/demo.py prints the score table as it is written (the full demo run is exercised by `make demo`)."""

from __future__ import annotations

from rich.console import Console

from scripts.demo import print_plain


def test_score_table_is_printed_unwrapped_and_without_markup():
    console = Console(width=40, record=True, color_system=None)
    row = "| crohme2014_sample | 0.00 (3) | 0.00 (4) | 0.00 (1) | 0.00 (1) | 0.00 (1) | 0.00 (1) |"
    note = "- prompt [bold]main[/bold], interval [0.2, 0.8]"
    print_plain(console, f"{row}\n{note}\n")
    lines = console.export_text().splitlines()
    assert row in lines  # one line, though wider than the console
    assert note in lines  # the brackets are text, not styles
