// A tiny element builder: every value lands as text or an attribute, never as HTML, so nothing
// a user or the API sends can become markup.

/** h("button", {class: "primary", onclick: fn}, "Send") */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/** **bold**, _italic_ and `code` within a line, as nodes. */
function inline(text) {
  return text.split(/(\*\*[^*]+\*\*|(?<!\w)_[^_]+_(?!\w)|`[^`]+`)/).filter(Boolean).map((part) => {
    if (/^\*\*.+\*\*$/.test(part)) return h("strong", {}, part.slice(2, -2));
    if (/^`.+`$/.test(part)) return h("code", {}, part.slice(1, -1));
    if (/^_.+_$/.test(part)) return h("em", {}, part.slice(1, -1));
    return part;
  });
}

/** The little markdown the API's texts use (paragraphs, "- " lists, inline emphasis), as nodes. */
export function markdown(text) {
  const nodes = [];
  let list = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("- ")) {
      if (!list) nodes.push(list = h("ul"));
      list.append(h("li", {}, ...inline(line.slice(2))));
      continue;
    }
    list = null;
    if (line.trim() === "---") nodes.push(h("hr"));
    else if (line.trim()) nodes.push(h("p", {}, ...inline(line)));
  }
  return nodes;
}
