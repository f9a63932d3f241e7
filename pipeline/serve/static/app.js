// medcite's question page: posts a question, shows the answer's statements as they stream in (server-sent
// events over fetch), then the answer as the server rendered it. Text from the server is put in with
// textContent; the one HTML it sends (the finished answer) is the renderer's, every document and model text
// escaped. No inline script or style anywhere: the Content-Security-Policy forbids both.
"use strict";

(function () {
  const form = document.getElementById("ask-form");
  if (!form) return;
  const question = document.getElementById("question");
  const label = document.getElementById("question-label");
  const conversation = document.getElementById("conversation");
  const button = document.getElementById("ask-button");
  const restart = document.getElementById("new-button");
  const status = document.getElementById("status");
  const turns = document.getElementById("turns");

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function followUpButtons(root) {
    // The renderer lists suggested follow-ups; on the page each becomes a button that asks it.
    for (const h of root.querySelectorAll("h2")) {
      if (h.textContent !== "Follow-up questions") continue;
      const list = h.nextElementSibling;
      if (!list) continue;
      list.classList.add("follow-ups");
      for (const li of list.querySelectorAll("li")) {
        const q = li.textContent;
        const b = el("button", "follow-up", q);
        b.type = "button";
        b.addEventListener("click", () => {
          question.value = q;
          form.requestSubmit();
        });
        li.replaceChildren(b);
      }
    }
  }

  class Draft {
    constructor(turn) {
      this.root = el("div", "draft");
      this.list = null;
      this.section = null;
      turn.append(this.root);
    }
    section_(title) {
      this.section = el("section");
      this.section.append(el("h2", "", title));
      this.root.append(this.section);
      this.list = null;
    }
    item(d) {
      if (!this.section) this.section_(d.section);
      if (d.first_in_group || !this.list) {
        if (d.heading) this.section.append(el("h3", "", d.heading));
        this.list = el("ul");
        this.section.append(this.list);
      }
      const cites = d.citations.length ? " [" + d.citations.join(", ") + "]" : "";
      this.list.append(el("li", "", d.text + cites));
    }
  }

  function handle(name, data, turn, state) {
    if (name === "start") {
      conversation.value = data.conversation;
      if (data.query !== data.asked) turn.append(el("p", "mc-query", "Searched as: " + data.query));
      state.draft = new Draft(turn);
      status.textContent = "Writing the answer…";
    } else if (name === "section") {
      state.draft.section_(data.title);
    } else if (name === "item") {
      state.draft.item(data);
    } else if (name === "done") {
      const saved = el("p", "saved");
      const link = el("a", "", "Saved for review (status: " + data.status + ")");
      link.href = data.url;
      saved.append(link);
      turn.replaceChildren(saved);
      turn.insertAdjacentHTML("beforeend", data.html);
      followUpButtons(turn);
      state.done = true;
      status.textContent = "Answer ready.";
    } else if (name === "error") {
      turn.append(el("p", "error", data.message));
      status.textContent = "The answer failed: " + data.message;
    }
  }

  async function read(response, turn) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const state = { draft: null, done: false };
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        handle(name, data ? JSON.parse(data) : {}, turn, state);
      }
    }
    if (!state.done && !turn.querySelector(".error")) {
      turn.append(el("p", "error", "The connection closed before the answer was complete."));
      status.textContent = "The connection closed early; the answer may still be saved for review.";
    }
  }

  async function ask(event) {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      status.textContent = "Type a question first.";
      question.focus();
      return;
    }
    const audience = form.querySelector("input[name=audience]:checked").value;
    const turn = el("article", "turn");
    turn.setAttribute("aria-busy", "true");
    turn.append(el("h2", "asked", text));
    turns.append(turn);
    button.disabled = true;
    status.textContent = "Searching the guidelines and papers…";
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question: text, audience: audience, conversation: conversation.value }),
      });
      if (!response.ok) {
        let message = response.status + " " + response.statusText;
        try {
          message = (await response.json()).error || message;
        } catch (_) {
          /* not JSON */
        }
        turn.append(el("p", "error", message));
        status.textContent = message;
        return;
      }
      await read(response, turn);
      question.value = "";
      label.replaceChildren(el("b", "", "Ask a follow-up question"));
      restart.hidden = false;
    } catch (err) {
      turn.append(el("p", "error", "The server could not be reached: " + err.message));
      status.textContent = "The server could not be reached.";
    } finally {
      turn.removeAttribute("aria-busy");
      button.disabled = false;
    }
  }

  form.addEventListener("submit", ask);
  restart.addEventListener("click", () => {
    conversation.value = "";
    turns.replaceChildren();
    label.replaceChildren(el("b", "", "Your question"));
    restart.hidden = true;
    status.textContent = "A new conversation: earlier answers stay saved for review.";
    question.focus();
  });
})();
