"""Support judges: how strongly does a passage support a claim? One protocol, several families, one registry.

Every judge maps (claim, passage) pairs to scores, higher meaning better supported, and has a threshold at
which a score counts as supported (calibrated by ``medcite eval calibrate``). Judges are deterministic;
:class:`CachedJudge` stores scores on disk by judge fingerprint, claim and passage hash, so a re-run costs
nothing. The judge is one of the pipeline's costly seams: ``medcite ask --verify`` uses one at answer time,
``medcite eval`` to measure answers.

- ``lexical`` (:mod:`~pipeline.judge.lexical`): share of the claim's content words found in the passage, with
  penalties for numbers the passage does not contain and for a negation on one side only.
- ``embedding`` (:mod:`~pipeline.judge.embedding`): highest cosine between the claim and any one or two
  consecutive passage sentences (bundled MiniLM).
- ``llm`` and ``openai`` (:mod:`~pipeline.judge.ask`): a model asked whether the passage fully supports the claim.
- ``nli`` (:mod:`~pipeline.judge.nli`): any local Hugging Face NLI model (a folder), P(entailment).
- ``trained`` and ``blend`` (:mod:`~pipeline.judge.trained`): our own claim checker (:mod:`~pipeline.judge.checker`),
  alone or blended with the embedding and lexical scores.
"""

from pipeline.crossencoder import RELATIONS
from pipeline.judge.ask import LLMJudge, OpenAIJudge
from pipeline.judge.base import Judge, Pair, is_contradicted, relations_of
from pipeline.judge.cache import CachedJudge
from pipeline.judge.embedding import EmbeddingJudge
from pipeline.judge.lexical import LexicalJudge
from pipeline.judge.nli import NLIJudge
from pipeline.judge.registry import JUDGES, judge_from_settings, make_judge
from pipeline.judge.trained import BlendJudge, TrainedJudge

__all__ = [
    "RELATIONS",
    "is_contradicted",
    "relations_of",
    "JUDGES",
    "BlendJudge",
    "CachedJudge",
    "EmbeddingJudge",
    "Judge",
    "LLMJudge",
    "LexicalJudge",
    "NLIJudge",
    "OpenAIJudge",
    "Pair",
    "TrainedJudge",
    "judge_from_settings",
    "make_judge",
]
