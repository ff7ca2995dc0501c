"""What the UI test does with the confusion explorer's matrices and listings.

Click a cell and see its clips (``click_cell``); choose a second run, click the cell both runs
fill most, and see both runs' clips with players, log-mels and what the other run predicted
(``compare_runs``); turn to the next page (``turn_page``). Each step raises ``UICheckFailed``
naming its check. Clicks go through the DOM as a student's mouse would; the CSS classes are those
``serlib.explorer_parts`` documents. After a change the kernel answers with widget updates that
arrive one by one, so the checks wait for the state they expect (the clicked cell named in the
listing's header, the kernel idle) before they count anything.
"""

from __future__ import annotations

import re
import time

from ui_lab import BrowserPage, Deadline, UICheckFailed

EXPLORER = ".serlib-confusion-explorer"
MATRIX = ".serlib-cm"
CELL = "button.serlib-cm-cell"
NONEMPTY_CELL = "button.serlib-cm-cell-nonempty"
LISTING = ".serlib-clip-list"
CLIP = ".serlib-clip"
COMPARE_PICKER = ".serlib-compare-picker select"
SHOWING = re.compile(r"showing (\d+) of (\d+) clips?(?:, clips (\d+)-(\d+))?")
CELL_TITLE = re.compile(r"true (.+?), predicted (.+?): (\d+) clips?")

CELLS_JS = """cells => cells.map(cell => {
  const box = cell.getBoundingClientRect();
  return {text: cell.textContent.trim(), title: cell.title, width: box.width, height: box.height,
          nonempty: cell.classList.contains('serlib-cm-cell-nonempty')};
})"""

LOADED_IMAGES_JS = (
    "images => images.filter(image => image.complete && image.naturalWidth > 0).length"
)
CLIP_NAMES_JS = "rows => rows.map(row => row.innerText.trim().split('\\n')[0])"


def check_matrix(matrix) -> list[dict] | None:
    """One matrix is a square grid of labelled cells, some non-empty, adding up to its summary.

    Returns its cells, or None for a matrix drawn without cells (a compared run that lacks the set).
    """
    cells = matrix.locator(CELL).evaluate_all(CELLS_JS)
    if cells and all(cell["width"] < 1 and cell["height"] < 1 for cell in cells):
        return None
    side = round(len(cells) ** 0.5)
    if len(cells) < 4 or side * side != len(cells):
        raise UICheckFailed(
            "explorer-renders", f"the matrix has {len(cells)} cells, not a square of 2x2 or more"
        )
    blank = [cell for cell in cells if not cell["text"] or cell["width"] < 1 or cell["height"] < 1]
    if blank:
        raise UICheckFailed(
            "explorer-renders", f"{len(blank)} matrix cells render blank: {blank[:3]}"
        )
    if not any(cell["nonempty"] for cell in cells):
        raise UICheckFailed("explorer-renders", "every matrix cell is empty (no predictions shown)")
    summary = re.search(r"(\d+) clips", matrix.inner_text())
    if summary and all(cell["text"].isdigit() for cell in cells):
        total = sum(int(cell["text"]) for cell in cells)
        if total != int(summary.group(1)):
            raise UICheckFailed(
                "explorer-renders",
                f"the cells add up to {total} clips but the summary says {summary.group(1)}",
            )
    return cells


def click_cell(browser: BrowserPage, deadline: Deadline) -> dict:
    """Click the first non-empty cell; the clips it lists must match it, with audio that loads."""
    explorer = browser.page.locator(EXPLORER).first
    cell = explorer.locator(MATRIX).first.locator(NONEMPTY_CELL).first
    title = cell.get_attribute("title") or ""
    cell.click(timeout=deadline.ms(30))
    listing = explorer.locator(LISTING).first
    clips = listing.locator(CLIP)
    if not wait_for_clips(browser, listing, deadline):
        raise UICheckFailed(
            "click-lists-clips",
            f"clicking the cell ({title}) listed no clips; the listing shows "
            f"{listing.inner_text().strip()[:200]!r}",
        )
    if "serlib-cm-cell-selected" not in (cell.get_attribute("class") or ""):
        raise UICheckFailed("click-lists-clips", f"the clicked cell ({title}) is not highlighted")
    header = listing.inner_text()
    pair = re.match(r"true (.+?), predicted (.+?):", title)
    if pair and f"true {pair.group(1)}, predicted {pair.group(2)}" not in header:
        raise UICheckFailed(
            "click-lists-clips", f"clicked {title!r} but the listing shows {header[:120]!r}"
        )
    check_shown_count(listing, "click-lists-clips")
    audio = check_audio(browser, listing, deadline)
    images = listing.locator("img").evaluate_all(LOADED_IMAGES_JS)
    return {"clicked": title, "clips": clips.count(), "log_mel_images": images, **audio}


def check_shown_count(listing, check: str) -> tuple[int, int]:
    """The header's "showing N of M clips" must match the N clips drawn; return (N, M)."""
    shown = SHOWING.search(listing.inner_text())
    drawn = listing.locator(CLIP).count()
    if shown is None:
        raise UICheckFailed(
            check, f"the listing has no 'showing N of M clips' header ({drawn} drawn)"
        )
    if int(shown.group(1)) != drawn:
        raise UICheckFailed(
            check, f"the listing says it shows {shown.group(1)} clips but {drawn} are drawn"
        )
    return int(shown.group(1)), int(shown.group(2))


def wait_for_clips(
    browser: BrowserPage,
    listing,
    deadline: Deadline,
    expect: re.Pattern | str | None = None,
    limit: float = 30.0,
    quiet: float = 5.0,
) -> bool:
    """After a click, wait for clips in ``listing`` (and its text to match ``expect``, if given);
    give up early once the kernel sat idle ``quiet`` s.

    A click is a message to the kernel, which answers with new widgets; when the kernel has been
    idle for a while and nothing was drawn, the click listed nothing (no need to wait ``limit``).
    """
    page = browser.page
    clips = listing.locator(CLIP)
    end = time.monotonic() + min(limit, deadline.remaining())
    idle_since = None
    while time.monotonic() < end:
        if clips.count() and (expect is None or re.search(expect, listing.inner_text())):
            clips.first.wait_for(state="visible", timeout=deadline.ms(10))
            return True
        kernel = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus"
        )
        now = time.monotonic()
        idle_since = (idle_since or now) if kernel == "idle" else None
        if idle_since is not None and now - idle_since > quiet:
            return False
        time.sleep(0.25)
    return False


def check_audio(browser: BrowserPage, listing, deadline: Deadline, check="audio-plays") -> dict:
    """Every clip in ``listing`` has an <audio> player, and the first one loads its sound."""
    players = listing.locator("audio")
    clips = listing.locator(CLIP)
    unreadable = listing.locator(".serlib-clip-error")
    end = time.monotonic() + min(20.0, deadline.remaining())
    # Each listed clip shows either a player or the reason its audio could not be read.
    while not players.count() and unreadable.count() < clips.count():
        if time.monotonic() > end:
            break
        time.sleep(0.25)
    if not players.count():
        errors = unreadable.all_inner_texts()
        raise UICheckFailed(
            check,
            f"the listed clips have no audio element; clip errors: {errors[:3] or 'none'}",
        )
    end = time.monotonic() + min(20.0, deadline.remaining())
    state = {}
    while time.monotonic() < end:
        state = players.first.evaluate(
            """audio => ({src: audio.currentSrc || audio.src, ready: audio.readyState,
                          duration: audio.duration, error: audio.error ? audio.error.code : null})"""
        )
        if state["error"] is not None or (state["ready"] >= 1 and state["duration"] > 0):
            break
        time.sleep(0.25)
    if state.get("error") is not None or not (state.get("ready", 0) >= 1):
        raise UICheckFailed(check, f"the first audio player does not load: {state}")
    return {"audio_players": players.count(), "audio_seconds": round(state["duration"], 2)}


def check_sound_and_images(browser: BrowserPage, listing, deadline: Deadline, check: str) -> dict:
    """Each listed clip has a player (the first loads) and a log-mel image that loaded."""
    audio = check_audio(browser, listing, deadline, check)
    clips = listing.locator(CLIP).count()
    end = time.monotonic() + min(10.0, deadline.remaining())
    images = 0
    while time.monotonic() < end:
        images = listing.locator("img.serlib-clip-logmel, .serlib-clip-logmel img").evaluate_all(
            LOADED_IMAGES_JS
        )
        if images >= clips:
            break
        time.sleep(0.25)
    if images < clips:
        raise UICheckFailed(check, f"{clips} clips listed but {images} log-mel images loaded")
    return {"clips": clips, "log_mel_images": images, **audio}


def wait_for_idle(browser: BrowserPage, deadline: Deadline, limit: float = 60.0) -> None:
    """Wait until the kernel has been idle for about a second: every widget update it sent for the
    last change has arrived, so what the page shows next is the new state, not a stale one.

    No error on timeout: the check that follows says what the page shows.
    """
    page = browser.page
    end = time.monotonic() + min(limit, deadline.remaining())
    settled = 0
    while time.monotonic() < end and settled < 4:
        kernel = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus"
        )
        settled = settled + 1 if kernel == "idle" else 0
        time.sleep(0.3)


def wait_for_count(locator, expected: int, deadline: Deadline, limit: float = 10.0) -> int:
    """Poll ``locator.count()`` until it reaches ``expected`` (child widgets render one by one)."""
    end = time.monotonic() + min(limit, deadline.remaining())
    count = locator.count()
    while count < expected and time.monotonic() < end:
        time.sleep(0.25)
        count = locator.count()
    return count


def choose_second_run(browser: BrowserPage, deadline: Deadline, required: bool) -> str | None:
    """Pick a second run in the compare picker (keep it if one is chosen); None if none offered."""
    explorer = browser.page.locator(EXPLORER).first
    picker = explorer.locator(COMPARE_PICKER)
    if not picker.count():
        if required:
            raise UICheckFailed("compare-shows-both", "the explorer has no compare picker")
        return None
    offered = [text.strip() for text in picker.locator("option").all_inner_texts()]
    others = [name for name in offered if name != "none"]
    if not others:
        if required:
            raise UICheckFailed("compare-shows-both", f"the compare picker offers only {offered}")
        return None
    chosen = picker.evaluate("select => select.options[select.selectedIndex].text").strip()
    if chosen == "none":
        picker.select_option(label=others[0], timeout=deadline.ms(30))
        chosen = others[0]
    end = time.monotonic() + min(30.0, deadline.remaining())
    matrices, listings = explorer.locator(MATRIX), explorer.locator(LISTING)

    def both_drawn() -> bool:
        if matrices.count() < 2 or listings.count() < 2:
            return False
        first, second = (matrices.nth(index).locator(NONEMPTY_CELL).count() for index in (0, 1))
        return (
            first > 0
            and second > 0
            and matrices.first.locator(CELL).count() == (matrices.nth(1).locator(CELL).count())
        )

    while not both_drawn():
        if time.monotonic() > end:
            raise UICheckFailed(
                "compare-shows-both",
                f"after choosing {chosen!r} to compare, the explorer shows "
                f"{explorer.locator(MATRIX).count()} matrices and "
                f"{explorer.locator(LISTING).count()} listings, not two of each",
            )
        time.sleep(0.25)
    wait_for_idle(browser, deadline)  # the matrices' last counts and titles, the re-listed cell
    return chosen


def fullest_shared_cell(first: list[dict], second: list[dict]) -> int | None:
    """Index of the cell with the most clips under both runs (then under the first; then the
    first such cell), from the two matrices' cells as ``CELLS_JS`` reports them; None when no
    cell holds clips under both (two runs that each collapse onto a different label)."""

    def count(cell: dict) -> int:
        found = CELL_TITLE.match(cell["title"])
        return int(found.group(3)) if found else 0

    ranked = [
        (min(count(one), count(two)), count(one), -index)
        for index, (one, two) in enumerate(zip(first, second, strict=True))
    ]
    best = max(ranked)
    return -best[2] if best[0] > 0 else None


def compare_runs(browser: BrowserPage, deadline: Deadline, required: bool) -> dict:
    """Choose a second run, click the fullest cell both share, and see both runs' clips.

    Each run's listing must name the cell, draw as many clips as its header says, give each a
    player (the first loads), a loaded log-mel and a line saying what the other run predicted.
    """
    compared = choose_second_run(browser, deadline, required)
    if compared is None:
        return {"compared": None}
    explorer = browser.page.locator(EXPLORER).first
    first, second = (explorer.locator(MATRIX).nth(n).locator(CELL) for n in (0, 1))
    index = fullest_shared_cell(first.evaluate_all(CELLS_JS), second.evaluate_all(CELLS_JS))
    if index is None:  # the demo notebook (required) always has one; a course run may not
        if required:
            raise UICheckFailed("compare-lists-both", "no cell holds clips under both runs")
        return {"compared": compared, "shared_cell": None}
    title = first.nth(index).get_attribute("title") or ""
    first.nth(index).click(timeout=deadline.ms(30))
    wait_for_idle(browser, deadline)  # both listings re-drawn for the clicked cell
    pair = CELL_TITLE.match(title)
    expect = re.escape(f"true {pair.group(1)}, predicted {pair.group(2)}")
    seen = {"compared": compared, "compare_clicked": title}
    for number, listing in enumerate(explorer.locator(LISTING).all()[:2], start=1):
        if not wait_for_clips(browser, listing, deadline, expect=expect):
            raise UICheckFailed(
                "compare-lists-both",
                f"after clicking {title!r}, listing {number} of 2 shows "
                f"{listing.inner_text().strip()[:200]!r}",
            )
        check_shown_count(listing, "compare-lists-both")
        found = check_sound_and_images(browser, listing, deadline, "compare-lists-both")
        notes = wait_for_count(listing.locator(".serlib-clip-other"), found["clips"], deadline)
        if notes != found["clips"]:
            raise UICheckFailed(
                "compare-lists-both",
                f"listing {number}: {found['clips']} clips but {notes} say what the other run "
                "predicted",
            )
        seen[f"listing_{number}"] = found
    seen["paging"] = turn_page(browser, explorer.locator(LISTING).first, deadline, required)
    return seen


def turn_page(browser: BrowserPage, listing, deadline: Deadline, required: bool) -> dict:
    """Click "next" in a listing longer than a page: new clips, numbered on, with sound and images."""
    shown, total = check_shown_count(listing, "page-turns")
    if total <= shown:
        if required:
            raise UICheckFailed("page-turns", f"the clicked cell has {total} clips: one page only")
        return {"paged": False, "clips": total}
    before = listing.locator(CLIP).evaluate_all(CLIP_NAMES_JS)
    button = listing.locator("button.serlib-page-next")
    if not button.count():
        raise UICheckFailed("page-turns", f"{total} clips, {shown} shown, but no 'next' button")
    button.first.click(timeout=deadline.ms(30))
    expect = rf"clips {shown + 1}-\d+"
    if not wait_for_clips(browser, listing, deadline, expect=expect):
        header = SHOWING.search(listing.inner_text())
        raise UICheckFailed(
            "page-turns",
            f"clicking 'next' did not list clips from {shown + 1} on; the listing says "
            f"{header.group(0) if header else listing.inner_text()[:120]!r}",
        )
    after = listing.locator(CLIP).evaluate_all(CLIP_NAMES_JS)
    if set(after) & set(before):
        raise UICheckFailed(
            "page-turns", f"page 2 repeats clips of page 1: {sorted(set(after) & set(before))[:3]}"
        )
    check_shown_count(listing, "page-turns")
    found = check_sound_and_images(browser, listing, deadline, "page-turns")
    return {"paged": True, "clips": total, "first_page": before, "second_page": after, **found}
