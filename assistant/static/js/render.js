// The conversation as DOM: user turns, assistant turns with cause cards and questions, and
// the reproduction run's progress and verdict. Rendering only; what a click does is up to
// the `actions` that app.js passes in.

import { h, markdown } from "./dom.js";
import { historyFigure } from "./plot.js";

const humanFact = (key) => key.replaceAll("_", " ");
const display = (value) => (typeof value === "object" && value !== null ? JSON.stringify(value) : String(value));

function size(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function chip(kind, value) {
  return h("li", { class: "chip" }, h("span", { class: "chip-kind" }, kind), " ", value);
}

/** A user turn: their words, and what they attached or answered, as chips. */
export function userTurn(body) {
  const text = body.symptom || body.text || (body.reproduction ? "Validate with a short run" : "");
  const chips = [];
  const epochs = body.history && body.history.epoch ? ` (${body.history.epoch.length} epochs)` : "";
  if (body.metrics_filename) chips.push(chip("Training history", body.metrics_filename + epochs));
  else if (body.history) chips.push(chip("Training history", `pasted${epochs}`));
  const fields = (mapping) => (Object.keys(mapping).length ? `${Object.keys(mapping).length} fields` : "");
  if (body.dataset) chips.push(chip("Dataset summary", fields(body.dataset)));
  if (body.training) chips.push(chip("Training config", fields(body.training)));
  if (body.sample_bytes !== undefined) chips.push(chip("Data sample", size(body.sample_bytes)));
  const answers = Object.entries(body.facts || {}).map(([key, value]) => h("p", {},
    `${humanFact(key).replace(/^./, (first) => first.toUpperCase())}: ${display(value)}`));
  return h("section", { class: "turn user", "aria-label": "You" },
    h("div", { class: "bubble" },
      text ? h("p", {}, text) : null,
      answers,
      chips.length ? h("ul", { class: "chips", "aria-label": "Sent with it" }, chips) : null));
}

/** The marks the plot draws, from the facts the evidence measured on the latest history. */
function curveEvents(facts) {
  const events = [];
  if (Number.isInteger(facts.nan_epoch)) events.push({ kind: "nan", epoch: facts.nan_epoch, label: `NaN at epoch ${facts.nan_epoch}` });
  if (facts.loss_flat || facts.loss_constant) events.push({ kind: "plateau", label: "flat from the start" });
  if (Number.isInteger(facts.val_min_epoch)) {
    events.push({ kind: "val_min", epoch: facts.val_min_epoch, label: `val min, epoch ${facts.val_min_epoch}` });
  }
  return events;
}

function movement(rank, previous) {
  if (!previous) return null;
  const before = previous.get(rank.id);
  if (before === undefined) return h("span", { class: "moved new" }, "new");
  if (before === rank.at) return null;
  const up = before > rank.at;
  return h("span", { class: `moved ${up ? "up" : "down"}` }, `${up ? "▲ up" : "▼ down"} from #${before}`);
}

function snippet(cause, actions) {
  const { language, code } = cause.snippet;
  return h("div", { class: "snippet" },
    h("div", { class: "snippet-bar" },
      h("span", {}, language),
      h("button", { type: "button", class: "button small copy", "aria-label": `Copy the code for “${cause.title}”`,
        onclick: (event) => actions.copy(code, event.currentTarget) }, "Copy")),
    h("pre", { tabindex: "0", "aria-label": `Code for “${cause.title}”` }, h("code", {}, code)));
}

function feedback(cause, actions) {
  const group = h("div", { class: "feedback", role: "group", "aria-label": `Did “${cause.title}” help?` });
  const button = (verdict, label) => h("button", { type: "button", class: "button small", "aria-pressed": "false",
    "data-verdict": verdict, onclick: () => actions.feedback(cause.id, verdict, group) }, label);
  group.append(button("fixed", "This fixed it"), button("not_helpful", "Didn't help"),
    h("span", { class: "status", role: "status" }));
  return group;
}

function list(title, items, kind) {
  if (!items || !items.length) return null;
  return [h("h4", {}, title), h("ul", { class: kind }, ...items.map((item) => h("li", {}, item)))];
}

function causeCard(cause, at, previous, actions) {
  const titleId = `cause-${actions.turn}-${cause.id}`;
  const percent = Math.round(cause.confidence * 100);
  const bar = h("span", { class: "bar" });
  bar.style.width = `${percent}%`;
  return h("li", { class: "cause", "data-cause": cause.id },
    h("article", { "aria-labelledby": titleId },
      h("header", { class: "cause-head" },
        h("span", { class: "rank", "aria-hidden": "true" }, String(at)),
        h("h3", { id: titleId }, cause.title),
        h("span", { class: "category" }, cause.category),
        movement({ id: cause.id, at }, previous),
        h("span", { class: "confidence", title: "How likely this cause is, given what you sent" },
          h("span", { class: "meter", "aria-hidden": "true" }, bar), h("span", { class: "percent" }, `${percent}%`))),
      list("In your numbers", cause.evidence, "evidence"),
      list("Against it", cause.against, "against"),
      cause.explanation ? h("p", { class: "explanation" }, cause.explanation) : null,
      cause.fix ? h("p", { class: "fix" }, h("strong", {}, "Fix: "), cause.fix) : null,
      cause.effect ? h("p", { class: "effect" }, cause.effect) : null,
      cause.snippet ? snippet(cause, actions) : null,
      feedback(cause, actions)));
}

function questionForm(question, actions) {
  const inputId = `answer-${question.fact}`;
  const textId = `question-${question.fact}`;
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const input = h("input", { id: inputId, name: "value", type: "text", autocomplete: "off",
    placeholder: question.choices.length ? "or type a value" : "your answer" });
  const form = h("form", { class: "question", "data-fact": question.fact, onsubmit: (event) => {
    event.preventDefault();
    if (input.value.trim()) actions.answer(question.fact, input.value.trim(), error);
    else input.focus();
  } });
  const choices = question.choices.map((choice) => h("button", { type: "button", class: "button choice",
    onclick: () => actions.answer(question.fact, choice, error) }, choice));
  form.append(
    h("p", { class: "question-text", id: textId }, question.text),
    h("div", { class: "answers" },
      choices.length ? h("div", { class: "choices", role: "group", "aria-labelledby": textId }, choices) : null,
      h("div", { class: "other" },
        h("label", { for: inputId, class: "visually-hidden" }, `Your answer to: ${question.text}`),
        input, h("button", { type: "submit", class: "button small" }, "Send"))),
    error);
  return form;
}

function questions(items, actions) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  return h("section", { class: "questions", "aria-labelledby": `questions-${actions.turn}` },
    h("h3", { id: `questions-${actions.turn}` }, "To tell these apart"),
    ...items.map((question) => questionForm(question, actions)),
    h("button", { type: "button", class: "button quiet", onclick: () => actions.skip(error) }, "I don't know these"),
    error);
}

/** The reply's opening paragraph ("What I see: ..."), which the cards below do not repeat. */
function reading(text) {
  const first = (text || "").split(/\n\s*\n/, 1)[0];
  if (!first || first.startsWith("Most likely causes")) return null;
  return h("div", { class: "reading" }, ...markdown(first));
}

/** A reproduction run's verdict, above the causes it re-ranked: its headline, the run's plot (app.js draws it into the slot), the details. */
function verdict(summary) {
  const [headline, ...details] = markdown(summary.verdict || "");
  return h("div", { class: "verdict" },
    h("h3", {}, "Short run"), headline, h("div", { class: "run-plot", "data-run": summary.id }), details);
}

/** The ranked cause cards under the reply's reading (or a run's verdict). */
function replyBody(reply, previous, actions) {
  if (!reply.causes.length) return h("p", { class: "reading" }, "No cause stands out yet; tell me more about the model and the data.");
  // A verdict's text opens with the verdict itself, shown above.
  return [reply.reproduction ? verdict(reply.reproduction) : reading(reply.text),
    h("ol", { class: "causes", "aria-label": "Likely causes, most likely first" },
      ...reply.causes.map((cause, i) => causeCard(cause, i + 1, previous, actions)))];
}

/** An assistant turn: the plot of the history it answered, the ranked cause cards, and (latest only) its questions. */
function assistantTurn(reply, { seq, history, events, previous, latest, runs, actions }) {
  const turnActions = { ...actions, turn: seq };
  return h("section", { class: "turn assistant", tabindex: "-1", "aria-labelledby": `turn-${seq}`, "data-seq": seq },
    h("h2", { class: "who", id: `turn-${seq}` }, h("span", { class: "logo", "aria-hidden": "true" }, "K"), "Assistant"),
    history ? historyFigure(history, events) : null,
    replyBody(reply, previous, turnActions),
    latest && reply.questions.length ? questions(reply.questions, turnActions) : null,
    latest && runs ? h("div", { class: "run-offer" },
      h("button", { type: "button", class: "button", onclick: (event) => actions.validate(event.currentTarget) },
        "Validate with a short run"),
      h("span", { class: "hint" }, "Trains your setup and the leading fixes for a few epochs on data shaped like yours.")) : null);
}

/** Every turn of a conversation, with rank changes against the reply before and the latest history's events marked. */
export function transcript(conversation, actions) {
  const lastHistorySeq = Math.max(0, ...conversation.turns.filter((t) => t.body.history).map((t) => t.seq));
  const events = curveEvents(conversation.facts);
  const lastSeq = conversation.turns.length ? conversation.turns[conversation.turns.length - 1].seq : 0;
  const nodes = [];
  let history = null;
  let historySeq = 0;
  let previous = null;
  for (const turn of conversation.turns) {
    if (turn.role === "user") {
      nodes.push(userTurn(turn.body));
      [history, historySeq] = turn.body.history ? [turn.body.history, turn.seq] : [null, 0];
      continue;
    }
    nodes.push(assistantTurn(turn.body, {
      seq: turn.seq, history, events: historySeq === lastHistorySeq ? events : [], previous,
      latest: turn.seq === lastSeq, runs: Boolean(conversation.reproductions), actions,
    }));
    previous = new Map(turn.body.causes.map((cause, i) => [cause.id, i + 1]));
  }
  return nodes;
}

/** "Thinking" while the service answers. */
export function pendingTurn(text) {
  return h("section", { class: "turn assistant pending", "aria-label": "Assistant" },
    h("p", { class: "who" }, h("span", { class: "logo", "aria-hidden": "true" }, "K"), "Assistant"),
    h("p", { class: "thinking" }, h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), text));
}

/** A run's live progress; `update` redraws it from the latest GET of the run. */
export function runProgress() {
  const bar = h("progress", { max: "1", "aria-label": "Short run progress" });
  const text = h("span", { class: "run-status" }, "Starting the short run…");
  const node = h("section", { class: "turn assistant", "aria-label": "Short run", "aria-busy": "true" },
    h("p", { class: "who" }, h("span", { class: "logo", "aria-hidden": "true" }, "K"), "Short run"),
    h("div", { class: "progress" }, bar, text));
  function update(run) {
    const { epoch = 0, epochs, experiment } = run.progress || {};
    if (run.status === "running" && epochs) {
      const step = (run.plan || []).find((planned) => planned.name === experiment);
      bar.max = epochs;
      bar.value = epoch;
      text.textContent = `${step ? `${step.title}: ` : "Training: "}epoch ${epoch} of ${epochs}`;
    } else {
      bar.removeAttribute("value");
      text.textContent = run.status === "queued" ? "Waiting for a worker…" : "Preparing the run…";
    }
  }
  return { node, update };
}
