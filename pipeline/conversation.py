"""Conversations: a question, then follow-ups, with reference numbers that stay put.

::

    chat = pipeline.Conversation(index="indexes/demo", generator="extractive")
    a = chat.ask("What is the treatment for oligoprogressive colorectal cancer?")
    b = chat.ask("What about RAS-mutant tumours?")
    c = chat.ask(a.follow_ups[0])
    chat.save("chat.json")
    print(chat.to_markdown())

Each follow-up is first rewritten into a standalone question (:class:`LLMRewriter` with the generator's
own model and ``prompts/rewrite.txt``; :class:`RuleRewriter` for the extractive generator, which has no
model). The answer is written for that standalone question, so ``answer.question`` is the rewrite and an
answer read on its own (saved, judged) still makes sense; :class:`Turn` keeps the words the user typed.

Reference numbers belong to the conversation: a document cited as [2] in one answer is [2] in every later
answer, and a new document gets the next free number (:class:`pipeline.cite.References` with a seed). An
answer lists only the references it cites, each under its conversation-wide number. Passages cited earlier
compete with the new search results and are shown again where they still fit the follow-up
(:func:`pipeline.answer.select_sources`).

In a Jupyter kernel ``ask`` shows the answer as it is written, in one display updated in place, and
leaves the finished answer there; assign the result (``a = chat.ask(...)``) so it is not shown twice.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from pipeline.answer import AskOptions, Prepared, ask_stream, prepare
from pipeline.errors import GenerationError, InputError
from pipeline.generate import Audience, Generator, LLMGenerator, complete
from pipeline.index import Index, open_index
from pipeline.judge import Judge
from pipeline.prompts import Prompt, load_prompt
from pipeline.quotes import american_spelling
from pipeline.render import MarkdownStream, tail_md, to_html_fragment, to_markdown
from pipeline.settings import Settings
from pipeline.types import Answer, AnswerDone, Event, from_dict, to_dict

log = logging.getLogger(__name__)

FORMAT = "medcite-conversation"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange: the question as asked, the standalone query it was answered as, and the answer."""

    question: str
    query: str  # == question when it stood on its own; answer.question is the same text
    answer: Answer
    rewriter: str = "none"  # what made ``query``: "none", "rules", or "llm:<model>:<prompt hash>"

    @property
    def rewritten(self) -> bool:
        return self.query != self.question

    def _repr_html_(self) -> str:
        return to_html_fragment(self.answer, asked=self.question)

    def _repr_markdown_(self) -> str:
        return to_markdown(self.answer, asked=self.question)

    def __repr__(self) -> str:
        return f"Turn(question={self.question!r}, query={self.query!r}, references={len(self.answer.references)})"


# --------------------------------------------------------------------------- rewriting follow-ups


class Rewriter(Protocol):
    """Turns the latest question into one that stands on its own, given the turns before it."""

    @property
    def name(self) -> str: ...

    def rewrite(self, question: str, history: Sequence[Turn]) -> str: ...


_FILLER = {"and", "but", "also", "so", "or", "then", "now", "ok", "okay", "well"}
_ABOUT = re.compile(r"^(?:what|how)\s+about\s+|^what\s+if\s+", re.I)
_PREPOSITIONS = {
    "in",
    "for",
    "with",
    "without",
    "among",
    "amongst",
    "after",
    "before",
    "during",
    "on",
    "at",
    "under",
    "over",
    "versus",
    "vs",
    "compared",
    "when",
    "if",
}
_ANAPHORA = {"it", "its", "this", "that", "these", "those", "they", "them", "their", "such", "same", "there"}
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "does", "do", "can"}
_STOP = _FILLER | _PREPOSITIONS | _ANAPHORA | _WH
_STOP |= {
    "a",
    "an",
    "the",
    "of",
    "to",
    "by",
    "about",
    "be",
    "been",
    "was",
    "were",
    "did",
    "should",
    "could",
    "would",
    "will",
    "may",
    "might",
    "any",
    "some",
    "there",
    "say",
    "says",
    "evidence",
    "known",
    "patients",
    "patient",
    "people",
    "use",
    "used",
    "role",
}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+/-]*")
MIN_OWN_WORDS = 3  # a question with fewer content words of its own, none of them on topic, leans on the last one


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _content(text: str) -> list[str]:
    return [w for w in _words(text) if w.lower() not in _STOP]


class RuleRewriter:
    """Standalone follow-ups without a language model (the extractive generator has none).

    Follow-ups hang off the last question that stood on its own (the topic), not off each other: after
    "What is the treatment for oligoprogressive colorectal cancer?", both "What about RAS-mutant tumours?"
    and then "And in elderly patients?" narrow that topic, each in its own way.

    - "What about X?", "How about X?", "And in X?": the topic question narrowed to X.
    - A question that leans on the topic ("Is it safe?", "Dose?"): the question, with the topic's
      content words added.
    - Anything else stands on its own, unchanged, and becomes the topic.
    """

    name = "rules"

    def topic(self, history: Sequence[Turn]) -> str:
        """The last question of ``history`` that stood on its own (the first one if none did).

        A turn stood on its own when it was not rewritten, or when these rules would have left it as asked: a
        model may reword a question that needed no rewrite, and that question still starts a new topic.
        """
        for i in range(len(history) - 1, -1, -1):
            t = history[i]
            if not t.rewritten:
                return t.query
            if self.rewrite(t.question, history[:i]) == " ".join(t.question.split()):
                return t.question
        return history[0].query

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        q = " ".join(question.split())
        if not history or not q:
            return q
        topic = self.topic(history)
        base = topic.rstrip(" ?.!")
        words = q.rstrip(" ?.!").split()
        lead = 0
        while lead < len(words) and words[lead].strip(",;:").lower() in _FILLER:
            lead += 1
        rest = " ".join(words[lead:]).strip(" ,;:")
        about = _ABOUT.match(rest)
        focus = rest[about.end() :] if about else (rest if lead else "")
        if focus and focus.split()[0].lower() not in _WH:
            if focus.split()[0].lower() in _PREPOSITIONS:
                return f"{base} {focus}?"
            return f"{base} regarding {focus}?"
        own = _content(q)
        on_topic = {w.lower() for w in _content(topic)}
        leans = any(w.lower() in _ANAPHORA for w in _words(q)) or (
            len(own) < MIN_OWN_WORDS and not any(w.lower() in on_topic for w in own)
        )
        if leans or lead:
            return f"{q.rstrip(' ?.!')} ({' '.join(_content(topic))})?"
        return q


# --------------------------------------------------------------------------- keeping the topic

# Words that say what is asked about a disease, not which disease: a model's query that keeps only these ("What is
# the treatment for patients with RAS-mutant tumours?") has lost the topic.
_GENERIC = frozenset(
    "treatment treatments treat treated treating therapy therapies management manage managed dose doses dosing "
    "recommended recommend recommendation recommendations options option standard best first-line second-line "
    "approach care risk risks outcome outcomes survival prognosis diagnosis safe safety effective efficacy adults "
    "adult children women men elderly older younger".split()
)
# Words that narrow a disease without naming another one: its extent, course or stage, or a biomarker status.
_QUALIFIERS = frozenset(
    "metastatic advanced recurrent relapsed refractory resistant early early-stage late localized localised "
    "locally resectable unresectable inoperable operable oligometastatic oligoprogressive progressive stage "
    "primary secondary acute chronic mild moderate severe mutant mutated wild-type high-risk low-risk newly "
    "diagnosed untreated pretreated".split()
)
_QUALIFIER_END = re.compile(
    r"-(?:mutant|mutated|mutation|positive|negative|deficient|proficient|high|low|amplified|type|expressing"
    r"|rearranged|naive|refractory|resistant|sensitive|stage|risk)$",
    re.I,
)
# Nouns that name a disease only through the word before them ("rectal cancer"); after a qualifier they refer back
# to the topic's disease ("RAS-mutant tumours").
_HEADS = frozenset(
    "cancer cancers carcinoma carcinomas adenocarcinoma tumour tumours tumor tumors neoplasm neoplasms malignancy "
    "malignancies disease diseases disorder disorders syndrome syndromes infection infections".split()
)
# A word that names a disease on its own: by its ending ("melanoma", "colitis", "leukaemia"), or one of these.
_DISEASE_END = re.compile(r"(?:itis|omas?|[ae]mias?|osis|pathy|algia|plasia)$", re.I)
_NOT_DISEASES = frozenset({"diagnosis", "prognosis", "stoma", "stomas"})
_DISEASES = frozenset(
    "migraine migraines headache headaches diabetes asthma hypertension stroke epilepsy sepsis gout croup scabies "
    "influenza pneumonia dementia depression obesity hiv aids covid covid-19".split()
)

_PLAIN = _STOP | _GENERIC  # before a head noun, a word of these names no disease ("the cancer", "adult tumours")


def _key(word: str) -> str:
    """A word as the topic check compares it: lower case, British spelling as American, no plural ending."""
    w = american_spelling(word.lower())
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def _keys(text: str) -> set[str]:
    return {_key(w) for w in re.findall(r"[A-Za-z0-9]+", text)}


def _qualifier(word: str) -> bool:
    """A word that narrows a disease: a stage, course or extent, or a biomarker ("RAS-mutant", "BRAF", "V600E")."""
    w = word.lower()
    if w in _QUALIFIERS or _QUALIFIER_END.search(w) or any(c.isdigit() for c in word):
        return True
    return sum(c.isupper() for c in word) >= 2  # a gene or biomarker symbol: RAS, BRAF, dMMR, MSI-H


def topic_anchor(topic: str) -> list[str]:
    """The words of ``topic`` that say which disease it is about (the words a standalone follow-up must keep).

    Its content words without the generic ones ("treatment"), the qualifiers ("oligoprogressive") and the head
    nouns ("cancer"): for "What is the treatment for oligoprogressive colorectal cancer?", ["colorectal"]. When
    nothing is left ("How is metastatic cancer treated?"), the qualifiers and heads are the anchor.
    """
    content = [w for w in _content(topic) if w.lower() not in _GENERIC]
    specific = [w for w in content if not _qualifier(w) and w.lower() not in _HEADS]
    return list(dict.fromkeys(specific or content))


def names_own_disease(question: str, topic: str) -> bool:
    """Whether ``question`` names a disease other than ``topic``'s and does not point back at the topic.

    A disease is a word that names one ("migraine", "melanoma", "colitis") or a head noun after a word that is no
    qualifier ("rectal cancer", not "RAS-mutant tumours"); a question that says "it", "this" or "they" refers back
    to the topic whatever else it names ("Is it safe in patients with hepatitis?").
    """
    words = _words(re.sub(r"['\u2019]s\b", "", question))
    if any(w.lower() in _ANAPHORA for w in words):
        return False
    held = _keys(topic)
    for i, w in enumerate(words):
        low = w.lower()
        if low in _HEADS:
            before = words[i - 1] if i else ""
            if before and before.lower() not in _PLAIN and not _qualifier(before) and _key(before) not in held:
                return True
        elif _key(w) not in held and (
            low in _DISEASES or (_DISEASE_END.search(low) is not None and low not in _NOT_DISEASES)
        ):
            return True
    return False


REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 3, "maxLength": 300}},
    "required": ["query"],
}
_QUERY = re.compile(r'"query"\s*:\s*"((?:[^"\\]|\\.)*)"')
HISTORY_TURNS = 6  # the latest turns the model sees; older ones rarely decide what "it" refers to


class LLMRewriter:
    """Standalone follow-ups written by a chat model (the generator's own), with ``prompts/rewrite.txt``.

    The model's query is checked before it is searched: a small model drops the conversation's disease ("What
    about patients with RAS-mutant tumours?" after a colorectal cancer question came back as "What is the
    treatment for patients with RAS-mutant tumours?", and the research section answered about AML). When the
    follow-up leans on the conversation (:class:`RuleRewriter` would rewrite it) and the model's query holds none
    of the topic's :func:`topic_anchor` words, while the follow-up names no disease of its own, the rules' rewrite
    is searched instead: it is made of the user's own words only. A follow-up that stands on its own and names
    another disease is searched as asked when the model carried the old topic's words into it. Either way the
    turn is logged, and :attr:`name` says ``"rules"`` for it (the rewriter the turn records).
    """

    def __init__(self, backend: Any, *, max_tokens: int = 96, prompt: Prompt | None = None) -> None:
        self.backend = backend
        self.max_tokens = max_tokens
        self.prompt = prompt or load_prompt("rewrite")
        self.overruled = False  # the last rewrite was not the model's query (it lost or carried the topic)

    @property
    def name(self) -> str:
        """What made the last rewrite: ``"llm:<model>:<prompt hash>"``, or ``"rules"`` when the model was overruled."""
        return "rules" if self.overruled else f"llm:{self.backend.model}:{self.prompt.hash}"

    def messages(self, question: str, history: Sequence[Turn]) -> list[dict[str, str]]:
        lines = []
        for t in history[-HISTORY_TURNS:]:
            lines.append(f"- {t.question}" + (f" (searched as: {t.query})" if t.rewritten else ""))
        return self.prompt.render(history="\n".join(lines), question=question)

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        q = " ".join(question.split())
        self.overruled = False
        if not history:
            return q
        query = self.model_query(q, history)
        kept = self.keep_topic(q, query, history)
        self.overruled = kept != query
        return kept

    def model_query(self, question: str, history: Sequence[Turn]) -> str:
        """The model's standalone query for ``question``, unchecked.

        Raises:
            GenerationError: the model gave no query.
        """
        text = complete(self.backend, self.messages(question, history), REWRITE_SCHEMA, self.max_tokens)
        try:
            query = json.loads(text).get("query", "")
        except (json.JSONDecodeError, AttributeError):
            m = _QUERY.search(text)
            query = json.loads(f'"{m.group(1)}"') if m else ""
        query = " ".join(str(query).split()) if isinstance(query, str) else ""
        if not query:
            raise GenerationError(
                f"{self.backend.model} gave no standalone query for the follow-up {question!r} (it wrote "
                f"{text[:160]!r}); ask the question in full, or pass rewriter=RuleRewriter()"
            )
        return query

    def keep_topic(self, question: str, query: str, history: Sequence[Turn]) -> str:
        """``query`` (the model's rewrite of ``question``) when it keeps the conversation's topic as it should, else
        the query that does: the rules' rewrite, or the question as asked (see the class docstring)."""
        rules = RuleRewriter()
        fallback = rules.rewrite(question, history)
        leans = fallback != question
        topic = rules.topic(history)
        anchor = topic_anchor(topic)
        held = _keys(query)
        kept = any(_key(w) in held for w in anchor)
        if names_own_disease(question, topic):
            carried = [w for w in anchor if _key(w) in held and _key(w) not in _keys(question)]
            if leans or not carried:
                return query
            log.warning(
                "the model's rewrite %r of %r carried the earlier topic's %s into a question about another "
                "disease; searching the question as asked",
                query,
                question,
                _quoted(carried),
            )
            return question
        if kept or not leans or not anchor:
            return query
        log.warning(
            "the model's rewrite %r of the follow-up %r lost the topic (%s of %r); searching %r instead",
            query,
            question,
            _quoted(anchor),
            topic,
            fallback,
        )
        return fallback


def _quoted(words: Sequence[str]) -> str:
    return ", ".join(f'"{w}"' for w in words)


# --------------------------------------------------------------------------- showing answers as they are written


class _Shown:
    """A finished turn as a notebook shows it: the question as asked, the rewrite, the answer."""

    def __init__(self, answer: Answer, asked: str) -> None:
        self.answer = answer
        self.asked = asked

    def _repr_html_(self) -> str:
        return to_html_fragment(self.answer, asked=self.asked)

    def _repr_markdown_(self) -> str:
        return to_markdown(self.answer, asked=self.asked)

    def __repr__(self) -> str:
        return to_markdown(self.answer, asked=self.asked)


def _kernel_display() -> Any:
    """IPython's ``display`` when running in a kernel that renders rich output (Jupyter), else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:  # a terminal IPython shows no HTML
        return None
    from IPython.display import display

    return display


def _markdown(text: str) -> Any:
    from IPython.display import Markdown

    md: Any = Markdown  # untyped in IPython
    return md(text)


class _Live:
    """Writes an answer's events as they come: into a display updated in place, or as Markdown on a stream."""

    def __init__(self, display: Any, out: IO[str] | None, asked: str, query: str) -> None:
        self.display, self.out = display, out
        self.md = MarkdownStream()
        head = f"# {asked}\n" + (f"\n*Searched as: {query}*\n" if query != asked else "")
        self.text = head
        self.handle: Any = None
        if display is not None:
            self.handle = display(_markdown(head + "\n*Searching…*"), display_id=True)
        elif out is not None:
            out.write(head)
            out.flush()

    def feed(self, event: Event) -> None:
        if isinstance(event, AnswerDone):
            return
        piece = self.md.feed(event)
        if not piece:
            return
        self.text += piece
        if self.handle is not None:
            self.handle.update(_markdown(self.text))
        elif self.out is not None:
            self.out.write(piece)
            self.out.flush()

    def done(self, answer: Answer, asked: str) -> None:
        if self.handle is not None:
            self.handle.update(_Shown(answer, asked))
        elif self.out is not None:
            self.out.write(tail_md(answer))
            self.out.flush()


# --------------------------------------------------------------------------- the conversation


class Conversation:
    """Questions and follow-ups over one index, answered with stable reference numbers.

    Args:
        index: an opened :class:`~pipeline.index.Index` or the path of an index folder (opened on the
            first question).
        generator: a generator, or its name (``"extractive"``, ``"llama"``, ``"openai"``); default
            ``settings.answer.generator``.
        settings: default: the index's own settings.
        audience: ``"clinician"`` or ``"patient"``; default ``settings.answer.audience``.
        rewriter: what makes follow-ups standalone; default: :class:`LLMRewriter` over the generator's model
            for LLM generators, else :class:`RuleRewriter`.
        reuse_evidence: let passages cited earlier be shown again where they still fit a follow-up.
        verifier: a support judge to check each statement as it is written (as ``ask --verify``).
    """

    def __init__(
        self,
        index: Index | str | Path,
        *,
        generator: Generator | str | None = None,
        settings: Settings | None = None,
        audience: Audience | None = None,
        rewriter: Rewriter | None = None,
        reuse_evidence: bool = True,
        verifier: Judge | None = None,
        verify_action: Literal["drop", "mark"] = "drop",
    ) -> None:
        self._index = index if isinstance(index, Index) else None
        self.index_path = Path(index.path if isinstance(index, Index) else index)
        self._generator = generator
        self._settings = settings
        self.audience = audience
        self._rewriter = rewriter
        self.reuse_evidence = reuse_evidence
        self.verifier = verifier
        self.verify_action = verify_action
        self._turns: list[Turn] = []
        self._run: Prepared | None = None

    # ------------------------------------------------------------------ parts, made on first use

    @property
    def index(self) -> Index:
        """The index, opened with the conversation's settings (a mismatch raises IndexMismatchError)."""
        if self._index is None:
            self._index = open_index(self.index_path, settings=self._settings)
        return self._index

    @property
    def run(self) -> Prepared:
        """The generator, judge and settings every turn is answered with: made once, on the first question."""
        if self._run is None:
            options = AskOptions(self._generator, self._settings, None, self.verifier, self.verify_action)
            self._run = prepare(options, self.index)
        return self._run

    @property
    def settings(self) -> Settings:
        return self.run.settings

    @property
    def generator(self) -> Generator:
        return self.run.generator

    @property
    def rewriter(self) -> Rewriter:
        if self._rewriter is None:
            gen = self.generator
            self._rewriter = LLMRewriter(gen.backend) if isinstance(gen, LLMGenerator) else RuleRewriter()
        return self._rewriter

    # ------------------------------------------------------------------ state

    @property
    def history(self) -> tuple[Turn, ...]:
        return tuple(self._turns)

    @property
    def answers(self) -> tuple[Answer, ...]:
        return tuple(t.answer for t in self._turns)

    def __len__(self) -> int:
        return len(self._turns)

    def numbering(self) -> dict[str, int]:
        """Document id -> reference number, for every source cited so far."""
        out: dict[str, int] = {}
        for t in self._turns:
            for r in t.answer.references:
                out.setdefault(r.doc_id, r.n)
        return out

    def evidence(self) -> list[str]:
        """Chunk ids of the passages cited so far, latest turn first."""
        ids = [p.chunk_id for t in reversed(self._turns) for r in t.answer.references for p in r.passages]
        return list(dict.fromkeys(i for i in ids if i))

    # ------------------------------------------------------------------ asking

    def rewrite(self, question: str) -> str:
        """The standalone question ``question`` would be answered as, given the turns so far."""
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty; ask something")
        return self.rewriter.rewrite(question, self.history) or question.strip()

    def ask(self, question: str, *, stream: bool | None = None, out: IO[str] | None = None) -> Answer:
        """Answer ``question`` (a first question or a follow-up) and add it to the history.

        Args:
            question: as the user puts it; a follow-up is rewritten into a standalone question first.
            stream: show the answer as it is written: in a Jupyter kernel, one display updated in place that
                ends as the rendered answer; elsewhere Markdown written to ``out`` (default stdout).
                Default: on in a Jupyter kernel, off elsewhere.
            out: where the plain stream goes outside Jupyter.

        Returns:
            The answer; ``answer.question`` is the standalone question it was written for.
        """
        asked = " ".join(question.split()) if isinstance(question, str) else question
        query = self.rewrite(asked)
        display = _kernel_display() if stream is not False else None
        live = None
        if display is not None or stream:
            live = _Live(display, None if display is not None else (out or sys.stdout), asked, query)
        answer: Answer | None = None
        for event in self.events(asked, query=query):
            if live is not None:
                live.feed(event)
            if isinstance(event, AnswerDone):
                answer = event.answer
        if answer is None:
            raise GenerationError(f"no answer came back for {query!r}")
        if live is not None:
            live.done(answer, asked)
        return answer

    def events(self, question: str, *, query: str | None = None) -> Iterator[Event]:
        """Answer ``question`` as :meth:`ask` does, yielding the answer's events as they are written (a web page
        streams them); the turn joins the history when :class:`~pipeline.types.AnswerDone` is yielded.

        ``query`` is the standalone question when the caller has already rewritten ``question``
        (:meth:`rewrite`); a turn stopped before its end is not kept.
        """
        asked = " ".join(question.split()) if isinstance(question, str) else question
        query = query or self.rewrite(asked)
        rewriter = self.rewriter.name if self._turns else "none"
        if query != asked:
            log.info("follow-up %r searched as %r", asked, query)
        events = ask_stream(
            query,
            self.index,
            replace(self.run, audience=self.audience),
            numbering=self.numbering(),
            evidence=self.evidence() if self.reuse_evidence else (),
        )
        for event in events:
            if isinstance(event, AnswerDone):
                self._turns.append(Turn(asked, query, event.answer, rewriter if query != asked else "none"))
            yield event

    # ------------------------------------------------------------------ saving and showing

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "index": str(self.index_path),
            "index_id": self._index.id if self._index is not None else self._saved_index_id(),
            "turns": [
                {"question": t.question, "query": t.query, "rewriter": t.rewriter, "answer": to_dict(t.answer)}
                for t in self._turns
            ],
        }

    def _saved_index_id(self) -> str | None:
        return self._turns[-1].answer.run.index_id if self._turns else None

    def save(self, path: str | Path) -> Path:
        """Write the conversation as JSON: each turn's question, query and answer (:func:`pipeline.types.to_dict`)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        index: Index | str | Path | None = None,
        generator: Generator | str | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> Conversation:
        """A saved conversation, ready for more questions; the index is the saved path unless given."""
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise InputError(f"{p}: cannot read the conversation ({e.strerror or e})") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: not valid JSON ({e})") from None
        return cls.from_dict(d, index=index, generator=generator, settings=settings, where=str(p), **kwargs)

    @classmethod
    def from_dict(
        cls,
        d: Any,
        *,
        index: Index | str | Path | None = None,
        generator: Generator | str | None = None,
        settings: Settings | None = None,
        where: str = "conversation",
        **kwargs: Any,
    ) -> Conversation:
        """A conversation from its :meth:`to_dict` shape (a saved file, a web server's store); ``where`` names the
        source in errors."""
        p = where
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise InputError(f'{p}: not a saved medcite conversation (no "format": "{FORMAT}")')
        if not isinstance(d.get("version"), int) or d["version"] > VERSION:
            raise InputError(f"{p}: conversation format version {d.get('version')!r}; this medcite reads {VERSION}")
        chat = cls(
            index if index is not None else str(d.get("index", "")), generator=generator, settings=settings, **kwargs
        )
        for i, t in enumerate(d.get("turns", []), start=1):
            try:
                answer = from_dict(t["answer"])
                chat._turns.append(
                    Turn(str(t["question"]), str(t.get("query", t["question"])), answer, str(t.get("rewriter", "none")))
                )
            except (KeyError, TypeError) as e:
                raise InputError(f"{p}: turn {i} lacks {e}; it needs question, query and answer") from None
            except InputError as e:
                raise InputError(f"{p}: turn {i}: {e}") from None
        if isinstance(index, Index) and d.get("index_id") and d["index_id"] != index.id:
            log.warning("%s was made with index %s; continuing with index %s", p, d["index_id"], index.id)
        return chat

    def to_markdown(self) -> str:
        """Every turn as Markdown, for pasting into a report; reference numbers are the conversation's."""
        return "\n---\n\n".join(to_markdown(t.answer, asked=t.question) for t in self._turns)

    def _repr_html_(self) -> str:
        if not self._turns:
            return f"<p>An empty conversation over <code>{_esc(str(self.index_path))}</code>.</p>"
        return "<hr>".join(t._repr_html_() for t in self._turns)

    def __repr__(self) -> str:
        return f"<Conversation over {self.index_path}: {len(self._turns)} turns>"


def _esc(text: str) -> str:
    return html.escape(text)
