"""An HTML receipt's visible page is checked, not only its embedded JSON (finding: a page
rewritten to show another request id or another verdict checked as valid).

`check-receipt` draws the page again from its signed JSON with the renderer the JSON names
(every released renderer is kept, with a receipt of each as a fixture here) and says "not
valid" when the visible page differs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from erasure import cli
from tests.hostile.conftest import Finished

FIXTURES = Path(__file__).parent / "fixtures"
RELEASED = {
    # a page of the release before renderers were named: drawn by receipt-html/1
    "receipt-0.1-unnamed.html": "receipt-html/1",
    "receipt-html-1.html": "receipt-html/1",
    # [suppress]: the addresses kept on a suppression list, in a section of their own
    "receipt-html-2.html": "receipt-html/2",
}


@pytest.mark.parametrize("fixture", sorted(RELEASED))
def test_every_released_receipt_page_still_checks(
    fixture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page = FIXTURES / fixture
    capsys.readouterr()
    code = cli.main(["check-receipt", str(page), "--public-key", str(FIXTURES / "fixed.pub")])
    assert code == 0, capsys.readouterr()
    assert capsys.readouterr().out.startswith("valid:")


def test_every_renderer_has_a_fixture() -> None:
    from erasure.receipts.html import RENDERERS

    assert set(RENDERERS) <= set(RELEASED.values())


def _issue(finished: Finished) -> Path:
    out = finished.folder / "T2.html"
    assert 0 == cli.main(["receipt", str(finished.job), "--request-id", "T2", "--out", str(out)])
    return out


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        (
            "request id in the title",
            "<h1>Erasure receipt: request T2</h1>",
            "<h1>Erasure receipt: request T9</h1>",
        ),
        ("verdict", "is complete: every profile", "is complete, with nothing left: every profile"),
        ("an outcome", "<td>erased: the service deleted the profile", "<td>erased (twice)"),
        ("a script", "</main>", "<script>alert(1)</script></main>"),
    ],
)
def test_a_rewritten_visible_page_is_not_valid(
    finished: Finished, what: str, old: str, new: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page = _issue(finished)
    pub = str(finished.key) + ".pub"
    capsys.readouterr()
    assert 0 == cli.main(["check-receipt", str(page), "--public-key", pub])
    text = page.read_text()
    assert old in text, what
    forged = finished.folder / "forged.html"
    forged.write_text(text.replace(old, new, 1))
    for extra in ([], ["--job", str(finished.job)]):
        capsys.readouterr()
        assert 1 == cli.main(["check-receipt", str(forged), "--public-key", pub, *extra])
        said = capsys.readouterr().out
        assert said.startswith("not valid:") and "visible page differs" in said, said


def test_new_receipts_name_their_renderer(finished: Finished) -> None:
    out = finished.folder / "T3.json"
    assert 0 == cli.main(["receipt", str(finished.job), "--request-id", "T3", "--out", str(out)])
    assert re.search(r'"renderer":"receipt-html/2"', out.read_text())
