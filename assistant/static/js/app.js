// The chat page's controller: the composer, attachments, the past-conversations list, and the
// calls behind every button. All state lives on the server; the page re-reads the conversation
// after each turn and draws it again.

import { api, token } from "./api.js";
import { h } from "./dom.js";
import { experimentsFigure } from "./plot.js";
import { pendingTurn, runProgress, transcript, userTurn } from "./render.js";

const API = "/api/v1/conversations";
const ROLES = { metrics: "Training history", dataset: "Dataset summary", sample: "Data sample" };
const FINISHED = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 1000;

const $ = (selector) => document.querySelector(selector);
const ui = {
  layout: $("#layout"), log: $("#log"), title: $("#title"), share: $("#share"), menu: $("#menu"), past: $("#past"),
  composer: $("#composer"), message: $("#message"), error: $("#composer-error"), attachments: $("#attachments"),
  files: $("#files"), attach: $("#attach"), paste: $("#paste"), pasteText: $("#paste-text"),
  pasteToggle: $("#paste-toggle"), send: $("#send"), overlay: $("#drop-overlay"), announce: $("#announce"),
  tokenDialog: $("#token-dialog"), tokenForm: $("#token-form"), token: $("#token"),
};
const welcome = $("#welcome");
const state = { id: document.body.dataset.conversationId || null, conversation: null, attachments: [], busy: false };
/** The API address of the open conversation. */
const here = () => `${API}/${encodeURIComponent(state.id)}`;

// --- errors, in place and in plain words ----------------------------------------------------

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The API's message as a sentence for a person, naming the file at fault when there is one. */
function explain(error, attachments = []) {
  if (error.status === 401) {
    if (!ui.tokenDialog.open) ui.tokenDialog.showModal();
    return "This service needs an API token; enter it and try again.";
  }
  if (error.status === 404 && error.code === "not_found") {
    return "This conversation does not exist here, or it was started with another API token.";
  }
  if (error.status === 413) return "That is more than the service accepts in one message; send a smaller file.";
  const [field, ...rest] = error.message.split(": ");
  const problem = rest.join(": ");
  const file = attachments.find((item) => item.role === field);
  if (file && rest.length) return `${file.file.name} could not be read: ${problem}`;
  if (field === "metrics" && rest.length) return `The pasted log could not be read: ${problem}`;
  if (field.startsWith("facts.") && rest.length) return capitalize(`${field.slice(6).replaceAll("_", " ")}: ${problem}`);
  return capitalize(error.message);
}

function showError(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

function announce(message) {
  ui.announce.textContent = message;
}

// --- attachments ---------------------------------------------------------------------------

/**
 * Guess what a file is from its name and first line: a history, a dataset summary or a data sample.
 * The first line may be separated by commas, semicolons (CSVLogger(separator=";")), tabs or bars, and
 * the file may be UTF-16 (PowerShell's >), which reads here as its characters with NULs between them.
 */
async function guessRole(file) {
  const head = (await file.slice(0, 4096).text()).replace(/\u0000/g, "").replace(/^[\uFEFF\uFFFD]+/, "").trimStart();
  const firstLine = head.split(/\r?\n/, 1)[0].toLowerCase();
  if (/\.json$/i.test(file.name) || head.startsWith("{") || head.startsWith("[")) {
    return /"(val_)?loss"/.test(head) || head.startsWith("[") ? "metrics" : "dataset";
  }
  if (/\.(csv|tsv)$/i.test(file.name)) {
    return /(^|[,;\t|])"?(epoch|step|wall time|loss|train_loss)"?([,;\t|]|$)/.test(firstLine) ? "metrics" : "sample";
  }
  return "metrics";
}

async function attach(files) {
  for (const file of files) state.attachments.push({ file, role: await guessRole(file) });
  drawAttachments();
  showError(ui.error, "");
  announce(`${files.length} file${files.length === 1 ? "" : "s"} attached.`);
}

function drawAttachments() {
  ui.attachments.replaceChildren(...state.attachments.map((item, index) => {
    const select = h("select", { "aria-label": `Send ${item.file.name} as`, onchange: (event) => { item.role = event.target.value; } },
      ...Object.entries(ROLES).map(([role, label]) => h("option", { value: role, selected: role === item.role }, label)));
    return h("li", { class: "attachment" },
      h("span", { class: "file-name" }, item.file.name), select,
      h("button", { type: "button", class: "button small quiet", "aria-label": `Remove ${item.file.name}`, onclick: () => {
        state.attachments.splice(index, 1);
        drawAttachments();
        ui.message.focus();
      } }, "✕"));
  }));
}

function resetComposer() {
  state.attachments = [];
  drawAttachments();
  ui.message.value = "";
  ui.pasteText.value = "";
  togglePaste(false);
  showError(ui.error, "");
  ui.message.placeholder = "Answer, add details, or attach a new history…";
}

function togglePaste(open = ui.paste.hidden) {
  ui.paste.hidden = !open;
  ui.pasteToggle.setAttribute("aria-expanded", String(open));
  if (open) ui.pasteText.focus();
}

function setBusy(busy) {
  state.busy = busy;
  ui.send.disabled = busy;
  ui.log.setAttribute("aria-busy", String(busy));
  for (const button of ui.log.querySelectorAll(".questions button, .run-offer button")) button.disabled = busy;
}

// --- sending turns -------------------------------------------------------------------------

/** Show the user's turn at once, send it, then redraw the conversation from the server. */
async function exchange(preview, request, errorBox, attachments = []) {
  if (state.busy) return;
  setBusy(true);
  showError(errorBox, "");
  welcome.hidden = true;
  const pending = [userTurn(preview), pendingTurn("Reading your numbers…")];
  ui.log.append(...pending);
  pending[1].scrollIntoView({ block: "end" });
  try {
    const answer = await request();
    if (!state.id) {
      state.id = answer.id;
      history.pushState({ id: answer.id }, "", `/c/${answer.id}`);
    }
    resetComposer();
    await showConversation({ focus: true });
    listConversations();
  } catch (error) {
    pending.forEach((node) => node.remove());
    welcome.hidden = false;  // back on a page that has not started yet; gone from one that has
    showError(errorBox, explain(error, attachments));
    if (errorBox === ui.error) ui.message.focus();
  } finally {
    setBusy(false);
  }
}

/** The composer's content as a request: multipart for a new conversation, JSON for a further turn. */
async function composed() {
  const text = ui.message.value.trim();
  const pasted = ui.pasteText.value.trim();
  const items = [...state.attachments];
  const count = (role) => items.filter((item) => item.role === role).length + (role === "metrics" && pasted ? 1 : 0);
  if (!text && !pasted && !items.length) throw new Error("Write a message or attach a file first.");
  for (const role of Object.keys(ROLES)) {
    if (count(role) > 1) throw new Error(`Send one ${ROLES[role].toLowerCase()} at a time (a file or a pasted log).`);
  }
  const metricsFile = items.find((item) => item.role === "metrics");
  const preview = {
    metrics_filename: metricsFile ? metricsFile.file.name : pasted ? "pasted log" : undefined,
    dataset: items.some((item) => item.role === "dataset") ? {} : undefined,
    sample_bytes: items.find((item) => item.role === "sample")?.file.size,
  };
  if (!state.id) {
    if (!text) throw new Error("Describe the problem in a few words too, e.g. “accuracy is stuck at 50%”.");
    const form = new FormData();
    form.append("symptom", text);
    if (pasted) form.append("metrics", pasted);
    for (const item of items) form.append(item.role, item.file, item.file.name);
    return { preview: { ...preview, symptom: text }, items, request: () => api(API, { method: "POST", form }) };
  }
  const body = {};
  if (text) body.text = text;
  if (pasted) body.metrics = pasted;
  for (const item of items) {
    if (item.role === "sample") throw new Error("A data sample can only come with a conversation's first message; start a new conversation to send one.");
    const content = await item.file.text();
    if (item.role === "metrics") body.metrics = content;
    else {
      try {
        body.dataset = JSON.parse(content);
      } catch (error) {
        throw new Error(`${item.file.name} is not valid JSON: ${error.message}`);
      }
    }
  }
  return { preview: { ...preview, text }, items, request: () => api(`${here()}/turns`, { method: "POST", json: body }) };
}

async function send(event) {
  event.preventDefault();
  if (state.busy) return;
  let message;
  try {
    message = await composed();
  } catch (error) {
    showError(ui.error, error.message);
    ui.message.focus();
    return;
  }
  await exchange(message.preview, message.request, ui.error, message.items);
}

// --- what the buttons in a turn do -----------------------------------------------------------

const actions = {
  answer(fact, value, errorBox) {
    const facts = { [fact]: value };
    exchange({ facts }, () => api(`${here()}/turns`, { method: "POST", json: { facts } }), errorBox);
  },

  skip(errorBox) {
    const text = "I don't know";
    exchange({ text }, () => api(`${here()}/turns`, { method: "POST", json: { text } }), errorBox);
  },

  async copy(code, button) {
    try {
      await navigator.clipboard.writeText(code);
    } catch {
      // No clipboard API (a page served over plain http on another host): copy the old way.
      const area = h("textarea", { class: "visually-hidden" }, code);
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    const label = (button.dataset.label ||= button.textContent);
    button.textContent = "Copied";
    announce("Copied to the clipboard.");
    setTimeout(() => { button.textContent = label; }, 2000);
  },

  async feedback(cause, verdict, group) {
    const status = group.querySelector(".status");
    status.classList.remove("error");
    try {
      await api(`${here()}/feedback`, { method: "POST", json: { cause, verdict } });
      for (const button of group.querySelectorAll("button")) button.setAttribute("aria-pressed", String(button.dataset.verdict === verdict));
      status.textContent = verdict === "fixed" ? "Thanks, glad it worked. Recorded." : "Thanks, noted.";
    } catch (error) {
      status.classList.add("error");
      status.textContent = explain(error);
    }
  },

  /** Start a run and follow it by polling (an EventSource could not send the API token); its verdict is the next turn. */
  async validate(button) {
    button.disabled = true;
    const progress = runProgress();
    ui.log.append(progress.node);
    progress.node.scrollIntoView({ block: "end" });
    try {
      let run = await api(state.conversation.reproductions, { method: "POST", json: {} });
      while (!FINISHED.has(run.status)) {
        progress.update(run);
        await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
        run = await api(run.links.self);
      }
      if (run.status !== "done") {
        throw new Error(`The short run ${run.status === "cancelled" ? "was cancelled" : "failed"}: ${run.error || "no reason given"}.`);
      }
      await showConversation({ focus: true });
    } catch (error) {
      if (error.code === "missing_facts") {  // the conversation now asks for what the run needs
        await showConversation({ focus: true });
        return;
      }
      progress.node.replaceWith(h("p", { class: "error", role: "alert" }, explain(error)));
      button.disabled = false;
    }
  },
};

// --- loading conversations -----------------------------------------------------------------

async function showConversation({ focus = false } = {}) {
  try {
    state.conversation = await api(here());
  } catch (error) {
    ui.log.replaceChildren(h("p", { class: "error panel", role: "alert" }, explain(error)));
    ui.title.textContent = error.status === 404 ? "Conversation not found" : "Conversation could not be loaded";
    return;
  }
  const conversation = state.conversation;
  ui.title.textContent = conversation.title;
  document.title = `${conversation.title} · Keras troubleshooter`;
  ui.share.hidden = false;
  ui.log.replaceChildren(...transcript(conversation, actions));
  const turns = ui.log.querySelectorAll(".turn.assistant");
  const latest = turns[turns.length - 1];
  if (!latest) return;
  // Show the latest exchange from its start: the user's message, then the reply.
  const asked = latest.previousElementSibling;
  (asked && asked.classList.contains("user") ? asked : latest).scrollIntoView({ block: "start" });
  if (focus) {
    latest.focus({ preventScroll: true });
    const causes = conversation.turns[conversation.turns.length - 1].body.causes;
    announce(`The assistant replied: ${causes.length ? `most likely ${causes[0].title}` : "no cause stands out yet"}.`);
  }
  await drawRunPlots();
}

/** Each verdict's experiments, from its run; without them the verdict's words stand alone. */
async function drawRunPlots() {
  for (const slot of ui.log.querySelectorAll(".run-plot[data-run]")) {
    if (!state.conversation.reproductions) {
      slot.remove();
      continue;
    }
    try {
      const run = await api(`${state.conversation.reproductions}/${encodeURIComponent(slot.dataset.run)}`);
      slot.replaceWith(experimentsFigure((run.result && run.result.experiments) || []) || "");
    } catch {
      slot.remove();
    }
  }
}

function relativeTime(iso) {
  const minutes = Math.round((Date.parse(iso) - Date.now()) / 60000);
  const format = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  if (Math.abs(minutes) < 60) return format.format(minutes, "minute");
  if (Math.abs(minutes) < 60 * 24) return format.format(Math.round(minutes / 60), "hour");
  return format.format(Math.round(minutes / 1440), "day");
}

async function listConversations() {
  let listed;
  try {
    listed = await api(API);
  } catch (error) {
    ui.past.replaceChildren(h("li", { class: "error" }, explain(error)));
    return;
  }
  if (!listed.conversations.length) {
    ui.past.replaceChildren(h("li", { class: "empty" }, "Your conversations will appear here."));
    return;
  }
  ui.past.replaceChildren(...listed.conversations.map((item) => h("li", {},
    h("a", { href: `/c/${item.id}`, "aria-current": item.id === state.id ? "page" : null },
      h("span", { class: "past-title" }, item.title),
      h("time", { datetime: item.updated_at }, relativeTime(item.updated_at))))));
}

// --- wiring --------------------------------------------------------------------------------

ui.composer.addEventListener("submit", send);
ui.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});
ui.attach.addEventListener("click", () => ui.files.click());
ui.files.addEventListener("change", () => {
  attach([...ui.files.files]);
  ui.files.value = "";
});
ui.pasteToggle.addEventListener("click", () => togglePaste());
function toggleSidebar(open) {
  ui.layout.classList.toggle("sidebar-open", open);
  ui.menu.setAttribute("aria-expanded", String(open));
}
ui.menu.addEventListener("click", () => toggleSidebar(!ui.layout.classList.contains("sidebar-open")));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.layout.classList.contains("sidebar-open")) {
    toggleSidebar(false);
    ui.menu.focus();
  }
});
ui.share.addEventListener("click", () => actions.copy(location.href, ui.share));
ui.tokenForm.addEventListener("submit", () => {
  token.set(ui.token.value.trim());
  listConversations();
  if (state.id) showConversation();
});

// Files dropped anywhere on the page are attached (a browser would otherwise open them).
let dragDepth = 0;
document.addEventListener("dragenter", (event) => {
  if (!event.dataTransfer.types.includes("Files")) return;
  dragDepth += 1;
  ui.overlay.hidden = false;
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) ui.overlay.hidden = true;
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  ui.overlay.hidden = true;
  if (event.dataTransfer.files.length) attach([...event.dataTransfer.files]);
});

window.addEventListener("popstate", () => location.reload());

listConversations();
if (state.id) {
  ui.message.placeholder = "Answer, add details, or attach a new history…";
  showConversation();
}
