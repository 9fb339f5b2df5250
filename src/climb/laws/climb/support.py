"""The support-aware term: loss on a language the mixture does not contain (docs/method.md §1b).

A byte-level model that never saw a script cannot predict its bytes: their loss is far above the
untrained loss and rises with training (the logits of never-seen byte values are pushed down at
every step). No effective ratio explains that, so the climb law adds a term for a target ``i``
whose own share is zero. With ``f_j(v)`` the unigram frequency of vocabulary item ``v`` (a byte)
in source ``j``'s text (a :class:`SupportProfile`), the *unseen mass* of ``i`` is the share of
``i``'s text made of items the run has seen fewer than about ``n0`` times:

    u_i(p, D) = Σ_v f_i(v) · exp(−D · Σ_j p_j f_j(v) / n0)      when p_i = 0,   u_i = 0 when p_i > 0

and the loss splits into the seen part (the climb law, at most the untrained loss ``L_0``) and
the unseen part (a loss ``G_i(D)`` per unseen item, rising with ``D``):

    L_i = (1 − u_i) · min(L_i^climb, L_0) + u_i · G_i(D),   G_i(D) = min(g_0i + g_1i ln(D/D_ref), 2 L_0)

``g_1i ≥ 0``. When ``p_i > 0`` (in particular when every language has a share) ``u_i = 0`` and
``L_i = L_i^climb`` exactly. Where ``p_i = 0`` the predicted loss is bounded by ``2 L_0``
(``L_0 = log2 V`` bits per item: 8 bits per byte). The climb part is fitted exactly as without
the term (so every prediction with ``p_i > 0`` is unchanged); then one ``(g_0, g_1)``, shared by
all targets, is fitted by least squares on the runs' (row, target) pairs with unseen mass
(:func:`fit_unseen_loss`). The JSON keeps one ``(g_0i, g_1i)`` per target. (A per-target ``G_i``
fitted jointly with the climb parameters predicted held-out runs worse: docs/laws.md.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from climb.errors import ClimbError

SEEN_COUNT = 100.0
"""Default ``n0``: an item counts as seen after about this many expected occurrences
(selected by cross-validation on the demo's proxies; docs/laws.md)."""


@dataclass(frozen=True)
class SupportProfile:
    """Unigram frequencies of each language's training text over one vocabulary.

    Attributes:
        names: the languages (sources and evaluation-only targets).
        frequencies: ``(K, V)``, row ``k`` the frequency of each item in ``names[k]``'s text
            (each row sums to 1).
        untrained_loss: ``L_0``, the loss of a uniform prediction over the ``V`` items in the
            run table's unit (``log2 V``: 8 bits per byte for a byte-level vocabulary).
    """

    names: list[str]
    frequencies: np.ndarray
    untrained_loss: float

    def __post_init__(self) -> None:
        f = np.asarray(self.frequencies, dtype=float)
        if f.ndim != 2 or f.shape[0] != len(self.names) or f.shape[1] < 2:
            raise ClimbError(
                f"support profile: frequencies must be (languages × vocabulary), got {f.shape} "
                f"for {len(self.names)} language(s)"
            )
        if not np.all(np.isfinite(f)) or (f < 0).any() or (f.sum(axis=1) <= 0).any():
            raise ClimbError("support profile: frequencies must be ≥ 0 with a positive row sum")
        if not (np.isfinite(self.untrained_loss) and self.untrained_loss > 0):
            raise ClimbError("support profile: untrained_loss must be > 0")
        object.__setattr__(self, "frequencies", f / f.sum(axis=1, keepdims=True))
        object.__setattr__(self, "names", list(self.names))

    @classmethod
    def from_texts(cls, texts: dict[str, bytes]) -> Self:
        """Byte frequencies of each language's UTF-8 text (``V = 256``, ``L_0 = 8`` bits/byte)."""
        rows = []
        for name, data in texts.items():
            counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
            if counts.sum() == 0:
                raise ClimbError(f"support profile: language '{name}' has no text")
            rows.append(counts.astype(float))
        return cls(list(texts), np.array(rows), math.log2(256))

    @classmethod
    def from_corpus(cls, corpus: Any, names: Sequence[str]) -> Self:
        """Byte frequencies of the training split of ``names`` in a
        :class:`~climb.data.corpus.Corpus` (the proxies' byte-level tokenizer)."""
        corpus.check_sources(names)
        return cls.from_texts({s: corpus.text_bytes(s) for s in names})

    def rows(self, names: Sequence[str], what: str = "languages") -> np.ndarray:
        """The frequency rows of ``names`` (one-line error naming the missing ones)."""
        missing = [s for s in names if s not in self.names]
        if missing:
            raise ClimbError(
                f"support profile: no frequencies for {what} {', '.join(missing)} (it has "
                f"{', '.join(self.names)}); build it from the corpus the runs were trained on"
            )
        return self.frequencies[[self.names.index(s) for s in names]]

    def to_json(self) -> dict[str, Any]:
        return {
            "untrained_loss": float(self.untrained_loss),
            "frequencies": {
                s: [float(x) for x in row] for s, row in zip(self.names, self.frequencies)
            },
        }

    @classmethod
    def from_json(cls, obj: Any, law: str = "climb") -> Self:
        try:
            freq = obj["frequencies"]
            names = list(freq)
            return cls(names, np.array([freq[s] for s in names], dtype=float),
                       float(obj["untrained_loss"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ClimbError(
                f"law JSON ({law}): 'support' needs 'untrained_loss' and 'frequencies' "
                f"(language → list of item frequencies): {exc}"
            ) from None


@dataclass
class SupportTerm:
    """The fitted support-aware term of a climb law (see the module docstring).

    ``source_freq`` is ``(S, V)`` over the law's sources, ``target_freq`` ``(T, V)`` over its
    targets; ``own`` the source column of each target (−1: evaluation-only, never has a share).
    """

    source_freq: np.ndarray
    target_freq: np.ndarray
    own: np.ndarray
    untrained_loss: float
    n0: float
    g0: np.ndarray  # (T,)
    g1: np.ndarray  # (T,)
    tokens_ref: float

    def unseen_mass(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``u_i(p, D) = Σ_v f_i(v) exp(−D Σ_j p_j f_j(v) / n0)`` where ``p_i = 0``, else 0:
        ``(n, T)`` for ``p`` ``(n, S)``."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        seen = np.exp(-(d[:, None] / self.n0) * (np.maximum(p2, 0.0) @ self.source_freq))
        u = seen @ self.target_freq.T  # (n, T)
        has = self.own >= 0
        own_share = np.where(has, p2[:, np.maximum(self.own, 0)], 0.0)
        return np.where(own_share > 0, 0.0, np.clip(u, 0.0, 1.0))

    def unseen_loss(self, tokens: np.ndarray) -> np.ndarray:
        """``G_i(D) = min(g_0i + g_1i ln(D / D_ref), 2 L_0)``: ``(n, T)`` for ``(n,)`` budgets."""
        log_d = np.log(np.asarray(tokens, dtype=float) / self.tokens_ref)[:, None]
        return np.minimum(self.g0 + self.g1 * log_d, 2 * self.untrained_loss)

    def apply(self, loss: np.ndarray, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``(1 − u) min(L, L_0) + u G(D)`` where ``u > 0``; ``loss`` unchanged elsewhere."""
        u = self.unseen_mass(p, tokens)
        if not u.any():
            return loss
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (u.shape[0],))
        mixed = (1 - u) * np.minimum(loss, self.untrained_loss) + u * self.unseen_loss(d)
        return np.where(u > 0, mixed, loss)

    def to_json(self, sources: list[str], targets: list[str]) -> dict[str, Any]:
        freq = {s: row for s, row in zip(sources, self.source_freq)}
        freq.update({t: row for t, row in zip(targets, self.target_freq)})
        profile = SupportProfile(list(freq), np.array(list(freq.values())), self.untrained_loss)
        return {**profile.to_json(), "n0": self.n0, "g0": self.g0.tolist(),
                "g1": self.g1.tolist(), "tokens_ref": self.tokens_ref}  # fmt: skip

    @classmethod
    def from_json(
        cls, obj: Any, sources: list[str], targets: list[str], own: np.ndarray, law: str
    ) -> Self:
        profile = SupportProfile.from_json(obj, law)
        t = len(targets)
        try:
            n0, ref = float(obj["n0"]), float(obj["tokens_ref"])
            g0 = np.asarray(obj["g0"], dtype=float).reshape(t)
            g1 = np.asarray(obj["g1"], dtype=float).reshape(t)
        except (KeyError, TypeError, ValueError):
            raise ClimbError(
                f"law JSON ({law}): 'support' needs numbers 'n0', 'tokens_ref' and lists 'g0', "
                f"'g1' of {t} (one per target)"
            ) from None
        if n0 <= 0 or ref <= 0 or (g1 < 0).any() or not np.isfinite(g0).all():
            raise ClimbError(f"law JSON ({law}): 'support' needs n0 > 0, tokens_ref > 0, g1 ≥ 0")
        return cls(profile.rows(sources, "sources"), profile.rows(targets, "targets"), own,
                   profile.untrained_loss, n0, g0, g1, ref)  # fmt: skip


def fit_unseen_loss(
    term: SupportTerm, climb_loss: np.ndarray, p: np.ndarray, tokens: np.ndarray,
    observed: np.ndarray,
) -> tuple[float, float]:  # fmt: skip
    """Least-squares ``(g_0, g_1)`` of one ``G(D)`` shared by all targets, from every measured
    (row, target) pair with unseen mass ``u > 0``:
    ``L_obs − (1 − u) min(L^climb, L_0) = u (g_0 + g_1 ln(D / D_ref))``, with ``g_1 ≥ 0`` (``g_1 = 0``
    when those pairs span one budget). Without such pairs (no run leaves a language out)
    ``G = L_0``: the unseen part is predicted at the untrained loss, not fitted."""
    u = term.unseen_mass(p, tokens)
    m = (u > 0) & np.isfinite(observed)
    if not m.any():
        return term.untrained_loss, 0.0
    x = np.broadcast_to(np.log(tokens / term.tokens_ref)[:, None], u.shape)[m]
    y = observed[m] - (1 - u[m]) * np.minimum(climb_loss[m], term.untrained_loss)
    if np.ptp(x) > 0:
        (g0, g1), *_ = np.linalg.lstsq(np.column_stack([u[m], u[m] * x]), y, rcond=None)
        if g1 >= 0:
            return float(g0), float(g1)
    return float(np.dot(u[m], y) / np.dot(u[m], u[m])), 0.0


__all__ = ["SEEN_COUNT", "SupportProfile", "SupportTerm", "fit_unseen_loss"]
