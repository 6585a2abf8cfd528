"""Driving Debian's Chromium with Playwright: its flags, where screenshots go, and signing in
through the form. The ``browser`` fixture is in tests/fixtures/browser.py."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sign_in(page, live_server, username, password, then="/connections/"):
    page.goto(f"{live_server.url}/accounts/login/?next={then}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}")


def confirm(page, text: str | None = None) -> None:
    """Answer the page's one confirmation dialog (templates/base.html) with its OK button,
    after checking what it asks when ``text`` is given."""
    dialog = page.locator("dialog#confirm")
    dialog.wait_for(state="visible")
    if text is not None:
        assert dialog.locator("#confirm-text").inner_text() == text
    page.click("#confirm-ok")
    dialog.wait_for(state="hidden")
