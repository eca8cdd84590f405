"""What a reader sees, checked in the browser: each function takes a loaded
Playwright page and returns a list of problems (empty when the page is fine).

``tests/browser/fixtures/`` holds one page per check that has the problem the
check looks for, so that each check is known to catch it
(``test_rendered_book.py::test_each_check_catches_its_fixture``).
"""

PHONE = 390  # px: a phone in portrait
DESKTOP = 1280  # px: a laptop
WIDTHS = (PHONE, DESKTOP)
# The theme's breakpoint: below it the primary sidebar is a drawer.
DRAWER_BELOW = 960

VISIBLE = """el => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
                 && el.getClientRects().length > 0"""


def overflowing_equations(page) -> list[str]:
    """Display equations wider than the column (beside their equation number).

    On a phone ``_static/fit-to-column.js`` may scale a long equation down (to 60 %
    at least); on a desktop none may need it: a long one is broken onto lines.
    """
    desktop = page.viewport_size["width"] >= DRAWER_BELOW
    return page.evaluate(
        """desktop => Array.from(
            document.querySelectorAll('mjx-container[display="true"]'))
          .map(c => {
            const math = c.querySelector('mjx-math');
            const block = c.closest('div.math') || c.parentElement;
            const eqno = block.querySelector(':scope > .eqno');
            const room = block.clientWidth
              - (eqno ? eqno.getBoundingClientRect().width : 0);
            const need = math ? math.getBoundingClientRect().width : 0;
            const label = (eqno ? eqno.innerText.trim() + ' ' : '')
              + (c.getAttribute('aria-label') || math?.textContent || '').slice(0, 60);
            if (need > room + 1)
              return `equation ${label}: ${Math.round(need)} px in ${Math.round(room)}`;
            if (desktop && c.dataset.scale)
              return `equation ${label}: scaled to ${c.dataset.scale} on a desktop`;
            return null;
          }).filter(Boolean)""",
        desktop,
    )


def visible_solution_content(page) -> list[str]:
    """Solutions whose content shows before the reader opens them."""
    return page.evaluate(
        f"""() => Array.from(document.querySelectorAll('.solution'))
          .filter(s => Array.from(s.children)
            .filter(c => !c.classList.contains('admonition-title'))
            .some({VISIBLE}))
          .map(s => 'solution open before a click: '
               + (s.querySelector('.admonition-title')?.innerText || s.id).trim())"""
    )


def solutions_closed_after_one_click(page) -> list[str]:
    """Solutions whose prose and code do not all show after one click on the title."""
    problems = []
    for solution in page.query_selector_all(".solution"):
        title = solution.query_selector(".admonition-title")
        title.scroll_into_view_if_needed()
        # on "Solution to", left of the link to the exercise in the same title
        title.click(position={"x": 8, "y": title.bounding_box()["height"] / 2})
        page.wait_for_timeout(300)  # the toggle's transition
        hidden = solution.evaluate(
            f"""s => Array.from(s.querySelectorAll(':scope > *, .cell_input, p'))
                 .filter(c => !c.classList.contains('admonition-title'))
                 .filter(c => !({VISIBLE})(c)).length"""
        )
        if hidden:
            title_text = title.inner_text().strip()
            problems.append(f"{title_text}: {hidden} parts still hidden")
    return problems


def plumbing_in_code(page) -> list[str]:
    """Visible code cells that show glue calls or nbval markers."""
    return page.evaluate(
        f"""() => Array.from(document.querySelectorAll('div.cell_input'))
          .filter({VISIBLE})
          .filter(c => /glue\\(|NBVAL/.test(c.innerText))
          .map(c => 'plumbing in a visible cell: ' + c.innerText.slice(0, 60))"""
    )


def temporary_paths_in_outputs(page) -> list[str]:
    """Cell outputs that print a temporary path."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('div.cell_output'))
          .filter(o => o.textContent.includes('/tmp/'))
          .map(o => 'temporary path in an output: '
               + o.textContent.match(/\\S*\\/tmp\\/\\S*/)[0])"""
    )


def images_without_alt_text(page) -> list[str]:
    """Images in the page's article whose alt text is missing or a file name."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('article img, main img'))
          .filter(i => {
            const alt = (i.getAttribute('alt') || '').trim();
            return !alt || /[\\/\\\\]|\\.(png|jpe?g|gif|svg|webp)$/i.test(alt);
          })
          .map(i => `image without alt text: ${i.getAttribute('src')}`
               + ` (alt: "${i.getAttribute('alt') || ''}")`)"""
    )


def wide_tables_without_scroll_hint(page) -> list[str]:
    """Tables wider than the viewport that neither scroll in a box of their own,
    inside the viewport, nor show the scroll hint (a shadow at the edge)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('article table, main table'))
          .filter(t => t.getBoundingClientRect().width > window.innerWidth)
          .filter(t => {
            let box = t.parentElement;
            while (box && !['auto', 'scroll'].includes(getComputedStyle(box).overflowX))
              box = box.parentElement;
            if (!box) return true;
            const r = box.getBoundingClientRect();
            const hint = getComputedStyle(box).backgroundImage.includes('gradient');
            return r.right > window.innerWidth + 1 || r.left < -1 || !hint;
          })
          .map(t => `table ${Math.round(t.getBoundingClientRect().width)} px wide`
               + ` in a ${window.innerWidth} px viewport, no scroll box with a hint`)"""
    )


def drawers_that_do_not_open(page) -> list[str]:
    """Navigation toggles that do nothing.

    Below the theme's breakpoint, the ☰ button must slide the chapter list into
    view and the contents button the page's outline; above it, ☰ must hide the
    chapter list and show it again.
    """
    width = page.viewport_size["width"]
    where = """sel => { const e = document.querySelector(sel); if (!e) return null;
        const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
        return {left: r.left, right: r.right, width: r.width,
                shown: s.visibility !== 'hidden' && s.display !== 'none'
                  && r.width > 0 && r.right > 0 && r.left < window.innerWidth}; }"""
    problems = []

    def toggle(button_selector):
        buttons = page.query_selector_all(button_selector)
        buttons = [b for b in buttons if b.is_visible()]
        if not buttons:
            return False
        buttons[0].click()
        page.wait_for_timeout(500)  # the drawer's transition
        return True

    if width < DRAWER_BELOW:
        for button, drawer in (
            (".primary-toggle", ".bd-sidebar-primary"),
            (".secondary-toggle", ".bd-sidebar-secondary"),
        ):
            if page.evaluate(where, drawer) is None:
                continue
            if not toggle(button):
                problems.append(f"no visible {button} for {drawer}")
                continue
            if not page.evaluate(where, drawer)["shown"]:
                problems.append(f"{button} did not open {drawer}")
            page.keyboard.press("Escape")
            page.mouse.click(width - 5, 5)  # outside the drawer: close it
            page.wait_for_timeout(500)
    else:
        before = page.evaluate(where, ".bd-sidebar-primary")
        if before is None or not toggle(".primary-toggle"):
            return ["no primary sidebar and toggle on a desktop page"]
        after = page.evaluate(where, ".bd-sidebar-primary")
        if after["shown"] == before["shown"]:
            problems.append(".primary-toggle did not hide or show the chapter list")
    return problems


# The checks that read a page without changing it, then the ones that click.
READING_CHECKS = (
    overflowing_equations,
    visible_solution_content,
    plumbing_in_code,
    temporary_paths_in_outputs,
    images_without_alt_text,
    wide_tables_without_scroll_hint,
)
CLICKING_CHECKS = (solutions_closed_after_one_click, drawers_that_do_not_open)
