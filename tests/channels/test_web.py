"""The chat page, end to end: the real app served on loopback, driven in headless Chromium by Playwright.

Chromium comes from the distribution (``apt-get install chromium``); without it these tests
skip on a developer's machine and fail in CI (``CI`` set), where they must run. Each test
saves a screenshot of the state it reaches to ``docs/screenshots/``.
"""
from __future__ import annotations

import os
import re
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from assistant import db
from tests.helpers import app_factory, serving
from tests.repro.cases import RUNNABLE_DATASET, RUNNABLE_TRAINING

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ASSISTANT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# No network on CI machines: nothing may try to reach out, and no GPU is needed.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 780}
API = "/api/v1/conversations"
REPLIES = ".turn.assistant[data-seq]"  # answered turns, not the "thinking" placeholder

# A CSVLogger file (0-based epochs) whose loss falls, blows up and turns NaN at the 4th epoch.
NAN_CSV = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
    f"{epoch},{acc},{loss},{val_acc},{val_loss}\n" for epoch, (acc, loss, val_acc, val_loss) in enumerate([
        (0.61, 0.662, 0.66, 0.641), (0.71, 0.571, 0.72, 0.552), (0.69, 2.94, 0.52, 3.87),
        (0.50, "nan", 0.50, "nan"), (0.50, "nan", 0.50, "nan"), (0.50, "nan", 0.50, "nan"),
    ]))
# Three balanced classes, loss stuck at ln 3 from the first epoch: the assistant needs to ask.
FLAT_CSV = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
    f"{epoch},0.3359,{1.0987 - epoch * 0.000004:.6f},0.3250,{1.0986 + epoch * 0.000004:.6f}\n" for epoch in range(10))
# Line 3 holds a word where the loss should be.
BROKEN_CSV = "epoch,accuracy,loss\n0,0.51,0.69\n1,0.52,oops\n2,0.53,0.68\n"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def serve(tmp_path):
    """Serve a fresh app on a loopback port; returns the app (for seeding and checks) and its base URL."""
    with app_factory(DATABASE_URL=f"sqlite:///{tmp_path / 'assistant.sqlite'}") as make, ExitStack() as servers:

        def start(**config):
            app = make(**config)
            return app, servers.enter_context(serving(app))

        yield start


@pytest.fixture
def site(serve):
    return serve()


@pytest.fixture
def open_page(browser):
    """Open pages in fresh browser contexts; a script error on any of them fails the test."""
    contexts, errors = [], []

    def open_(base_url: str, path: str = "/", viewport: dict = LAPTOP):
        context = browser.new_context(base_url=base_url, viewport=viewport,
                                      permissions=["clipboard-read", "clipboard-write"])
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, errors


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def seed(app, **body) -> str:
    """Start a conversation through the API, as another tab or client would."""
    response = app.test_client().post(API, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def cause_ids(turn) -> list[str]:
    return turn.locator(".cause").evaluate_all("cards => cards.map(card => card.dataset.cause)")


def test_start_with_a_csvlogger_upload_shows_ranked_causes_and_the_plot(site, open_page, tmp_path):
    app, url = site
    page = open_page(url)
    expect(page.get_by_role("heading", name="Why isn't my model learning?")).to_be_visible()
    screenshot(page, "01-start")

    log = tmp_path / "training.log"
    log.write_text(NAN_CSV)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files(str(log))
    expect(page.get_by_label("Send training.log as")).to_have_value("metrics")
    page.get_by_label("Message").fill("My loss goes to NaN after a few epochs")
    page.get_by_label("Message").press("Enter")

    reply = page.locator(REPLIES)
    expect(reply).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/c/conv-[0-9a-f]{32}$"))
    expect(page.locator(".turn.user")).to_contain_text("training.log (6 epochs)")
    cards = reply.locator(".cause")
    assert cards.count() >= 2
    confidences = [float(text.rstrip("%")) for text in cards.locator(".percent").all_inner_texts()]
    assert confidences == sorted(confidences, reverse=True) and confidences[0] > 0
    expect(cards.first.locator(".evidence")).to_contain_text("epoch 4")  # the user's own numbers
    expect(cards.first.locator(".explanation")).not_to_be_empty()
    expect(cards.first.locator(".effect")).to_contain_text("On a short test run with this fault, the fix took")
    expect(cards.first.locator("pre code")).to_contain_text("import")
    expect(reply.locator("[data-event=nan]")).to_contain_text("NaN at epoch 4")
    expect(reply.locator("[data-event=val_min]")).to_contain_text("epoch 2")
    expect(reply.locator("svg.panel").first).to_have_attribute("aria-label", re.compile("NaN at epoch 4"))
    expect(reply).to_be_focused()
    screenshot(page, "02-diagnosis")


def test_attached_files_are_sorted_by_kind(site, open_page, tmp_path):
    app, url = site
    page = open_page(url)
    data = Path(__file__).resolve().parents[1] / "evidence" / "data"
    (tmp_path / "dataset.json").write_text('{"task": "multiclass_classification", "n_classes": 3, "n_samples": 600}')
    (tmp_path / "sample.csv").write_text("x1,x2,label\n0.1,0.2,0\n0.3,0.1,1\n0.2,0.2,2\n")
    files = [data / "lightning_metrics.csv", data / "run-validation-tag-epoch_accuracy.csv",
             tmp_path / "dataset.json", tmp_path / "sample.csv"]
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files([str(path) for path in files])
    expect(page.get_by_label("Send lightning_metrics.csv as")).to_have_value("metrics")
    expect(page.get_by_label("Send run-validation-tag-epoch_accuracy.csv as")).to_have_value("metrics")  # TensorBoard
    expect(page.get_by_label("Send dataset.json as")).to_have_value("dataset")
    expect(page.get_by_label("Send sample.csv as")).to_have_value("sample")

    page.get_by_label("Message").fill("validation accuracy will not go up")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_have_text("Send one training history at a time (a file or a pasted log).")
    page.get_by_role("button", name="Remove run-validation-tag-epoch_accuracy.csv").click()
    page.get_by_role("button", name="Send").click()

    expect(page.locator(REPLIES)).to_have_count(1)
    sent = page.locator(".turn.user .chip")
    expect(sent).to_have_text([re.compile("Training history lightning_metrics.csv"), "Dataset summary 3 fields",
                               re.compile(r"Data sample \d+ bytes")])
    expect(page.locator(".turn.assistant svg.panel").first).to_be_visible()


def test_a_history_with_any_separator_or_in_utf_16_is_not_taken_for_a_data_sample(site, open_page, tmp_path):
    app, url = site
    page = open_page(url)
    data = Path(__file__).resolve().parents[1] / "evidence" / "data"
    (tmp_path / "history_utf16.csv").write_bytes((data / "csvlogger_semicolon.csv").read_text().encode("utf-16"))
    (tmp_path / "rows.csv").write_text("x1;x2;label\n0.1;0.2;0\n0.3;0.1;1\n")
    files = [data / "csvlogger_semicolon.csv", data / "csvlogger_tab.tsv", tmp_path / "history_utf16.csv",
             tmp_path / "rows.csv"]
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files([str(path) for path in files])
    for name in ("csvlogger_semicolon.csv", "csvlogger_tab.tsv", "history_utf16.csv"):
        expect(page.get_by_label(f"Send {name} as")).to_have_value("metrics")
    expect(page.get_by_label("Send rows.csv as")).to_have_value("sample")


def test_copy_a_snippet(site, open_page):
    app, url = site
    conversation = seed(app, symptom="loss becomes nan", metrics=NAN_CSV)
    page = open_page(url, f"/c/{conversation}")
    card = page.locator(".cause").first
    card.get_by_role("button", name=re.compile("^Copy the code")).click()
    expect(card.locator(".copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == card.locator("pre code").inner_text()


def test_answering_a_question_re_ranks_the_causes(site, open_page):
    app, url = site
    conversation = seed(app, symptom="The loss barely changes between epochs", metrics=FLAT_CSV)
    page = open_page(url, f"/c/{conversation}")
    expect(page.locator("[data-event=plateau]")).to_contain_text("flat from the start")
    questions = page.locator(".question")
    assert questions.count() >= 1
    first = questions.first
    fact = first.get_attribute("data-fact")
    before = cause_ids(page.locator(".turn.assistant"))
    confidences_before = page.locator(".turn.assistant .percent").all_inner_texts()
    choice = first.locator(".choice").last  # the far end of the choices is the likelier to move the ranking
    if choice.count():
        answer = choice.inner_text()
        choice.click()
    else:
        answer = "3"
        first.get_by_role("textbox").fill(answer)
        first.get_by_role("button", name="Send").click()

    replies = page.locator(REPLIES)
    expect(replies).to_have_count(2)
    expect(page.locator(".turn.user").nth(1)).to_contain_text(f"{fact.replace('_', ' ')}: {answer}", ignore_case=True)
    after = cause_ids(replies.nth(1))
    confidences_after = replies.nth(1).locator(".percent").all_inner_texts()
    assert (after, confidences_after) != (before, confidences_before), "the answer changed nothing"
    if after != before:  # the cards say what moved
        expect(replies.nth(1).locator(".moved").first).to_be_visible()
    # Only the latest reply offers its questions.
    expect(replies.first.locator(".question")).to_have_count(0)
    screenshot(page, "03-answered")


def test_a_broken_line_is_left_out_and_the_reply_says_which(site, open_page):
    app, url = site
    page = open_page(url)
    dropped = page.evaluate_handle("""([name, text]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([text], name, {type: "text/csv"}));
        return transfer;
    }""", ["broken.csv", BROKEN_CSV])
    page.dispatch_event("#log", "dragenter", {"dataTransfer": dropped})
    expect(page.locator("#drop-overlay")).to_be_visible()
    page.dispatch_event("#log", "drop", {"dataTransfer": dropped})
    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(page.get_by_label("Send broken.csv as")).to_have_value("metrics")
    page.get_by_label("Message").fill("accuracy is stuck")
    page.get_by_role("button", name="Send").click()

    expect(page.locator(REPLIES)).to_have_count(1)  # the rest of the file is read and answered
    expect(page.locator(".turn.assistant .reading")).to_contain_text(
        "line 3 was left out (expected a number in column loss, got 'oops')")
    screenshot(page, "04-bad-file")


def test_a_past_conversation_opens_from_the_list_and_by_its_url(site, open_page):
    app, url = site
    older = seed(app, symptom="validation loss goes up after epoch 2", metrics=NAN_CSV)
    newer = seed(app, symptom="my loss is flat", metrics=FLAT_CSV)
    page = open_page(url)
    links = page.get_by_role("navigation", name="Conversations").get_by_role("link")
    expect(links.nth(1)).to_contain_text("my loss is flat")
    expect(links.nth(2)).to_contain_text("validation loss goes up after epoch 2")
    links.nth(2).click()
    expect(page).to_have_url(f"{url}/c/{older}")
    expect(page.get_by_role("heading", level=1)).to_have_text("validation loss goes up after epoch 2")
    expect(page.locator("[aria-current=page]")).to_contain_text("validation loss goes up")

    shared = open_page(url, f"/c/{newer}")  # a shared link, opened in another browser
    expect(shared.locator(".turn.user")).to_have_text(re.compile("my loss is flat"))
    expect(shared.locator(".turn.assistant .cause").first).to_be_visible()

    missing = open_page(url, "/c/conv-" + "0" * 32)
    expect(missing.get_by_role("alert")).to_contain_text("This conversation does not exist here")


def test_feedback_buttons_record_the_verdict(site, open_page):
    app, url = site
    conversation = seed(app, symptom="loss becomes nan", metrics=NAN_CSV)
    page = open_page(url, f"/c/{conversation}")
    card = page.locator(".cause").first
    cause = card.get_attribute("data-cause")
    card.get_by_role("button", name="This fixed it").click()
    expect(card.get_by_role("button", name="This fixed it")).to_have_attribute("aria-pressed", "true")
    expect(card.locator(".feedback .status")).to_contain_text("Recorded")
    with app.app_context(), db.get_engine().connect() as connection:
        rows = connection.execute(db.feedback.select()).all()
    assert [(r.conversation_id, r.cause_id, r.verdict) for r in rows] == [(conversation, cause, "fixed")]


def test_a_narrow_window_and_the_keyboard(site, open_page):
    app, url = site
    conversation = seed(app, symptom="The loss barely changes between epochs", metrics=FLAT_CSV)
    page = open_page(url, f"/c/{conversation}", viewport=NARROW)
    expect(page.get_by_role("navigation", name="Conversations")).to_be_hidden()
    menu = page.get_by_role("button", name="Conversations")
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("link", name="New conversation")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("navigation", name="Conversations")).to_be_hidden()
    expect(menu).to_be_focused()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], "the page scrolls sideways"
    screenshot(page, "05-narrow")

    # Answer a question with the keyboard alone: focus its input, type, Enter. A value the
    # service cannot read is refused next to the question, in words.
    question = page.locator(".question").first
    fact = question.get_attribute("data-fact").replace("_", " ")
    question.get_by_role("textbox").focus()
    page.keyboard.type("??")
    page.keyboard.press("Enter")
    expect(question.get_by_role("alert")).to_have_text(re.compile(f'^{fact}: expected .*, got "\\?\\?"$', re.I))
    choices = question.locator(".choice")
    page.keyboard.press("Control+A")
    page.keyboard.type(choices.first.inner_text() if choices.count() else "3")
    page.keyboard.press("Enter")
    expect(page.locator(REPLIES)).to_have_count(2)


def test_a_service_with_tokens_asks_for_one(serve, open_page):
    app, url = serve(API_TOKENS=["s3cret"])
    page = open_page(url)
    dialog = page.get_by_role("dialog", name="API token")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Token").fill("s3cret")
    dialog.get_by_role("button", name="Use this token").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#past")).to_contain_text("Your conversations will appear here")
    page.get_by_label("Message").fill("loss is nan")
    page.get_by_role("button", name="Paste a console log").click()
    page.get_by_label("Console log").fill("Epoch 1/2\n32/32 - 1s - loss: 0.9\nEpoch 2/2\n32/32 - 1s - loss: nan\n")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".turn.assistant .cause").first).to_be_visible()
    expect(page.locator(".turn.user")).to_contain_text("pasted (2 epochs)")


@pytest.mark.tf  # the run trains in a worker process
def test_validate_with_a_short_run(site, open_page):
    app, url = site
    conversation = seed(app, symptom="loss becomes nan", metrics=NAN_CSV, training=RUNNABLE_TRAINING, dataset=RUNNABLE_DATASET)
    # REPRO_BACKEND defaults to local: every service offers short runs.
    assert app.test_client().get(f"{API}/{conversation}").get_json().get("reproductions")
    page = open_page(url, f"/c/{conversation}")
    page.get_by_role("button", name="Validate with a short run").click()
    expect(page.get_by_role("progressbar", name="Short run progress")).to_be_visible()
    expect(page.locator(".run-status")).to_contain_text(re.compile("epoch|Waiting|Preparing"))

    verdict = page.locator(".verdict")
    expect(verdict).to_be_visible(timeout=240_000)  # TensorFlow starts in a worker, then trains every experiment
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.locator(".turn.user").last).to_have_text("Validate with a short run")
    expect(verdict.get_by_role("heading", name="Short run")).to_be_visible()
    expect(verdict).to_contain_text(re.compile("Reproduced|Not reproduced|Could not run"))
    expect(verdict.locator("svg.panel")).to_have_count(2)  # loss and validation loss of every experiment
    expect(page.locator(REPLIES).last.locator(".cause").first).to_be_visible()  # re-ranked with what the run measured
    page.locator(REPLIES).last.scroll_into_view_if_needed()
    verdict.scroll_into_view_if_needed()
    screenshot(page, "06-run-verdict")


def test_another_sites_page_cannot_make_the_browser_send_a_change(site, browser):
    app, url = site
    # A page of another site posts a form to the service, as a forged request would: the browser
    # says where it comes from, and the service refuses it.
    forged = (f'<form method="post" enctype="multipart/form-data" action="{url}{API}">'
              '<input name="symptom" value="forged"></form><script>document.forms[0].submit()</script>')
    context = browser.new_context()
    context.route("http://evil.test/", lambda route: route.fulfill(body=forged, content_type="text/html"))
    page = context.new_page()
    with page.expect_response(f"{url}{API}") as answered:
        page.goto("http://evil.test/")
    assert answered.value.status == 403 and "cross_site_request" in answered.value.text()
    context.close()
    assert app.test_client().get(API).get_json() == {"conversations": []}
