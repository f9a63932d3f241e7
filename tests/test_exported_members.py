from types import ModuleType

import pipeline


def test_public_api_is_exactly_all() -> None:
    public = {n for n in dir(pipeline) if not n.startswith("_") and not isinstance(getattr(pipeline, n), ModuleType)}
    lazy = {"MedciteRetriever"}  # resolved on first access (langchain-core is heavy)
    assert public | lazy == set(pipeline.__all__)
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None
